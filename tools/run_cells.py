#!/usr/bin/env python
"""Run a k-shot protocol: configs x shots x seeds, each cell trained and tested, then one table (mean ± std).

    python tools/run_cells.py --table 2 --seeds 0 1 2                     # Table 2 (HumanSeg), 3 seeds
    python tools/run_cells.py --configs amsam_isic blosam_isic --shots 4 8 16 --seeds 0 1 2
    python tools/run_cells.py --table 3 --seeds 0 1 2 --select-on val --val-size 8   # select on held-out images
    python tools/run_cells.py --table 1 --dry-run                         # print the commands only
    python tools/run_cells.py --table 2 --launcher dist --gpus 4          # each training via tools/dist_train.sh
    python tools/run_cells.py --table 2 --launcher slurm --partition gpu  # ... or tools/slurm_train.sh

A config NAME runs as configs/NAME_Kshot.py (or configs/NAME.py) on the seeded split splits/train_Kshot_seedS.txt
(written first, in the config's data root), seed S everywhere (randomness, D1/D2 split), in OUT/NAME_Kshot/seedS;
then tools/test.py tests the best checkpoint (bi-level), the last one (single level) or the untrained model
(sam-yolo) in OUT/NAME_Kshot/seedS/test. A cell whose test result exists is skipped, so a crashed or interrupted
protocol resumes where it stopped (a cell whose training stopped half-way resumes it with --resume). A failed cell is
reported and the others still run. The table: OUT/table.md and OUT/table.csv (tools/summarize.py: mean ± std (n)
over seeds). Selection: see mmseg_amsam/apis/experiment_cells.py (--select-on d2 is the paper's).
"""
import argparse
import os
import os.path as osp
import shlex
import subprocess
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

from mmseg_amsam.apis.cli_errors import run_cli  # noqa: E402
from mmseg_amsam.apis.experiment_cells import (PAPER_TABLES, SELECT_ON, checkpoint_to_test, plan_cells,  # noqa: E402
                                               test_command, train_command, write_splits)

TOOLS = 'tools'  # relative to ROOT, where the commands run


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument('--table', choices=sorted(PAPER_TABLES), help="a paper table's cells")
    what.add_argument('--configs', nargs='+', help='config names (configs/NAME[_Kshot].py) or paths')
    p.add_argument('--shots', type=int, nargs='+', help='k (default: the table\'s, else 4 8)')
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--out', help='work dirs and table (default work_dirs/cells_table{N} / work_dirs/cells)')
    p.add_argument('--select-on', choices=SELECT_ON, default='d2',
                   help="checkpoint selection of bi-level runs: 'd2' (paper) or 'val' (held-out subset)")
    p.add_argument('--val-size', type=int, default=8, help='images in the held-out validation subset (val)')
    p.add_argument('--launcher', choices=['local', 'dist', 'slurm'], default='local')
    p.add_argument('--gpus', type=int, default=1, help='GPUs per training (dist)')
    p.add_argument('--partition', help='slurm partition (slurm)')
    p.add_argument('--cfg-options', nargs='+', default=[], help='extra key=value overrides for every cell')
    p.add_argument('--dry-run', action='store_true', help='print the commands, run nothing, write nothing')
    p.add_argument('--debug', action='store_true', help='show tracebacks')
    return p.parse_args(argv)


def groups(args):
    """[(config names, shots, untrained names)] for the table or the configs given."""
    if args.table:
        return [([name], args.shots or shots or [], [name] if shots is None else [])
                for name, shots in PAPER_TABLES[args.table]]
    names = [osp.splitext(osp.basename(c))[0] if c.endswith('.py') else c for c in args.configs]
    return [(names, args.shots or [4, 8], [])]


def run(cmd, log_path) -> int:
    os.makedirs(osp.dirname(log_path), exist_ok=True)
    with open(log_path, 'a') as log:
        log.write('$ ' + shlex.join(cmd) + '\n')
        log.flush()
        return subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT)


def main(argv=None) -> int:
    args = parse_args(argv)
    out = osp.abspath(args.out or osp.join('work_dirs', f'cells_table{args.table}' if args.table else 'cells'))
    cwd = os.getcwd()
    os.chdir(ROOT)  # configs name their data roots relative to the repository, as tools/train.py runs them
    try:
        return run_protocol(args, osp.relpath(out))
    finally:
        os.chdir(cwd)


def run_protocol(args, out: str) -> int:
    config_dir = 'configs'
    cells = []
    try:
        for names, shots, untrained in groups(args):
            cells += plan_cells(names, shots, args.seeds, out, config_dir, args.select_on, args.val_size,
                                args.cfg_options, untrained)
    except FileNotFoundError as e:
        raise FileNotFoundError(f'{e}. Name configs as in configs/ (e.g. amsam_isic), without the _Kshot suffix.')
    if args.dry_run:
        for cell in cells:
            status = 'done, skipped' if cell.done() else 'to run'
            print(f'# {cell.name} seed {cell.seed} ({status})')
            if cell.trains:
                print(shlex.join(train_command(cell, TOOLS, args.launcher, args.gpus, args.partition)))
            print(' '.join(shlex.quote(a) if not a.startswith('$(') else a
                           for a in test_command(cell, TOOLS, checkpoint_to_test(cell))))
        return 0
    try:
        written = write_splits([c for c in cells if not c.done()], args.select_on, args.val_size)
    except FileNotFoundError as e:
        raise FileNotFoundError(f'{e}\nPrepare the dataset first (README, "Datasets").') from e
    print(f'[run_cells] {len(cells)} cells in {out}; {len(written)} split file(s) written')
    from tqdm import tqdm
    failed = []
    for cell in tqdm(cells, desc='cells', unit='cell'):
        if cell.done():
            continue
        log_path = osp.join(cell.work_dir, 'run_cells.log')
        if cell.trains:
            resume = osp.isfile(osp.join(cell.work_dir, 'last_checkpoint'))
            if run(train_command(cell, TOOLS, args.launcher, args.gpus, args.partition, resume), log_path):
                failed.append((cell, 'training', log_path))
                continue
        checkpoint = checkpoint_to_test(cell)
        if checkpoint.startswith('$(') or run(test_command(cell, TOOLS, checkpoint), log_path):
            failed.append((cell, 'test', log_path))
    finished = [c for c in cells if c.done()]
    status = 0
    if finished:
        status = _summarize([f'{c.name}={c.work_dir}' for c in finished], out)
    for cell, stage, log_path in failed:
        print(f'[run_cells] FAILED: {cell.name} seed {cell.seed} ({stage}); log: {log_path}', file=sys.stderr)
    return 1 if failed or status else 0


def _summarize(named_dirs, out) -> int:
    import importlib.util
    spec = importlib.util.spec_from_file_location('tool_summarize', osp.join(TOOLS, 'summarize.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(named_dirs + ['--out', osp.join(out, 'table.md'), '--csv', osp.join(out, 'table.csv')])


if __name__ == '__main__':
    sys.exit(run_cli(main))
