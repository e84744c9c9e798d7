"""Test a segmentor (same arguments as mmseg's tools/test.py); importing the plugin registers AM-SAM."""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.config import DictAction  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

import mmseg_amsam  # noqa: E402,F401
from mmseg_amsam.utils.run_config import load_run_config  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description='Test (and eval) a segmentor')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file, or `none` to test the model as built from the config '
                        '(e.g. configs/sam-yolo_*.py: pretrained SAM + YOLO, nothing trained)')
    parser.add_argument('--work-dir', help='the directory to save the evaluation metrics')
    parser.add_argument('--out', help='directory to save the predicted masks (PNG)')
    parser.add_argument('--show-dir', help='directory to save overlays of predictions (mmseg SegVisualizationHook: '
                        'DIR/vis_data/vis_image/*.png)')
    parser.add_argument('--show-interval', type=int, default=1,
                        help='with --show-dir: draw every N-th test image (default 1 = all; the hook\'s own '
                        'default would be 50)')
    parser.add_argument('--wait-time', type=float, default=2)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override settings in the config')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main():
    args = parse_args()
    cfg = load_run_config(args.config, args.cfg_options, args.work_dir, args.launcher)
    cfg.load_from = None if args.checkpoint.lower() == 'none' else args.checkpoint
    if args.show_dir:
        vis = cfg.default_hooks.setdefault('visualization', dict(type='SegVisualizationHook'))
        vis['draw'] = True
        vis['interval'] = args.show_interval
        cfg.visualizer['save_dir'] = args.show_dir
    if args.out:
        cfg.test_evaluator = [cfg.test_evaluator] if isinstance(cfg.test_evaluator, dict) else cfg.test_evaluator
        cfg.test_evaluator = list(cfg.test_evaluator) + [dict(type='mmseg.IoUMetric', format_only=True,
                                                              output_dir=args.out)]
    runner = Runner.from_cfg(cfg)
    runner.test()


if __name__ == '__main__':
    main()
