#!/usr/bin/env python
"""The paper's claims at toy scale, in one command: Table 4's rows (BLO-SAM; + calibration; + YOLO; AM-SAM), the
SAMed-style and plain SAM + YOLO baselines, at 4 and 8 shots over 3 seeds, on the demo domain of the shapes world
with the embedded toy SAM / YOLO (toy_world/), and Fig. 5 (D2 Dice per epoch, AM-SAM vs BLO-SAM).

    python tools/toy_table.py [--out work_dirs/toy_table] [--shots 4 8] [--seeds 0 1 2] [--methods ...]

Writes OUT/data (16 train / 40 test demo images, seeded k-shot splits), one work dir per cell
(OUT/runs/METHOD_demo_Kshot_seedS, each with its test/ run on the best D2 checkpoint, or the last one for single
level), then OUT/table.md + OUT/table.csv (tools/summarize.py: mean ± std over seeds) and OUT/fig5.png
(tools/plot_curves.py, seed 0, the largest k). A finished cell is not run again (delete its folder to redo it).
Each method is defined by its paper config (mmseg_amsam.apis.toy_experiments.TOY_METHODS); sizes, data and the
30-epoch schedule come from configs/amsam_demo.py. Toy scale: it checks the paper's claims' direction, not its
numbers.
"""
import argparse
import os
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault('YOLO_OFFLINE', '1')
os.environ.setdefault('YOLO_VERBOSE', 'False')

from mmengine.runner import Runner  # noqa: E402
from tqdm import tqdm  # noqa: E402

from mmseg_amsam.apis.experiment_cells import trained_checkpoint  # noqa: E402
from mmseg_amsam.apis.run_logs import find_test_runs  # noqa: E402
from mmseg_amsam.apis.toy_experiments import TOY_METHODS, toy_experiment  # noqa: E402
from mmseg_amsam.datasets import generate_demo_dataset, make_fewshot_splits  # noqa: E402

NUM_TRAIN, NUM_TEST = 16, 40


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--out', default='work_dirs/toy_table')
    p.add_argument('--shots', type=int, nargs='+', default=[4, 8])
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--methods', nargs='+', default=list(TOY_METHODS), choices=list(TOY_METHODS))
    return p.parse_args(argv)


def cells(args):
    """(method, shots or None, seed, cell name) of every run; the untrained baseline once per seed."""
    for method in args.methods:
        for seed in args.seeds:
            if method == 'sam-yolo':
                yield method, None, seed, f'{method}_demo_seed{seed}'
                continue
            for k in args.shots:
                yield method, k, seed, f'{method}_demo_{k}shot_seed{seed}'


def run_cell(method, shots, seed, work_dir, data_root) -> None:
    cfg = toy_experiment(method, osp.join(ROOT, 'configs'), data_root, shots, seed, work_dir)
    cfg.experiment_name = osp.basename(work_dir)
    checkpoint = None
    if cfg.get('train_cfg') is not None:
        Runner.from_cfg(cfg).train()
        checkpoint = trained_checkpoint(work_dir, bilevel=str(cfg.train_cfg.type).startswith('BiLevel'))
    test = toy_experiment(method, osp.join(ROOT, 'configs'), data_root, shots, seed, osp.join(work_dir, 'test'))
    test.experiment_name = osp.basename(work_dir) + '_test'
    test.load_from = checkpoint
    Runner.from_cfg(test).test()


def main(argv=None) -> int:
    args = parse_args(argv)
    data_root = osp.join(args.out, 'data')
    generate_demo_dataset(data_root, NUM_TRAIN, NUM_TEST, log=print)
    for seed in args.seeds:
        make_fewshot_splits(data_root, args.shots, seed=seed)
    todo = list(cells(args))
    names = []
    for method, shots, seed, name in tqdm(todo, desc='toy cells', unit='cell'):
        work_dir = osp.join(args.out, 'runs', name)
        if not find_test_runs(osp.join(work_dir, 'test')):
            run_cell(method, shots, seed, work_dir, data_root)
        names.append(f'{name.rsplit("_seed", 1)[0]}={work_dir}')
    load = _load_tool
    status = load('summarize').main([*names, '--out', osp.join(args.out, 'table.md'),
                                     '--csv', osp.join(args.out, 'table.csv')])
    k, seed = max(args.shots), args.seeds[0]
    curves = [osp.join(args.out, 'runs', f'{m}_demo_{k}shot_seed{seed}') for m in ('amsam', 'blosam')
              if m in args.methods]
    if len(curves) == 2:
        status |= load('plot_curves').main([*curves, '--out', osp.join(args.out, 'fig5.png'), '--labels', 'AM-SAM',
                                            'BLO-SAM', '--title', f'Toy shapes world, {k} examples: D2 Dice'])
    return status


def _load_tool(name):
    import importlib.util
    spec = importlib.util.spec_from_file_location(f'tool_{name}', osp.join(ROOT, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


if __name__ == '__main__':
    sys.exit(main())
