"""Test a segmentor (same arguments as mmseg's tools/test.py); importing the plugin registers AM-SAM."""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.config import DictAction  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

import mmseg_amsam  # noqa: E402,F401
from mmseg_amsam.apis.cli_errors import held_console, run_cli  # noqa: E402
from mmseg_amsam.apis.prerequisites import check_prerequisites  # noqa: E402
from mmseg_amsam.apis.run_config import load_run_config  # noqa: E402
from mmseg_amsam.engine.checkpoint_loading import amsam_checkpoint_loader  # noqa: E402
from mmseg_amsam.engine.hooks.data_check_hook import check_run_files  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and eval) a segmentor')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file, or `none` to test the model as built from the config '
                        '(e.g. configs/sam-yolo_*.py: pretrained SAM + YOLO, nothing trained)')
    parser.add_argument('--work-dir', help='the directory to save the evaluation metrics')
    parser.add_argument('--out', help='directory to save the predicted masks (PNG, one per test image: class '
                        'indices at the original size), as mmseg\'s tools/test.py (test_evaluator.output_dir)')
    parser.add_argument('--show-dir', help='directory to save overlays of predictions (mmseg SegVisualizationHook: '
                        'DIR/vis_data/vis_image/*.png)')
    parser.add_argument('--show-interval', type=int, default=1,
                        help='with --show-dir: draw every N-th test image (default 1 = all; the hook\'s own '
                        'default would be 50)')
    parser.add_argument('--wait-time', type=float, default=2)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override settings in the config')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    parser.add_argument('--debug', action='store_true',
                        help='show the full start-up log and the traceback of known errors (missing files ...)')
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main(argv=None):
    args = parse_args(argv)
    cfg = load_run_config(args.config, args.cfg_options, args.work_dir, args.launcher)
    cfg.load_from = None if args.checkpoint.lower() == 'none' else args.checkpoint
    check_prerequisites(cfg, phases=('test', ))  # every missing file at once, before anything is built
    if args.out:  # as mmseg's tools/test.py; DiceMetric makes the folder at its first write
        evaluator = cfg.test_evaluator
        metric = evaluator[0] if isinstance(evaluator, (list, tuple)) else evaluator
        metric.update(output_dir=args.out, keep_results=True)
    if args.show_dir:
        vis = cfg.default_hooks.setdefault('visualization', dict(type='SegVisualizationHook'))
        vis['draw'] = True
        vis['interval'] = args.show_interval
        cfg.visualizer['save_dir'] = args.show_dir
    with held_console(not args.debug):  # a refusal while building or loading is the only thing printed
        runner = Runner.from_cfg(cfg)
        runner.test_loop  # builds the loop and dataset now (runner.test() reuses it)
        check_run_files(runner)  # every image / mask decodes, before anything is printed or run
        if cfg.load_from:  # load (and check) the checkpoint now; runner.test() then skips it (_has_loaded)
            with amsam_checkpoint_loader():
                runner.load_or_resume()
    runner.test()
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
