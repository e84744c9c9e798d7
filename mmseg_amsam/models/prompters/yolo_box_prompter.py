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
from .yolo_weights import load_yolo

YOLO_STRIDE = 32  # a YOLOv8's largest stride: its input sizes are multiples of it


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
        trust_weights_file: False (default): ``model`` is read weights-only (``yolo_weights.load_yolo``: ultralytics'
            restricted loading, nothing in the file runs) and a file that names anything besides ultralytics' /
            torch's model classes is refused with one message. True: the file is unpickled fully, as ultralytics
            does by default, so the code it holds runs: only for a legacy file you made and trust
            (``--cfg-options model.prompter.trust_weights_file=True``). Official YOLOv8 files and anything
            ultralytics trained load without it. Cached adapted detectors are always read weights-only.
        Other arguments: ``DetectorBoxPrompter``.

    The detector is not registered as a sub-module: it is frozen, not part of the trained checkpoint, and
    ultralytics' ``Model.train()`` would start a YOLO training run if ``nn.Module.train`` recursed into it.
    """

    def __init__(self, model: str = 'yolov8n.pt', conf: float = 0.25, classes=None, fallback: str = 'image',
                 imgsz: int = 640, iou: float = 0.7, adapt: Optional[dict] = None, trust_weights_file: bool = False,
                 **kwargs):
        super().__init__(classes=classes, conf=conf, fallback=fallback, **kwargs)
        check_detector_settings(imgsz, iou)
        self.adapted_from = None
        detector = None
        if adapt:
            self.adapted_from = str(model)
            model, detector = adapt_and_report(model, adapt, conf, imgsz, self.class_map, trust_weights_file)
        if detector is None:
            detector = load_yolo(model, trust_weights_file)
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


def check_imgsz(imgsz, field: str = 'model.prompter.imgsz') -> None:
    """One message naming ``field`` and the fix unless ``imgsz`` is a positive multiple of the YOLO stride (an int
    or ``[height, width]``): ultralytics would otherwise change it (round it up, or fall back on every image)."""
    sizes = list(imgsz) if isinstance(imgsz, (list, tuple)) else [imgsz]
    ints = 1 <= len(sizes) <= 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in sizes)
    if not ints or not all(v > 0 and v % YOLO_STRIDE == 0 for v in sizes):
        raise ValueError(f'YOLOBoxPrompter: {field}={imgsz!r} (the detector input size) must be a positive int '
                         f'multiple of {YOLO_STRIDE} (or [height, width] of them), e.g. 640; set '
                         f'--cfg-options {field}=640')


def check_detector_settings(imgsz, iou) -> None:
    """The prompter's detector settings, checked at build (``conf``: ``DetectorBoxPrompter``)."""
    check_imgsz(imgsz)
    if isinstance(iou, bool) or not isinstance(iou, (int, float)) or not 0.0 <= iou <= 1.0:
        raise ValueError(f'YOLOBoxPrompter: model.prompter.iou={iou!r} (the NMS IoU threshold) must be a number in '
                         '[0, 1]; set --cfg-options model.prompter.iou=0.7')


def detector_names(detector) -> Dict[int, str]:
    names = {int(k): str(v) for k, v in detector.names.items()}
    if len(names) == 80 and all(v == str(k) for k, v in names.items()):
        return coco_names()  # a yaml-built COCO architecture has numbers for names
    return names


def adapt_and_report(model: str, adapt: dict, conf: float, imgsz: int, class_map: Optional[dict] = None,
                     trust_weights_file: bool = False):
    """Few-shot adaptation of ``model`` (``detector_adaptation.adapt_yolo``, cached) and its before / after report
    at the prompter's own ``conf`` / ``imgsz``, measured once per setting and logged: ``(adapted path, detector)``.
    With a ``class_map`` (multi-class) each dataset class's boxes train the first detector class mapped to it."""
    from .detector_adaptation import adapt_yolo, adaptation_report, format_report
    from .detector_classes import resolve_classes
    adapt = dict(adapt)
    report_split = adapt.pop('report_split', None)
    start = load_yolo(model, trust_weights_file)  # a bad starting point fails here, with its own message
    if class_map:
        names = detector_names(start)
        label_classes = {}
        for key, label in class_map.items():
            label_classes.setdefault(int(label), resolve_classes(key, names, 'YOLOBoxPrompter (class_map)')[0])
        adapt['label_classes'] = label_classes
    adapted = adapt_yolo(model, trust_weights_file=trust_weights_file, **adapt)  # trains its own copy
    detector = load_yolo(adapted)
    report_file = os.path.join(os.path.dirname(adapted), f'report_{report_split or "train"}_conf{conf}_{imgsz}.json')
    if os.path.isfile(report_file):  # the model is built again (test, checkpoint digests): measure once
        with open(report_file) as f:
            report = json.load(f)
    else:
        report = adaptation_report(start, detector, adapt['data_root'], adapt['ann_file'], report_split,
                                   conf, imgsz, adapt.get('device', 'cpu'), adapt.get('label_classes'))
        with open(report_file, 'w') as f:
            json.dump(report, f, indent=1)
    for line in format_report(report):
        print_log(f'YOLOBoxPrompter: detector adaptation: {line}', logger='current')
    return adapted, detector
