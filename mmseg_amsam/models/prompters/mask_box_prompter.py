"""The paper's "human-provided prompt" reference: the bounding box of the ground-truth mask."""
from typing import List, Optional, Sequence

import torch
from mmseg.registry import MODELS

from .box_prompter import BoxPrompter
from .gt_box import gt_box_in_input


@MODELS.register_module()
class MaskBoxPrompter(BoxPrompter):
    """Box of the ground-truth foreground (labels > 0, ``ignore_index`` excluded), optionally jittered in training.

    The box is placed in the network input whatever the frame of the mask (see ``gt_box.gt_in_original_frame``):
    a mask loaded before the transforms (training) was resized / flipped / padded with the image, and padding
    (``seg_pad_val`` = ``ignore_index``) is not foreground, so its box is already in input pixels; a mask at the
    original size (test pipelines) is mapped through the recorded resize and flip.

    ``jitter`` moves each coordinate by up to ``jitter`` x box side (uniform), as SAMed/MedSAM do to mimic a human.
    Only valid where masks exist: without ``gt_sem_seg`` it raises (use ``YOLOBoxPrompter`` on unlabelled images).
    An empty mask uses ``fallback``.
    """

    def __init__(self, jitter: float = 0.0, ignore_index: int = 255, fallback: str = 'image',
                 warn_fallback_rate: float = 0.5, init_cfg=None):
        super().__init__(fallback=fallback, warn_fallback_rate=warn_fallback_rate, ignore_index=ignore_index,
                         init_cfg=init_cfg)
        self.jitter = jitter

    def _box(self, sample, label: Optional[int] = None) -> Optional[tuple]:
        if 'gt_sem_seg' not in sample:
            raise ValueError(
                'MaskBoxPrompter needs the ground-truth mask (gt_sem_seg) of every image; this image has none '
                f"({sample.metainfo.get('img_path', 'unknown path')}). Use YOLOBoxPrompter to segment "
                'unlabelled images.')
        box = gt_box_in_input(sample, self.ignore_index, label)
        if box is not None and self.training and self.jitter > 0:
            w, h = box[2] - box[0], box[3] - box[1]
            noise = (torch.rand(4) * 2 - 1) * self.jitter * torch.tensor([w, h, w, h])
            box = tuple(v + float(n) for v, n in zip(box, noise))
        return box

    def boxes_for(self, inputs: torch.Tensor, data_samples: Sequence) -> List[Optional[tuple]]:
        return [self._box(sample) for sample in data_samples]

    def class_boxes_for(self, inputs: torch.Tensor, data_samples: Sequence) -> List[List[Optional[tuple]]]:
        """Per image, the box of each prompted class's ground-truth pixels (None where the class is absent)."""
        return [[self._box(sample, label) for label in self.prompt_labels] for sample in data_samples]
