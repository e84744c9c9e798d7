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

    def train(self, mode: bool = True):  # no trainable state; keep children (detectors) in eval mode
        super().train(mode)
        for child in self.children():
            child.eval()
        return self

    def boxes_for(self, inputs: torch.Tensor, data_samples: Sequence) -> List[Optional[Sequence[float]]]:
        """One box per image in input pixels, or None where nothing was found."""
        raise NotImplementedError

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

    @torch.no_grad()
    def forward(self, inputs: torch.Tensor, data_samples: Sequence) -> Tuple[torch.Tensor, torch.Tensor]:
        found = self.boxes_for(inputs, data_samples)
        telemetry = self.telemetry['train' if self.training else 'eval']
        boxes, has_box = [], []
        for box, sample in zip(found, data_samples):
            detected = box is not None
            box = tuple(float(v) for v in box) if detected else None
            used = box if detected else (self.whole_image_box(sample, inputs) if self.fallback == 'image' else None)
            gt = gt_box_in_input(sample, self.ignore_index)
            iou = None if gt is None else (box_iou(used, gt) if used is not None else 0.0)
            telemetry.add(detected, iou)
            sample.set_metainfo(dict(prompt_box=box, prompt_fallback=not detected, prompt_iou=iou))
            has_box.append(detected)
            boxes.append(used if used is not None else (0.0, 0.0, 0.0, 0.0))
        return (torch.tensor(boxes, dtype=torch.float32, device=inputs.device),
                torch.tensor(has_box, dtype=torch.bool, device=inputs.device))

