"""Collect the test Dice of finished runs into tables shaped like the paper's (rows = method, columns = dataset x
number of training examples).

    python tools/summarize.py work_dirs/* --out results.md --csv results.csv
    python tools/summarize.py AM-SAM=work_dirs/my_run ...      # NAME=WORK_DIR: set the experiment name by hand

For each work dir the latest ``runner.test()`` metrics are used (WORK_DIR/**/TIMESTAMP/TIMESTAMP.json, as
tools/test.py writes them; a ``test/`` sub-folder of a training work dir is found too). The experiment comes from
the config name recorded in the run (the CONFIG_NAME.py mmengine dumps next to the TIMESTAMP folders), parsed as
METHOD_DATASET_Kshot: amsam_isic_8shot, blosam_tiktok_4shot, deeplabv3_humanseg_16shot ... Several runs of one
cell (seeds) are shown as mean ± std (n). Cells without a run are marked '–'.
"""
import argparse
import csv
import os.path as osp
import statistics
import sys
from collections import defaultdict

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmseg_amsam.apis.run_logs import (DATASET_ORDER, METHOD_ORDER, config_name, parse_experiment,  # noqa: E402
                                    find_test_runs)

MISSING = '–'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Tables of test Dice from finished runs')
    parser.add_argument('work_dirs', nargs='+', help='work dirs (or NAME=WORK_DIR)')
    parser.add_argument('--out', required=True, help='Markdown output')
    parser.add_argument('--csv', help='also write the table as CSV')
    parser.add_argument('--metric', default='mDice', help='test metric (default mDice)')
    parser.add_argument('--digits', type=int, default=1)
    return parser.parse_args(argv)


def collect(work_dirs, metric):
    """[(experiment, value, json path)] and the list of (work dir, reason) skipped."""
    runs, skipped = [], []
    for spec in work_dirs:
        name = None
        if '=' in spec and not osp.exists(spec):
            name, spec = spec.split('=', 1)
        results = find_test_runs(spec, metric) if osp.isdir(spec) else []
        if not results:
            skipped.append((spec, f'no test {metric} (no TIMESTAMP/TIMESTAMP.json from tools/test.py)'
                            if osp.isdir(spec) else 'not a folder'))
            continue
        path, metrics = results[-1]
        run_dir = osp.dirname(osp.dirname(path))
        exp = parse_experiment(name or config_name(run_dir, near=path))
        runs.append((exp, float(metrics[metric]), path))
    return runs, skipped


def build_table(runs, digits=1):
    """(header, rows) with rows = [method, cell, ...]; columns = dataset x shots in the paper's order."""
    cells = defaultdict(list)
    methods, columns = [], []
    for exp, _, _ in runs:
        if exp.method not in methods:
            methods.append(exp.method)
        col = (exp.dataset or exp.name, exp.shots)
        if exp.shots is not None and col not in columns:
            columns.append(col)
    for exp, value, _ in runs:
        dataset = exp.dataset or exp.name
        if exp.shots is None:  # untrained (e.g. sam-yolo_isic): the same value under every shots column, as the
            targets = [c for c in columns if c[0] == dataset] or [(dataset, None)]  # paper's SAM row
        else:
            targets = [(dataset, exp.shots)]
        for col in targets:
            cells[(exp.method, col)].append(value)
            if col not in columns:
                columns.append(col)
    known = {m: i for i, m in enumerate(METHOD_ORDER)}
    # paper order; variants (ablations) just above their method: AM-SAM (YOLO only), ..., AM-SAM
    methods.sort(key=lambda m: (known.get(m.split(' (')[0], len(known)), ' (' not in m, m))
    order = {d: i for i, d in enumerate(DATASET_ORDER)}
    columns.sort(key=lambda c: (order.get(c[0], len(order)), c[0], c[1] if c[1] is not None else 1 << 30))
    header = ['Method'] + [f'{d} {k}-shot' if k else d for d, k in columns]
    rows = []
    for method in methods:
        row = [method]
        for col in columns:
            values = cells.get((method, col))
            if not values:
                row.append(MISSING)
            elif len(values) == 1:
                row.append(f'{values[0]:.{digits}f}')
            else:
                row.append(f'{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f} '
                           f'(n={len(values)})')
        rows.append(row)
    return header, rows


def markdown(header, rows, metric, skipped, runs):
    lines = [f'# Test {metric} (%)', '', '| ' + ' | '.join(header) + ' |',
             '|' + '|'.join(['---'] + [':---:'] * (len(header) - 1)) + '|']
    lines += ['| ' + ' | '.join(r) + ' |' for r in rows]
    lines += ['', f'{len(runs)} run(s): ' + ', '.join(sorted({e.name for e, _, _ in runs})) + '.']
    if skipped:
        lines += ['', 'Not included:'] + [f'- `{w}`: {why}' for w, why in skipped]
    return '\n'.join(lines) + '\n'


def main(argv=None) -> int:
    args = parse_args(argv)
    runs, skipped = collect(args.work_dirs, args.metric)
    for work_dir, why in skipped:
        print(f'warning: {work_dir}: {why}', file=sys.stderr)
    if not runs:
        print(f'error: no finished test run among {len(args.work_dirs)} work dir(s)', file=sys.stderr)
        return 1
    header, rows = build_table(runs, args.digits)
    text = markdown(header, rows, args.metric, skipped, runs)
    with open(args.out, 'w', encoding='utf-8') as f:
        f.write(text)
    if args.csv:
        with open(args.csv, 'w', newline='', encoding='utf-8') as f:
            writer = csv.writer(f)
            writer.writerow(header)
            writer.writerows(rows)
    print(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
