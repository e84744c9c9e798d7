"""Qualitative comparison (paper Figs. 4, 7, 8): for N test images, image / ground truth / each run's prediction
side by side, with the prompt box each run used.

    python tools/visualize.py configs/amsam_isic_8shot.py \
        --runs AM-SAM=work_dirs/amsam_isic_8shot/best_mDice_epoch_80.pth \
               BLO-SAM=work_dirs/blosam_isic_8shot/best_mDice_epoch_95.pth \
        --images 4 --out fig_isic.png [--data-root data/isic2018] [--seed 0]

CONFIG gives the test set (test_dataloader; --data-root overrides its data_root). Each run's model is built from
the config recorded in its checkpoint (so AM-SAM and BLO-SAM runs can be compared although their models differ);
--model-from config builds every run from CONFIG instead. The figure has one row per image and
2 + len(runs) columns of --panel-size pixels, plus a header row of 40 pixels.
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.config import Config, DictAction  # noqa: E402

HEADER_PX = 40


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Image / ground truth / predictions of several runs')
    parser.add_argument('config', help='config whose test set is shown')
    parser.add_argument('--runs', nargs='+', required=True, metavar='NAME=CHECKPOINT')
    parser.add_argument('--images', type=int, default=4, help='number of test images (rows)')
    parser.add_argument('--out', required=True, help='output PNG')
    parser.add_argument('--data-root', help='override the test set data_root')
    parser.add_argument('--seed', type=int, default=None, help='pick the images at random with this seed '
                        '(default: the first N)')
    parser.add_argument('--model-from', choices=('checkpoint', 'config'), default='checkpoint',
                        help="build each run's model from the config saved in its checkpoint (default; falls back "
                        'to CONFIG when absent) or from CONFIG')
    parser.add_argument('--panel-size', type=int, default=256, help='pixels per panel (default 256)')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='overrides of CONFIG')
    return parser.parse_args(argv)


def parse_runs(specs):
    runs = []
    for spec in specs:
        if '=' not in spec:
            raise SystemExit(f'error: --runs takes NAME=CHECKPOINT, got {spec!r}')
        name, path = spec.split('=', 1)
        if not osp.isfile(path):
            raise SystemExit(f'error: checkpoint of run {name!r} not found: {path}')
        runs.append((name, path))
    return runs


def test_samples(cfg: Config, n: int, seed=None):
    """(image path, ground-truth path or None) of n test images."""
    import random

    from mmseg.registry import DATASETS
    ds_cfg = cfg.test_dataloader.dataset
    ds = DATASETS.build(ds_cfg)
    indices = list(range(len(ds)))
    if seed is not None:
        random.Random(seed).shuffle(indices)
    picked = [ds.get_data_info(i) for i in indices[:n]]
    return [(info['img_path'], info.get('seg_map_path')) for info in picked], ds.metainfo


def run_config(checkpoint_path: str, fallback: Config, model_from: str) -> Config:
    """The config to build a run's model from: the one saved in its checkpoint, with CONFIG's test pipeline."""
    if model_from == 'config':
        return fallback
    from mmengine.runner.checkpoint import _load_checkpoint
    meta = _load_checkpoint(checkpoint_path, map_location='cpu').get('meta', {})
    text = meta.get('cfg')
    if not text:
        return fallback
    cfg = Config.fromstring(text, file_format='.py')
    cfg.test_dataloader = fallback.test_dataloader  # images are read like the shown test set
    return cfg


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault('YOLO_VERBOSE', 'False')
    import cv2
    import matplotlib
    import numpy as np
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from PIL import Image

    import mmseg_amsam  # noqa: F401
    from mmseg_amsam.apis import AMSAMInferencer
    from mmseg_amsam.apis.drawing import overlay

    runs = parse_runs(args.runs)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.data_root:
        cfg.test_dataloader.dataset.data_root = args.data_root
    from mmengine.registry import init_default_scope
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    samples, metainfo = test_samples(cfg, args.images, args.seed)
    if not samples:
        print('error: the test set is empty', file=sys.stderr)
        return 1
    palette = metainfo.get('palette')
    paths = [img for img, _ in samples]
    predictions = []
    for name, ckpt in runs:
        inferencer = AMSAMInferencer(run_config(ckpt, cfg, args.model_from), ckpt, device=args.device)
        predictions.append(inferencer(paths, batch_size=4))
        print(f'{name}: {len(paths)} images predicted ({ckpt})')

    cols, rows, p, dpi = 2 + len(runs), len(samples), args.panel_size, 100
    width, height = cols * p, rows * p + HEADER_PX
    fig = plt.figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    titles = ['image', 'ground truth'] + [name for name, _ in runs]
    for c, title in enumerate(titles):
        fig.text((c + 0.5) / cols, 1 - HEADER_PX / 2 / height, title, ha='center', va='center', fontsize=11)
    for r, (img_path, gt_path) in enumerate(samples):
        rgb = cv2.imread(img_path, cv2.IMREAD_COLOR)[..., ::-1]
        gt = np.array(Image.open(gt_path)) if gt_path and osp.isfile(gt_path) else None
        if gt is not None and gt.ndim == 3:
            gt = gt[..., 0]
        panels = [rgb, overlay(rgb, gt, None, palette) if gt is not None else np.zeros_like(rgb)]
        for pred in predictions:
            res = pred[r]
            panels.append(overlay(rgb, res.mask, res.box, palette))
        for c, panel in enumerate(panels):
            ax = fig.add_axes([c / cols, (rows - 1 - r) * p / height, 1 / cols, p / height])
            ax.imshow(panel)
            ax.set_axis_off()
        fig.text(2 / width, (rows - 1 - r) * p / height + 2 / height, osp.basename(img_path), fontsize=7,
                 color='white', ha='left', va='bottom', bbox=dict(facecolor='black', alpha=0.5, pad=1, lw=0))
    fig.savefig(args.out, dpi=dpi)
    plt.close(fig)
    print(f'wrote {args.out} ({width}x{height} px: {rows} images x {cols} columns)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
