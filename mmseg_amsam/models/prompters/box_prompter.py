"""Shared contract of the automated prompters: one xyxy box per image, in SAM input pixels, and what happened."""
from typing import List, Optional, Sequence, Tuple

import torch
from mmengine.model import BaseModule

from .box_geometry import UnmappableGeometryError, box_iou, resized_hw
from .gt_box import gt_box_in_input
from .prompt_telemetry import PromptTelemetry

FALLBACKS = ('image', 'none')


class BoxPrompter(BaseModule):
    """Base of the frozen box prompters.

    ``forward(inputs, data_samples)`` returns ``(boxes (B, 4) float xyxy, has_box (B,) bool)`` in the coordinates of
    the network input (``img_shape`` of each sample; SAM's input grid). ``has_box`` is True where a box was found
    (detected, or the mask's box) and False where the prompter fell back: ``fallback='image'`` puts the whole-image
    box in ``boxes`` (and SAM gets it: see :meth:`prompted`), ``'none'`` a zero box that SAM does not get (the
    learned prompt alone).

    Each call also records, in each sample's metainfo, ``prompt_box`` (the found box, or None for a fallback),
    ``prompt_fallback`` (bool) and ``prompt_iou`` (IoU of the prompt SAM got -- found box, whole-image box, or 0
    for no box -- with the box of the ground-truth mask; None without ground truth), and counts them in
    ``telemetry['train' | 'eval']`` (:class:`PromptTelemetry`, logged by ``PromptTelemetryHook``).

    Multi-class (``AMSAM(class_prompts=True)`` calls :meth:`set_prompt_labels` with the dataset labels
    ``1..C``): one box per image *and class* -- ``boxes (B, C, 4)``, ``has_box (B, C)`` -- from
    :meth:`class_boxes_for`; each class that has no box falls back on its own. The metainfo then holds lists
    (one entry per class, in label order) and the telemetry counts per class too.

    Args:
        fallback: ``'image'`` or ``'none'`` (above).
        warn_fallback_rate: a run whose share of fallbacks is above it gets one loud warning (PromptTelemetryHook).
        ignore_index: GT label excluded from the GT box (telemetry).
    """

    def __init__(self, fallback: str = 'image', warn_fallback_rate: float = 0.5, ignore_index: int = 255,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if fallback not in FALLBACKS:
            raise ValueError(f'{type(self).__name__}: fallback must be one of {FALLBACKS}, got {fallback!r}')
        self.fallback, self.warn_fallback_rate, self.ignore_index = fallback, warn_fallback_rate, ignore_index
        self.telemetry = dict(train=PromptTelemetry(), eval=PromptTelemetry())
        self.prompt_labels: Optional[List[int]] = None  # multi-class: the dataset labels prompted, one box each

    def set_prompt_labels(self, labels: Sequence[int]) -> None:
        """Prompt once per dataset label (multi-class AM-SAM); subclasses check they can (see ``class_map``)."""
        self.prompt_labels = [int(v) for v in labels]

    def train(self, mode: bool = True):  # no trainable state; keep children (detectors) in eval mode
        super().train(mode)
        for child in self.children():
            child.eval()
        return self

    def boxes_for(self, inputs: torch.Tensor, data_samples: Sequence) -> List[Optional[Sequence[float]]]:
        """One box per image in input pixels, or None where nothing was found."""
        raise NotImplementedError

    def class_boxes_for(self, inputs: torch.Tensor, data_samples: Sequence) -> List[List[Optional[Sequence[float]]]]:
        """Per image, one box per label of ``prompt_labels`` (input pixels), or None where that class was not found."""
        raise NotImplementedError(f'{type(self).__name__} gives one box per image; it cannot prompt per class')

    def prompted(self, has_box: torch.Tensor) -> torch.Tensor:
        """Which images give SAM a box: the found ones, and every one with ``fallback='image'``."""
        return torch.ones_like(has_box) if self.fallback == 'image' else has_box

    @staticmethod
    def whole_image_box(sample, inputs: torch.Tensor) -> Tuple[float, float, float, float]:
        """The image's own extent in the input (padding excluded where the metainfo says where it starts)."""
        meta = sample.metainfo
        h, w = meta.get('img_shape', inputs.shape[-2:])[:2]
        try:
            rh, rw = resized_hw(meta)
            h, w = min(h, rh), min(w, rw)
        except (UnmappableGeometryError, KeyError):
            pass
        return (0.0, 0.0, float(w), float(h))

    def _record(self, box, sample, inputs: torch.Tensor, label: Optional[int] = None):
        """(box SAM gets or None, found?, IoU with the GT box) of one prompt, counted in the telemetry."""
        detected = box is not None
        box = tuple(float(v) for v in box) if detected else None
        used = box if detected else (self.whole_image_box(sample, inputs) if self.fallback == 'image' else None)
        gt = gt_box_in_input(sample, self.ignore_index, label)
        iou = None if gt is None else (box_iou(used, gt) if used is not None else 0.0)
        self.telemetry['train' if self.training else 'eval'].add(detected, iou, label)
        return box, used, detected, iou

    @torch.no_grad()
    def forward(self, inputs: torch.Tensor, data_samples: Sequence) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(boxes (B, 4), has_box (B,))``; multi-class (``prompt_labels`` set) ``(B, C, 4)`` and ``(B, C)``."""
        per_class = self.prompt_labels is not None
        found = self.class_boxes_for(inputs, data_samples) if per_class else \
            [[box] for box in self.boxes_for(inputs, data_samples)]
        labels = self.prompt_labels if per_class else [None]
        boxes, has_box = [], []
        for image_boxes, sample in zip(found, data_samples):
            records = [self._record(box, sample, inputs, label) for box, label in zip(image_boxes, labels)]
            meta = dict(prompt_box=[r[0] for r in records], prompt_fallback=[not r[2] for r in records],
                        prompt_iou=[r[3] for r in records])
            sample.set_metainfo(meta if per_class else {k: v[0] for k, v in meta.items()})
            has_box.append([detected for _, _, detected, _ in records])
            boxes.append([used if used is not None else (0.0, 0.0, 0.0, 0.0) for _, used, _, _ in records])
        boxes = torch.tensor(boxes, dtype=torch.float32, device=inputs.device).reshape(len(found), -1, 4)
        has_box = torch.tensor(has_box, dtype=torch.bool, device=inputs.device).reshape(len(found), -1)
        return (boxes, has_box) if per_class else (boxes[:, 0], has_box[:, 0])
