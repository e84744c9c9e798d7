#!/usr/bin/env python
"""Pretrain the embedded toy SAM and toy YOLOv8 on the generated "shapes world" (fixed seeds, CPU).

    python tools/pretrain_toy.py                 # rebuild toy_world/weights/{toy_sam.pth,toy_yolov8.pt} + metrics
    python tools/pretrain_toy.py --check         # rebuild in a temporary folder, compare metrics with the committed
    python tools/pretrain_toy.py --quick --out /tmp/toy   # a 2-minute smoke version (weak weights)

Writes, under --out (default toy_world/weights): ``toy_sam.pth`` (official SAM layout: image_encoder.*,
prompt_encoder.*, mask_decoder.*, fp16) and ``toy_yolov8.pt`` (ultralytics format, classes = shape families), and
``toy_world/metrics.json`` (metrics, sizes, SHA-256, the command, timings). ``make pretrain-toy`` runs the default.
"""
import argparse
import json
import os
import os.path as osp
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
os.environ.setdefault('YOLO_OFFLINE', '1')
os.environ.setdefault('YOLO_VERBOSE', 'False')

import numpy as np  # noqa: E402
import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from mmseg_amsam.apis.toy_sam_pretraining import (TOY_SAM, box_dice, object_arrays, sam_state_dict_fp16,  # noqa: E402
                                                  train_toy_sam)
from mmseg_amsam.apis.toy_yolo_pretraining import mean_best_box_iou, train_toy_yolo, write_yolo_dataset  # noqa: E402
from mmseg_amsam.datasets.scene_pool import make_scene_pool  # noqa: E402
from mmseg_amsam.datasets.shapes_world import make_demo_sample  # noqa: E402
from mmseg_amsam.utils.file_stamp import file_sha256  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
METRICS = ROOT / 'toy_world' / 'metrics.json'
YOLO_YAML = ROOT / 'toy_world' / 'yolov8-toy.yaml'
SAM_FILE, YOLO_FILE = 'toy_sam.pth', 'toy_yolov8.pt'
# metric -> allowed |rebuilt - committed| for --check (CPU kernels differ between machines; the runs are seeded)
TOLERANCE = dict(sam_box_dice_pretrain=3.0, sam_box_dice_held_out=5.0, yolo_box_iou_pretrain=5.0,
                 yolo_box_iou_held_out=5.0)
EVAL_SEED = 1000  # evaluation scenes: never the training pool (seed 0) nor the demo data (seeds of data/demo_shapes)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--out', type=Path, default=ROOT / 'toy_world' / 'weights')
    p.add_argument('--scenes', type=int, default=1500, help='pretraining scenes (SAM pool; YOLO train set)')
    p.add_argument('--sam-steps', type=int, default=3000)
    p.add_argument('--sam-batch', type=int, default=16)
    p.add_argument('--yolo-epochs', type=int, default=30)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--threads', type=int, default=None, help='torch threads (default: torch\'s own)')
    p.add_argument('--quick', action='store_true', help='smoke version: 200 scenes, 100 SAM steps, 2 YOLO epochs')
    p.add_argument('--check', action='store_true', help='rebuild in a temporary folder and compare the metrics '
                   f'with {METRICS.relative_to(ROOT)}; exit 1 on a difference above the tolerance')
    p.add_argument('--only', choices=('sam', 'yolo'), help='rebuild one model only (the other is read from --out)')
    args = p.parse_args(argv)
    if args.quick:
        args.scenes, args.sam_steps, args.yolo_epochs = 200, 100, 2
    return args


def evaluation_sets():
    """Pretraining domain (single objects of unseen scenes) and the held-out domain (the demo's)."""
    pre = make_scene_pool(200, EVAL_SEED, 1, num_objects=(1, 1))
    held = [make_demo_sample(np.random.default_rng([EVAL_SEED, 2, i])) for i in range(100)]
    return object_arrays(pre), dict(images=np.stack([h[0] for h in held]),
                                    masks=np.stack([h[1].astype(bool) for h in held]))


def evaluate(out: Path, sets) -> dict:
    pre, held = sets
    sam = build_loaded_sam(out / SAM_FILE)
    yolo = str(out / YOLO_FILE)
    return dict(sam_box_dice_pretrain=round(box_dice(sam, pre['images'], pre['masks']), 2),
                sam_box_dice_held_out=round(box_dice(sam, held['images'], held['masks']), 2),
                yolo_box_iou_pretrain=round(mean_best_box_iou(yolo, pre['images'], pre['masks']), 2),
                yolo_box_iou_held_out=round(mean_best_box_iou(yolo, held['images'], held['masks']), 2))


def build_loaded_sam(path: Path):
    from mmseg_amsam.apis.toy_sam_pretraining import build_toy_sam
    sam = build_toy_sam(**TOY_SAM)
    state = torch.load(path, map_location='cpu', weights_only=True)
    sam.load_state_dict({k: v.float() for k, v in state.items()})
    return sam.eval()


def pretrain(args, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    timings = {}
    t0 = time.time()
    with tqdm(total=args.scenes, desc='shapes world', unit='scene') as bar:
        pool = make_scene_pool(args.scenes, args.seed, 0, progress=lambda i: bar.update(1))
    timings['generate_s'] = round(time.time() - t0, 1)
    if args.only != 'yolo':
        t0 = time.time()
        with tqdm(total=args.sam_steps, desc='toy SAM', unit='step') as bar:
            def progress(step, loss):
                bar.update(1)
                if step % 20 == 0:
                    bar.set_postfix(loss=f'{loss:.3f}')
            sam = train_toy_sam(pool, args.sam_steps, args.sam_batch, seed=args.seed, progress=progress)
        torch.save(sam_state_dict_fp16(sam), out / SAM_FILE)
        timings['sam_s'] = round(time.time() - t0, 1)
    if args.only != 'sam':
        t0 = time.time()
        with tempfile.TemporaryDirectory(prefix='toy_yolo_') as tmp:
            val = make_scene_pool(max(32, args.scenes // 20), args.seed, 3)
            data = write_yolo_dataset(Path(tmp), pool, val)
            with tqdm(total=args.yolo_epochs, desc='toy YOLO', unit='epoch') as bar:
                def yolo_progress(epoch, metrics):
                    bar.update(1)
                    bar.set_postfix(mAP50=f'{metrics.get("metrics/mAP50(B)", float("nan")):.3f}')
                train_toy_yolo(str(YOLO_YAML), data, out / YOLO_FILE, args.yolo_epochs, seed=args.seed,
                               progress=yolo_progress)
        timings['yolo_s'] = round(time.time() - t0, 1)
    return timings


def command_line(args) -> str:
    parts = ['python tools/pretrain_toy.py']
    defaults = parse_args([])
    for key in ('scenes', 'sam_steps', 'sam_batch', 'yolo_epochs', 'seed'):
        if getattr(args, key) != getattr(defaults, key):
            parts.append(f'--{key.replace("_", "-")} {getattr(args, key)}')
    return ' '.join(parts)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.check:
        if not METRICS.is_file():
            print(f'error: {METRICS} is missing; run `python tools/pretrain_toy.py` first', file=sys.stderr)
            return 1
        committed = json.loads(METRICS.read_text())
        with tempfile.TemporaryDirectory(prefix='toy_check_') as tmp:
            if args.only:  # the model not rebuilt is the committed one
                kept = YOLO_FILE if args.only == 'sam' else SAM_FILE
                shutil.copyfile(ROOT / 'toy_world' / 'weights' / kept, Path(tmp) / kept)
            pretrain(args, Path(tmp))
            metrics = evaluate(Path(tmp), evaluation_sets())
        bad = []
        print(f'{"metric":28s} {"committed":>10s} {"rebuilt":>10s} {"tolerance":>10s}')
        for key, tol in TOLERANCE.items():
            old, new = committed['metrics'][key], metrics[key]
            print(f'{key:28s} {old:10.2f} {new:10.2f} {tol:10.1f}')
            if abs(old - new) > tol:
                bad.append(key)
        if bad:
            print(f'error: rebuilt metrics differ from {METRICS} beyond the tolerance: {bad}', file=sys.stderr)
            return 1
        print('check passed: the rebuilt toy models match the committed metrics')
        return 0
    start = time.time()
    timings = pretrain(args, args.out)
    metrics = evaluate(args.out, evaluation_sets())
    files = {name: dict(bytes=os.path.getsize(args.out / name), sha256=file_sha256(args.out / name))
             for name in (SAM_FILE, YOLO_FILE)}
    record = dict(command=command_line(args), torch_threads=torch.get_num_threads(), toy_sam=TOY_SAM,
                  metrics=metrics, files=files, timings=dict(timings, total_s=round(time.time() - start, 1)))
    print(json.dumps(record, indent=1))
    if args.out.resolve() == (ROOT / 'toy_world' / 'weights').resolve():
        METRICS.write_text(json.dumps(record, indent=1) + '\n')
        print(f'wrote {METRICS}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
