"""Validation Dice per epoch of several runs on one figure (paper Fig. 5: AM-SAM vs BLO-SAM, 8 examples).

    python tools/plot_curves.py work_dirs/amsam_tiktok_8shot work_dirs/blosam_tiktok_8shot --out curves.png
    python tools/plot_curves.py RUN_A RUN_B --labels AM-SAM BLO-SAM --metric mDice --title 'TikTok, 8 examples'

Reads every WORK_DIR/TIMESTAMP/vis_data/scalars.json (mmengine's LocalVisBackend; a resumed run continues the
curve). Exit status 2 (with the reason) when a work dir has no validation values of the metric.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmseg_amsam.apis.run_logs import RunError, config_name, parse_experiment, val_curve  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Plot validation curves of mmengine runs')
    parser.add_argument('work_dirs', nargs='+', help='work dirs of the runs to compare')
    parser.add_argument('--out', required=True, help='output PNG')
    parser.add_argument('--metric', default='mDice', help='validation metric (default mDice)')
    parser.add_argument('--labels', nargs='+', help='legend labels, one per work dir (default: from the config '
                        'name, e.g. AM-SAM)')
    parser.add_argument('--title', default=None)
    parser.add_argument('--xlabel', default='epoch')
    parser.add_argument('--width', type=int, default=800, help='figure width in pixels (default 800)')
    parser.add_argument('--height', type=int, default=500, help='figure height in pixels (default 500)')
    return parser.parse_args(argv)


def default_label(work_dir: str) -> str:
    exp = parse_experiment(config_name(work_dir))
    if exp.dataset is None:
        return exp.name
    return exp.method + (f' ({exp.shots}-shot)' if exp.shots else '')


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.labels and len(args.labels) != len(args.work_dirs):
        print(f'error: {len(args.labels)} labels for {len(args.work_dirs)} work dirs', file=sys.stderr)
        return 2
    curves = []
    for work_dir in args.work_dirs:
        try:
            curves.append(val_curve(work_dir, args.metric))
        except RunError as exc:
            print(f'error: {exc}', file=sys.stderr)
            return 2
    labels = args.labels or [default_label(w) for w in args.work_dirs]

    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    dpi = 100
    fig, ax = plt.subplots(figsize=(args.width / dpi, args.height / dpi), dpi=dpi)
    for label, curve in zip(labels, curves):
        steps, values = zip(*curve)
        ax.plot(steps, values, marker='o' if len(steps) < 30 else None, markersize=3, label=label)
    ax.set_xlabel(args.xlabel)
    ax.set_ylabel(f'validation {args.metric} (%)' if 'Dice' in args.metric else f'validation {args.metric}')
    if args.title:
        ax.set_title(args.title)
    ax.grid(alpha=0.3)
    ax.legend(loc='best')
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    fig.savefig(args.out, dpi=dpi)
    plt.close(fig)
    for label, curve in zip(labels, curves):
        best = max(curve, key=lambda p: p[1])
        print(f'{label}: {len(curve)} validations, best {args.metric} {best[1]:.2f} at {args.xlabel} {best[0]}')
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
