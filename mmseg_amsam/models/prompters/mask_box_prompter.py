"""The paper's "human-provided prompt" reference: the bounding box of the ground-truth mask."""
from typing import List, Optional, Sequence

import torch
from mmseg.registry import MODELS

from .box_prompter import BoxPrompter, scale_box


@MODELS.register_module()
class MaskBoxPrompter(BoxPrompter):
    """Box of the ground-truth foreground (labels > 0, ``ignore_index`` excluded), optionally jittered in training.

    ``jitter`` moves each coordinate by up to ``jitter`` x box side (uniform), as SAMed/MedSAM do to mimic a human.
    Only valid where masks exist: without ``gt_sem_seg`` it raises (use ``YOLOBoxPrompter`` on unlabelled images).
    An empty mask uses ``fallback``.
    """

    def __init__(self, jitter: float = 0.0, ignore_index: int = 255, fallback: str = 'image', init_cfg=None):
        super().__init__(fallback=fallback, init_cfg=init_cfg)
        self.jitter, self.ignore_index = jitter, ignore_index

    def boxes_for(self, inputs: torch.Tensor, data_samples: Sequence) -> List[Optional[tuple]]:
        boxes = []
        for sample in data_samples:
            if 'gt_sem_seg' not in sample:
                raise ValueError(
                    'MaskBoxPrompter needs the ground-truth mask (gt_sem_seg) of every image; this image has none '
                    f"({sample.metainfo.get('img_path', 'unknown path')}). Use YOLOBoxPrompter to segment "
                    'unlabelled images.')
            gt = sample.gt_sem_seg.data[0]
            fg = (gt > 0) & (gt != self.ignore_index)
            if not bool(fg.any()):
                boxes.append(None)
                continue
            ys, xs = torch.nonzero(fg, as_tuple=True)
            box = [xs.min().item(), ys.min().item(), xs.max().item() + 1, ys.max().item() + 1]
            if self.training and self.jitter > 0:
                w, h = box[2] - box[0], box[3] - box[1]
                noise = (torch.rand(4) * 2 - 1) * self.jitter * torch.tensor([w, h, w, h])
                box = [v + float(n) for v, n in zip(box, noise)]
            img_hw = tuple(sample.metainfo.get('img_shape', gt.shape))[:2]
            boxes.append(scale_box(box, gt.shape, img_hw))
        return boxes
