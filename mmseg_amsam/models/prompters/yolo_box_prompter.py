"""Automated prompting (paper Fig. 2): a frozen YOLOv8 gives the highest-confidence box of each image."""
import copy
import os
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np
import torch
from mmseg.registry import MODELS

from ..utils.embedding_cache import file_stamp
from ..utils.tensor_digest import tensor_digest
from ..utils.sam_input import denormalize_to_uint8
from .box_prompter import BoxPrompter, scale_box

YOLO_HINT = ('Official YOLOv8 weights: https://github.com/ultralytics/assets/releases/download/v8.2.0/yolov8n.pt '
             '(also yolov8s.pt, yolov8m.pt); point `model.prompter.model` at the file '
             '(--cfg-options model.prompter.model=PATH). A model .yaml such as '
             "'yolov8n.yaml' builds a randomly initialised detector (tests, demo).")


@MODELS.register_module()
class YOLOBoxPrompter(BoxPrompter):
    """Run an ultralytics YOLO detector, keep the single most confident box per image.

    Args:
        model: a YOLO ``.pt`` weights file, or a model ``.yaml`` (random weights).
        conf: confidence threshold; boxes below it count as "nothing detected".
        classes: optional class ids to keep (COCO ``0`` = person).
        fallback: ``'image'`` (whole-image box) or ``'none'`` (no box) when nothing is detected.
        imgsz: detector input size (ultralytics letterboxes the image to it).
        use_original_image: detect on the original image file (``img_path``) at its true aspect ratio and map the box
            to the network input; otherwise (or when the file is unavailable) detect on the network input itself.
        cache: remember each image's box: the detector is frozen and deterministic (see ``_sources`` for the keys).

    The detector is not registered as a sub-module: it is frozen, not part of the trained checkpoint, and
    ultralytics' ``Model.train()`` would start a YOLO training run if ``nn.Module.train`` recursed into it.
    """

    def __init__(self, model: str = 'yolov8n.pt', conf: float = 0.25, classes: Optional[Sequence[int]] = None,
                 fallback: str = 'image', imgsz: int = 640, iou: float = 0.7, use_original_image: bool = True,
                 cache: bool = True, mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375), init_cfg=None):
        super().__init__(fallback=fallback, init_cfg=init_cfg)
        if not 0.0 <= conf <= 1.0:
            raise ValueError(f'YOLOBoxPrompter: conf must be in [0, 1], got {conf}')
        if not str(model).endswith(('.yaml', '.yml')) and not os.path.isfile(model):
            raise FileNotFoundError(f'YOLO weights not found: {model!r}. {YOLO_HINT}')
        from ultralytics import YOLO
        try:
            detector = YOLO(model, task='detect')
        except Exception as exc:
            raise RuntimeError(f'Cannot load YOLO model {model!r} ({type(exc).__name__}: {exc}). {YOLO_HINT}') from exc
        for p in detector.model.parameters():
            p.requires_grad_(False)
        detector.model.eval()
        object.__setattr__(self, 'detector', detector)  # hidden from nn.Module on purpose (see class doc)
        self.model_path, self.conf, self.iou, self.imgsz = str(model), conf, iou, imgsz
        self.classes = list(classes) if classes is not None else None
        self.use_original_image, self.cache = use_original_image, cache
        self.mean, self.std = mean, std
        self._boxes: Dict[tuple, Optional[tuple]] = {}

    def __deepcopy__(self, memo):
        """Copies share the frozen detector (ultralytics models hold locks and cannot be deep-copied)."""
        clone = self.__class__.__new__(self.__class__)
        memo[id(self)] = clone
        for key, value in self.__dict__.items():
            clone.__dict__[key] = value if key == 'detector' else copy.deepcopy(value, memo)
        return clone

    @property
    def cache_key(self) -> tuple:
        return ('YOLOBoxPrompter', self.model_path, self.conf, self.iou, self.imgsz, tuple(self.classes or ()),
                self.use_original_image)

    def _sources(self, inputs: torch.Tensor, data_samples: Sequence) -> List[tuple]:
        """(cache key, BGR uint8 image to detect on or None when cached, network-input (h, w)) per image.

        Keys: the original file (path, mtime, size) and the input shape when detecting on the file, otherwise the
        content of the network input -- so an edited file or a different pipeline never reuses a stale box.
        """
        rgb = None
        out = []
        for i, sample in enumerate(data_samples):
            meta = sample.metainfo
            img_hw = tuple(meta.get('img_shape', inputs.shape[-2:])[:2])
            path = meta.get('img_path')
            from_file = self.use_original_image and path and os.path.isfile(path)
            if from_file:
                key = ('file', file_stamp(path), img_hw)
            else:
                key = ('input', tensor_digest(inputs[i, :, :img_hw[0], :img_hw[1]], 'sha1'))
            image = None
            if not (self.cache and key in self._boxes):
                if from_file:
                    image = cv2.imread(path, cv2.IMREAD_COLOR)
                if image is None:
                    if rgb is None:
                        rgb = denormalize_to_uint8(inputs, self.mean, self.std).permute(0, 2, 3, 1).cpu().numpy()
                    image = np.ascontiguousarray(rgb[i, :img_hw[0], :img_hw[1], ::-1])
            out.append((key, image, img_hw))
        return out

    def boxes_for(self, inputs: torch.Tensor, data_samples: Sequence) -> List[Optional[tuple]]:
        sources = self._sources(inputs, data_samples)
        todo = [i for i, (key, image, _) in enumerate(sources) if image is not None]
        if todo:
            device = 'cpu' if inputs.device.type == 'cpu' else str(inputs.device)
            threads = torch.get_num_threads()
            try:
                results = self.detector.predict([sources[i][1] for i in todo], conf=self.conf, iou=self.iou,
                                                classes=self.classes, imgsz=self.imgsz, device=device,
                                                verbose=False)
            finally:
                torch.set_num_threads(threads)  # ultralytics' CPU predictor drops torch to 1 thread for the process
            for i, res in zip(todo, results):
                key, image, img_hw = sources[i]
                box = None
                if res.boxes is not None and len(res.boxes):
                    best = int(res.boxes.conf.argmax())
                    box = scale_box(res.boxes.xyxy[best].tolist(), image.shape[:2], img_hw)
                if self.cache:
                    self._boxes[key] = box
                sources[i] = (key, box, img_hw)
        return [src[1] if i in todo else self._boxes[src[0]] for i, src in enumerate(sources)]
