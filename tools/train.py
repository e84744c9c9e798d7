"""Train a segmentor (same arguments as mmseg's tools/train.py); importing the plugin registers AM-SAM."""
import argparse
import logging
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout without installing

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from mmengine.config import DictAction  # noqa: E402
from mmengine.logging import print_log  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

import mmseg_amsam  # noqa: E402,F401  registers the plugin
from mmseg_amsam.apis.cli_errors import held_console, run_cli  # noqa: E402
from mmseg_amsam.apis.prerequisites import check_prerequisites  # noqa: E402
from mmseg_amsam.apis.run_config import load_run_config  # noqa: E402
from mmseg_amsam.engine.hooks.safe_checkpoint_hook import resume_checkpoint  # noqa: E402
from mmseg_amsam.engine.hooks.data_check_hook import check_run_files  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a segmentor')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--resume', action='store_true', default=False,
                        help='resume from the latest checkpoint in the work_dir (the one named in '
                        'WORK_DIR/last_checkpoint); refused when there is none')
    parser.add_argument('--amp', action='store_true', default=False, help='enable automatic-mixed-precision training')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config, key=value (e.g. model.train_cfg.unrolled=True)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher')
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
    if args.resume and not cfg.get('load_from'):  # mmengine would train from scratch when there is nothing to resume
        resume_checkpoint(cfg.work_dir)
    check_prerequisites(cfg, phases=('train', 'val'))  # every missing file at once, before anything is built
    if args.amp:
        from mmseg_amsam.engine.amp import enable_amp
        enable_amp(cfg)
        print_log('AMP enabled', logger='current', level=logging.INFO)
    cfg.resume = args.resume
    if args.launcher == 'pytorch' and not torch.cuda.is_available() and not dist.is_initialized():
        # CPU processes (gloo): mmengine's launcher would call torch.cuda.set_device; the Runner reuses this group
        dist.init_process_group('gloo')
        cfg.env_cfg.setdefault('dist_cfg', {})['backend'] = 'gloo'
    with held_console(not args.debug):  # a refusal while building is the only thing printed
        runner = Runner.from_cfg(cfg)
        _ = runner.train_loop, runner.val_loop  # builds the loops and datasets now (runner.train() reuses them)
        check_run_files(runner)  # every image / mask decodes, before anything is printed or trained
    runner.train()
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
