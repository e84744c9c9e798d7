"""Automated prompting (paper Fig. 2): a frozen YOLOv8 gives the highest-confidence box of each image."""
import json
import os
from typing import Dict, Optional

import numpy as np
import torch
from mmengine.logging import print_log
from mmseg.registry import MODELS

from ...utils.file_stamp import file_stamp
from .detector_box_prompter import DetectorBoxPrompter
from .detector_classes import coco_names

YOLO_HINT = ('Official YOLOv8 weights: https://github.com/ultralytics/assets/releases/download/v8.2.0/yolov8n.pt '
             '(also yolov8s.pt, yolov8m.pt); point `model.prompter.model` at the file '
             '(--cfg-options model.prompter.model=PATH). A model .yaml such as '
             "'yolov8n.yaml' builds a randomly initialised detector (tests, demo).")


def _not_weights_reason(path: str):
    """Why ``path`` cannot be a PyTorch weights file (a zip archive or a pickle), or None when it may be one."""
    with open(path, 'rb') as f:
        head = f.read(64)
    if not head:
        return 'it is empty'
    if head.startswith(b'PK') or head[:1] == b'\x80':
        return None
    try:
        text = head.decode('utf-8')
    except UnicodeDecodeError:
        return 'it is neither a zip archive nor a pickle'
    return f'it is a text file (it starts with {text.splitlines()[0][:40]!r})'


def load_yolo(model: str):
    """An ultralytics ``YOLO`` from a ``.pt`` file or a model ``.yaml``; bad files raise one message naming them."""
    is_yaml = str(model).endswith(('.yaml', '.yml'))
    if not is_yaml:
        if not os.path.isfile(model):
            raise FileNotFoundError(f'YOLO weights not found: {model!r}. {YOLO_HINT}')
        reason = _not_weights_reason(model)
        if reason:
            raise ValueError(f'YOLO weights {model!r} are not a weights file: {reason}. {YOLO_HINT}')
    from ultralytics import YOLO
    try:
        detector = YOLO(model, task='detect')
        ok = isinstance(detector.model, torch.nn.Module)
    except Exception as exc:
        raise RuntimeError(f'Cannot load YOLO model {model!r} ({type(exc).__name__}: {exc}). {YOLO_HINT}') from exc
    if not ok:
        raise ValueError(f'YOLO weights {model!r} hold no detection model ({type(detector.model).__name__}). '
                         f'{YOLO_HINT}')
    return detector


@MODELS.register_module()
class YOLOBoxPrompter(DetectorBoxPrompter):
    """Run an ultralytics YOLO detector, keep one box per image (see ``DetectorBoxPrompter`` for the guarantees).

    Args:
        model: a YOLO ``.pt`` weights file, or a model ``.yaml`` (random weights; an 80-class yaml gets COCO's
            class names, so ``classes=['person']`` works with it).
        classes: class names or ids to keep (e.g. ``['person']`` for a COCO detector), checked against the
            detector's ``names`` at build; None keeps every class.
        imgsz: detector input size (ultralytics letterboxes the image to it); iou: its NMS threshold.
        adapt: few-shot detector adaptation, run (or read from its cache) at build, before anything else:
            ``dict(data_root=..., ann_file='splits/train_8shot.txt', epochs=50, imgsz=640, cache_dir=...)`` (see
            ``detector_adaptation.adapt_yolo``). The adapted detector has one class, 'object': keep ``classes``
            None. ``model`` is then the starting point. ``report_split='test'`` in it logs the prompt-box quality
            before and after adaptation on the training images and on that split (measured, never trained on).
        Other arguments: ``DetectorBoxPrompter``.

    The detector is not registered as a sub-module: it is frozen, not part of the trained checkpoint, and
    ultralytics' ``Model.train()`` would start a YOLO training run if ``nn.Module.train`` recursed into it.
    """

    def __init__(self, model: str = 'yolov8n.pt', conf: float = 0.25, classes=None, fallback: str = 'image',
                 imgsz: int = 640, iou: float = 0.7, adapt: Optional[dict] = None, **kwargs):
        super().__init__(classes=classes, conf=conf, fallback=fallback, **kwargs)
        self.adapted_from = None
        detector = None
        if adapt:
            self.adapted_from = str(model)
            model, detector = adapt_and_report(model, adapt, conf, imgsz, self.class_map)
        if detector is None:
            detector = load_yolo(model)
        for p in detector.model.parameters():
            p.requires_grad_(False)
        detector.model.eval()
        object.__setattr__(self, 'detector', detector)  # hidden from nn.Module on purpose (see class doc)
        self.model_path, self.iou, self.imgsz = str(model), iou, imgsz
        self.model_stamp = file_stamp(model) if os.path.isfile(str(model)) else (str(model), )
        self.resolve_classes()

    @property
    def class_names(self) -> Dict[int, str]:
        return detector_names(self.detector)

    def settings(self) -> tuple:
        return super().settings() + (self.model_stamp, self.iou, self.imgsz)

    def detector_module(self) -> torch.nn.Module:
        """The detector's network (frozen, outside the state dict): what a trained checkpoint records a digest of."""
        return self.detector.model

    def detect(self, image: np.ndarray, device: str) -> np.ndarray:
        threads = torch.get_num_threads()
        try:
            res = self.detector.predict(image, conf=self.conf, iou=self.iou, classes=self.class_ids,
                                        imgsz=self.imgsz, device=device, verbose=False)[0]
        finally:
            torch.set_num_threads(threads)  # ultralytics' CPU predictor drops torch to 1 thread for the process
        if res.boxes is None or not len(res.boxes):
            return np.zeros((0, 6))
        b = res.boxes
        return np.concatenate([b.xyxy.cpu().numpy(), b.conf.cpu().numpy()[:, None],
                               b.cls.cpu().numpy()[:, None]], axis=1)


def detector_names(detector) -> Dict[int, str]:
    names = {int(k): str(v) for k, v in detector.names.items()}
    if len(names) == 80 and all(v == str(k) for k, v in names.items()):
        return coco_names()  # a yaml-built COCO architecture has numbers for names
    return names


def adapt_and_report(model: str, adapt: dict, conf: float, imgsz: int, class_map: Optional[dict] = None):
    """Few-shot adaptation of ``model`` (``detector_adaptation.adapt_yolo``, cached) and its before / after report
    at the prompter's own ``conf`` / ``imgsz``, measured once per setting and logged: ``(adapted path, detector)``.
    With a ``class_map`` (multi-class) each dataset class's boxes train the first detector class mapped to it."""
    from .detector_adaptation import adapt_yolo, adaptation_report, format_report
    from .detector_classes import resolve_classes
    adapt = dict(adapt)
    report_split = adapt.pop('report_split', None)
    start = load_yolo(model)  # a bad starting point fails here, with its own message
    if class_map:
        names = detector_names(start)
        label_classes = {}
        for key, label in class_map.items():
            label_classes.setdefault(int(label), resolve_classes(key, names, 'YOLOBoxPrompter (class_map)')[0])
        adapt['label_classes'] = label_classes
    adapted = adapt_yolo(model, **adapt)
    detector = load_yolo(adapted)
    report_file = os.path.join(os.path.dirname(adapted), f'report_{report_split or "train"}_conf{conf}_{imgsz}.json')
    if os.path.isfile(report_file):  # the model is built again (test, checkpoint digests): measure once
        with open(report_file) as f:
            report = json.load(f)
    else:
        report = adaptation_report(load_yolo(model), detector, adapt['data_root'], adapt['ann_file'], report_split,
                                   conf, imgsz, adapt.get('device', 'cpu'), adapt.get('label_classes'))
        with open(report_file, 'w') as f:
            json.dump(report, f, indent=1)
    for line in format_report(report):
        print_log(f'YOLOBoxPrompter: detector adaptation: {line}', logger='current')
    return adapted, detector
