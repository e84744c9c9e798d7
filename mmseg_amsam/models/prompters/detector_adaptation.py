"""Few-shot detector adaptation: fine-tune a YOLO detector on the k training images, the boxes of their masks as
labels (one class, 'object'), so automated prompting works on a domain the detector was never trained on.

Only the images of the few-shot split file are used (never a test image). The result is cached under
``cache_dir/<key>/adapted.pt``; the key is a digest of the starting weights (their bytes), the split (names, and
each image / mask file's size and mtime) and every training setting, so a changed split, weights file or setting
trains afresh and an unchanged one is reused. Every image and mask of the split is decoded before anything trains
(``utils.file_checks``: one message naming the unreadable ones, nothing written). The entry's SHA-256 is recorded
beside it (``utils.recorded_digest``: ``adapted.pt.sha256``) and checked before it is reused; an entry without it
or that does not match (altered, damaged) is never loaded: it is trained again and replaced. The security boundary
is elsewhere: weights are read weights-only (``yolo_weights``), the training itself runs under ultralytics'
restricted loading, so even a planted entry with a forged record runs no code.
"""
import hashlib
import json
import logging
import os
import os.path as osp
import shutil
from typing import Dict, List, Optional, Sequence

import cv2
import torch

from mmengine.logging import print_log

from ...utils.file_checks import check_readable
from ...utils.file_stamp import file_sha256
from ...utils.recorded_digest import copy_with_digest, digest_mismatch
from .gt_box import mask_file_box, split_names
from .yolo_weights import load_yolo, restricted_loading

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


def _find_image(img_dir: str, name: str) -> str:
    for suffix in IMAGE_SUFFIXES:
        if osp.isfile(osp.join(img_dir, name + suffix)):
            return osp.join(img_dir, name + suffix)
    raise FileNotFoundError(f'detector adaptation: no image {name}.* in {img_dir}')


def training_pairs(data_root: str, ann_file: Optional[str], img_dir: str = 'img_dir/train',
                   seg_map_dir: str = 'ann_dir/train', seg_map_suffix: str = '.png', ignore_index: int = 255,
                   label: Optional[int] = None, label_classes: Optional[Dict[int, int]] = None) -> List[tuple]:
    """``(image path, mask box xyxy or None, (H, W))`` of each image of the split file (``ann_file`` None: of
    every mask in ``seg_map_dir``, e.g. a test split to report on); with ``label`` the box of that class's pixels.
    Multi-class (``label_classes``: dataset label -> detector class): the box is a list of ``(detector class, box)``,
    one per label present in the mask."""
    if ann_file is None:
        names = sorted(osp.splitext(f)[0] for f in os.listdir(osp.join(data_root, seg_map_dir))
                       if f.endswith(seg_map_suffix))
    else:
        names = split_names(data_root, ann_file, 'detector adaptation')
    files = [(_find_image(osp.join(data_root, img_dir), name), osp.join(data_root, seg_map_dir, name + seg_map_suffix))
             for name in names]
    check_readable([p for pair in files for p in pair], f'detector adaptation ({ann_file or seg_map_dir} in '
                   f'{data_root})')
    pairs = []
    for image, mask in files:
        if label_classes:
            boxes = [(int(cls), mask_file_box(mask, 'detector adaptation', ignore_index, int(lab))[0])
                     for lab, cls in sorted(label_classes.items())]
            box, hw = [(cls, b) for cls, b in boxes if b is not None], mask_file_box(mask, 'detector adaptation')[1]
        else:
            box, hw = mask_file_box(mask, 'detector adaptation', ignore_index, label)
        pairs.append((image, box, hw))
    return pairs


def adaptation_key(weights: str, pairs: Sequence, settings: dict) -> str:
    files = []
    for image, box, hw in pairs:
        st = os.stat(image)
        files.append([osp.abspath(image), st.st_size, st.st_mtime_ns, box, list(hw)])
    weights_id = file_sha256(weights) if osp.isfile(weights) else weights
    text = json.dumps(dict(weights=weights_id, files=files, settings=settings), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def write_yolo_dataset(pairs: Sequence, out_dir: str, names: Optional[Sequence[str]] = None, label: int = 0) -> str:
    """An ultralytics detection dataset of the pairs (train = val = the k images) -> its data yaml. Every box is
    class ``label`` of ``names`` (default: one class, 'object'); multi-class pairs carry their own classes."""
    for sub in ('images', 'labels'):
        os.makedirs(osp.join(out_dir, sub, 'train'), exist_ok=True)
    for i, (image, box, (h, w)) in enumerate(pairs):
        stem = f'{i:04d}_{osp.splitext(osp.basename(image))[0]}'
        shutil.copyfile(image, osp.join(out_dir, 'images', 'train', stem + osp.splitext(image)[1].lower()))
        boxes = box if isinstance(box, list) else [] if box is None else [(label, box)]
        with open(osp.join(out_dir, 'labels', 'train', stem + '.txt'), 'w') as f:
            for cls, (x1, y1, x2, y2) in boxes:  # none: a background image (empty label file)
                f.write(f'{cls} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} {(x2 - x1) / w:.6f} '
                        f'{(y2 - y1) / h:.6f}\n')
    data_yaml = osp.join(out_dir, 'data.yaml')
    with open(data_yaml, 'w') as f:
        f.write(f'path: {osp.abspath(out_dir)}\ntrain: images/train\nval: images/train\nnames:\n' +
                ''.join(f'  {i}: {name}\n' for i, name in enumerate(names or ['object'])))
    return data_yaml


def adapt_yolo(weights: str, data_root: str, ann_file: str, img_dir: str = 'img_dir/train',
               seg_map_dir: str = 'ann_dir/train', seg_map_suffix: str = '.png', epochs: int = 50, imgsz: int = 640,
               batch: Optional[int] = None, lr0: float = 0.002, seed: int = 0, device: str = 'cpu',
               cache_dir: str = 'work_dirs/adapted_detectors', keep_class: Optional[int] = None,
               label_classes: Optional[Dict[int, int]] = None, trust_weights_file: bool = False,
               **train_kwargs) -> str:
    """Fine-tune ``weights`` (a YOLO ``.pt`` or ``.yaml``) on the split's images and mask boxes; the adapted
    ``.pt`` (cached, see module doc). ``train_kwargs`` go to ultralytics ``YOLO.train``.

    ``keep_class=None``: one new class, 'object' (the detection head's class layer starts afresh).
    ``keep_class=i``: the detector keeps its classes and head, the boxes are labelled as its class ``i`` (for a
    detector that already knows the objects, e.g. a person detector on a new person dataset).
    ``label_classes`` (multi-class, ``{dataset label: detector class}``, set from the prompter's ``class_map``): the
    detector keeps its classes and head, each class's mask box is labelled as its detector class.
    ``trust_weights_file``: see ``YOLOBoxPrompter`` (the starting weights only)."""
    from .yolo_box_prompter import check_imgsz, detector_names
    check_adaptation_settings(epochs, batch, lr0)
    check_imgsz(imgsz, 'model.prompter.adapt.imgsz')
    label_classes = {int(k): int(v) for k, v in label_classes.items()} if label_classes else None
    pairs = training_pairs(data_root, ann_file, img_dir, seg_map_dir, seg_map_suffix, label_classes=label_classes)
    settings = dict(epochs=epochs, imgsz=imgsz, batch=batch, lr0=lr0, seed=seed, keep_class=keep_class,
                    **({'label_classes': sorted(label_classes.items())} if label_classes else {}), **train_kwargs)
    key = adaptation_key(weights, pairs, settings)
    work = osp.join(cache_dir, key)
    adapted = osp.join(work, 'adapted.pt')
    if verified_entry(adapted):
        return adapted
    model = load_yolo(weights, trust_weights_file)
    names = None
    if keep_class is not None or label_classes:
        names = [str(n) for _, n in sorted(detector_names(model).items())]
    data_yaml = write_yolo_dataset(pairs, osp.join(work, 'data'), names, keep_class or 0)
    threads = torch.get_num_threads()
    try:
        with restricted_loading():  # every checkpoint the trainer reads (pretrained=..., its final weights)
            model.train(data=data_yaml, epochs=epochs, imgsz=imgsz, batch=batch or min(len(pairs), 16), lr0=lr0,
                        seed=seed, deterministic=True, device=device, project=osp.abspath(work), name='train',
                        exist_ok=True, workers=0, plots=False, val=False, verbose=False, amp=False,
                        **{'optimizer': 'AdamW', 'warmup_epochs': 0, 'close_mosaic': 0, **train_kwargs})
    finally:
        torch.set_num_threads(threads)
    trained = osp.join(work, 'train', 'weights', 'last.pt')
    if not osp.isfile(trained):
        raise RuntimeError(f'detector adaptation: ultralytics wrote no {trained}')
    copy_with_digest(trained, adapted)
    with open(osp.join(work, 'adaptation.json'), 'w') as f:
        json.dump(dict(weights=weights, data_root=data_root, ann_file=ann_file, images=[p[0] for p in pairs],
                       settings=settings), f, indent=1)
    return adapted


def check_adaptation_settings(epochs, batch, lr0) -> None:
    """One message naming the setting and the fix for an epoch count, batch size or learning rate out of range."""
    def positive_int(v):
        return isinstance(v, int) and not isinstance(v, bool) and v >= 1
    if not positive_int(epochs):
        raise ValueError(f'detector adaptation: model.prompter.adapt.epochs={epochs!r} must be a positive int; '
                         'set e.g. model.prompter.adapt.epochs=50')
    if batch is not None and not positive_int(batch):
        raise ValueError(f'detector adaptation: model.prompter.adapt.batch={batch!r} must be a positive int or None '
                         '(None: all k images, at most 16)')
    if isinstance(lr0, bool) or not isinstance(lr0, (int, float)) or not 0 < lr0 < 1:
        raise ValueError(f'detector adaptation: model.prompter.adapt.lr0={lr0!r} must be a number in (0, 1); set e.g. '
                         'model.prompter.adapt.lr0=0.002')


def verified_entry(adapted: str) -> bool:
    """Whether the cache entry ``adapted`` exists and matches the SHA-256 recorded when it was written. An entry
    without a digest or with another one is not loaded (logged: it is trained again and replaced)."""
    if not osp.isfile(adapted):
        return False
    why = digest_mismatch(adapted)
    if why is None:
        return True
    print_log(f'detector adaptation: cached detector {adapted} {why}: it was not written by the adaptation, or it '
              'was altered or damaged since. It is not loaded (nothing in it was run); the detector is adapted '
              'again and the entry replaced.', logger='current', level=logging.WARNING)
    return False


def box_quality(detector, pairs: Sequence, conf: float = 0.25, imgsz: int = 640, device: str = 'cpu',
                classes: Optional[List[int]] = None) -> dict:
    """How well a YOLO detector's most confident box (of ``classes``; whole image where none) fits the mask boxes of
    ``pairs``: ``images``, ``detection_rate``, ``box_iou`` (mean) and ``box_iou_ge_0.5`` (share)."""
    from .box_geometry import box_iou
    ious, found = [], 0
    threads = torch.get_num_threads()
    try:
        for image, box, (h, w) in pairs:
            res = detector.predict(cv2.imread(image, cv2.IMREAD_COLOR), conf=conf, imgsz=imgsz, device=device,
                                   classes=classes, verbose=False)[0]
            best = (0.0, 0.0, float(w), float(h))
            if res.boxes is not None and len(res.boxes):
                found += 1
                best = res.boxes.xyxy[int(res.boxes.conf.argmax())].tolist()
            if box is not None:
                ious.append(box_iou(best, box))
    finally:
        torch.set_num_threads(threads)
    n = len(ious)
    return dict(images=len(pairs), detection_rate=found / max(len(pairs), 1),
                box_iou=sum(ious) / n if n else float('nan'),
                **{'box_iou_ge_0.5': sum(i >= 0.5 for i in ious) / n if n else float('nan')})


def adaptation_report(before, after, data_root: str, ann_file: str, report_split: Optional[str] = None,
                      conf: float = 0.25, imgsz: int = 640, device: str = 'cpu',
                      label_classes: Optional[Dict[int, int]] = None) -> dict:
    """``box_quality`` of two YOLO detectors (``before`` / ``after`` adaptation) on the split's training images and,
    with ``report_split`` (e.g. ``'test'``), on every image of that split (measured only: never trained on); with
    ``label_classes`` per dataset class (its detector class's best box vs that class's mask box).
    Returns ``{set name: {'before': quality, 'after': quality}}``."""
    splits = dict(train=(ann_file, {}))
    if report_split:
        splits[report_split] = (None, dict(img_dir=f'img_dir/{report_split}', seg_map_dir=f'ann_dir/{report_split}'))
    targets = [('', None, None)] if not label_classes else \
        [(f' class {lab}', int(lab), [int(cls)]) for lab, cls in sorted(label_classes.items())]
    report = {}
    for split, (ann, dirs) in splits.items():
        for suffix, lab, classes in targets:
            pairs = training_pairs(data_root, ann, label=lab, **dirs)
            report[split + suffix] = {when: box_quality(det, pairs, conf, imgsz, device, classes)
                                      for when, det in (('before', before), ('after', after))}
    return report


def format_report(report: dict) -> List[str]:
    lines = []
    for name, qualities in report.items():
        for label in ('before', 'after'):
            q = qualities[label]
            lines.append(f'{name} ({q["images"]} images) {label:6s}: detection rate {q["detection_rate"]:.3f}, '
                         f'box IoU {q["box_iou"]:.3f}, IoU >= 0.5 {q["box_iou_ge_0.5"]:.3f}')
    return lines
