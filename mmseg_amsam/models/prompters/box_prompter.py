"""Shared contract of the automated prompters: one xyxy box per image, in SAM input pixels."""
from typing import List, Optional, Sequence, Tuple

import torch
from mmengine.model import BaseModule

FALLBACKS = ('image', 'none')


class BoxPrompter(BaseModule):
    """Base of the frozen box prompters.

    ``forward(inputs, data_samples)`` returns ``(boxes (B, 4) float xyxy, has_box (B,) bool)`` in the coordinates of
    the network input (``img_shape`` of each sample; SAM's input grid). Images without a box use ``fallback``:
    ``'image'`` = the whole-image box, ``'none'`` = no box (the learned prompt alone).
    """

    def __init__(self, fallback: str = 'image', init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if fallback not in FALLBACKS:
            raise ValueError(f'{type(self).__name__}: fallback must be one of {FALLBACKS}, got {fallback!r}')
        self.fallback = fallback

    def train(self, mode: bool = True):  # no trainable state; keep children (detectors) in eval mode
        super().train(mode)
        for child in self.children():
            child.eval()
        return self

    def boxes_for(self, inputs: torch.Tensor, data_samples: Sequence) -> List[Optional[Sequence[float]]]:
        """One box per image in input pixels, or None where nothing was found."""
        raise NotImplementedError

    @torch.no_grad()
    def forward(self, inputs: torch.Tensor, data_samples: Sequence) -> Tuple[torch.Tensor, torch.Tensor]:
        found = self.boxes_for(inputs, data_samples)
        boxes, has_box = [], []
        for box, sample in zip(found, data_samples):
            if box is None and self.fallback == 'image':
                h, w = sample.metainfo.get('img_shape', inputs.shape[-2:])[:2]
                box = (0.0, 0.0, float(w), float(h))
            has_box.append(box is not None)
            boxes.append(box if box is not None else (0.0, 0.0, 0.0, 0.0))
        return (torch.tensor(boxes, dtype=torch.float32, device=inputs.device),
                torch.tensor(has_box, dtype=torch.bool, device=inputs.device))


def scale_box(box: Sequence[float], src_hw: Sequence[int], dst_hw: Sequence[int]) -> Tuple[float, ...]:
    """Map an xyxy box from an image of size ``src_hw`` to one of size ``dst_hw`` (independent x / y scales)."""
    sy, sx = dst_hw[0] / src_hw[0], dst_hw[1] / src_hw[1]
    x1, y1, x2, y2 = (float(v) for v in box)
    return (x1 * sx, y1 * sy, x2 * sx, y2 * sy)
