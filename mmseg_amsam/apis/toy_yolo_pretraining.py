"""Pretraining of the toy YOLOv8 (ultralytics, built from ``toy_world/yolov8-toy.yaml``) on shapes-world scenes."""
import shutil
from pathlib import Path
from typing import Callable, List, Optional, Sequence

import numpy as np
import torch
from PIL import Image

from ..datasets.scene_pool import ScenePool
from ..datasets.shapes_world import PRETRAIN_FAMILIES, mask_box
from ..models.prompters.box_geometry import box_iou  # noqa: F401  (re-exported: tests, tools)


def write_yolo_dataset(root: Path, train: ScenePool, val: ScenePool, names: Sequence[str] = PRETRAIN_FAMILIES) -> Path:
    """Write ``train`` / ``val`` in ultralytics' layout (PNG images, one ``cls cx cy w h`` line per visible object)
    under ``root``; returns the dataset yaml."""
    for split, pool in (('train', train), ('val', val)):
        img_dir, lbl_dir = root / 'images' / split, root / 'labels' / split
        img_dir.mkdir(parents=True, exist_ok=True)
        lbl_dir.mkdir(parents=True, exist_ok=True)
        size = pool.images.shape[1]
        for n in range(len(pool)):
            Image.fromarray(pool.images[n]).save(img_dir / f'{n:05d}.png')
            lines = []
            for j, cls in enumerate(pool.classes[n]):
                x1, y1, x2, y2 = (v / size for v in mask_box(pool.labels[n] == j + 1))
                lines.append(f'{cls} {(x1 + x2) / 2:.6f} {(y1 + y2) / 2:.6f} {x2 - x1:.6f} {y2 - y1:.6f}')
            (lbl_dir / f'{n:05d}.txt').write_text('\n'.join(lines) + '\n')
    data = root / 'data.yaml'
    data.write_text(f'path: {root}\ntrain: images/train\nval: images/val\nnames:\n' +
                    ''.join(f'  {i}: {name}\n' for i, name in enumerate(names)))
    return data


def train_toy_yolo(model_yaml: str, data_yaml: Path, out: Path, epochs: int, imgsz: int = 128, batch: int = 32,
                   seed: int = 0, progress: Optional[Callable[[int, dict], None]] = None) -> Path:
    """Train with ultralytics (CPU, fixed seed, no mosaic: the scenes are already small) and copy the final stripped
    weights (fp16, no optimizer) to ``out``. ``progress(epoch, metrics)`` is called after each epoch."""
    from ultralytics import YOLO
    threads = torch.get_num_threads()
    model = YOLO(model_yaml, task='detect')
    if progress:
        model.add_callback('on_fit_epoch_end', lambda trainer: progress(trainer.epoch + 1, dict(trainer.metrics)))
    project = data_yaml.parent / 'runs'
    try:
        model.train(data=str(data_yaml), epochs=epochs, imgsz=imgsz, batch=batch, device='cpu', workers=0, seed=seed,
                    deterministic=True, project=str(project), name='toy', exist_ok=True, plots=False, amp=False,
                    mosaic=0.0, close_mosaic=0, flipud=0.5, fliplr=0.5, degrees=0.0, scale=0.3, translate=0.1,
                    warmup_epochs=1.0, patience=epochs, verbose=False, cache='ram')
    finally:  # ultralytics' CPU trainer changes torch's thread count for the whole process
        torch.set_num_threads(threads)
    weights = project / 'toy' / 'weights'
    best = weights / 'best.pt' if (weights / 'best.pt').is_file() else weights / 'last.pt'
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(best, out)
    return out


def best_boxes(weights: str, images: np.ndarray, imgsz: int = 128, conf: float = 0.25) -> List[Optional[tuple]]:
    """The most confident box (xyxy pixels) per RGB image, as ``YOLOBoxPrompter`` picks it, or None."""
    from ..models.prompters.yolo_weights import load_yolo
    threads = torch.get_num_threads()
    detector = load_yolo(str(weights))  # weights-only, as every detector file we read
    out = []
    try:
        for s in range(0, len(images), 32):
            batch = [np.ascontiguousarray(im[..., ::-1]) for im in images[s:s + 32]]  # ultralytics reads BGR
            for res in detector.predict(batch, imgsz=imgsz, conf=conf, device='cpu', verbose=False):
                if res.boxes is None or not len(res.boxes):
                    out.append(None)
                else:
                    out.append(tuple(res.boxes.xyxy[int(res.boxes.conf.argmax())].tolist()))
    finally:
        torch.set_num_threads(threads)
    return out


def mean_best_box_iou(weights: str, images: np.ndarray, masks: np.ndarray, imgsz: int = 128) -> float:
    """Mean IoU (%) between the best YOLO box and the box of the (single) object mask; a miss counts 0."""
    found = best_boxes(weights, images, imgsz)
    return float(np.mean([box_iou(f, mask_box(m)) if f else 0.0 for f, m in zip(found, masks)]) * 100)

