"""A prior on where the object's box lies, learned from the k training masks: picks the detection most like them."""
import os.path as osp
from typing import Iterable, Optional, Sequence, Tuple

import numpy as np

from .gt_box import mask_file_box, split_names

FEATURES = ('centre x / W', 'centre y / H', 'log(sqrt(box area / image area))', 'log(aspect w / h)')


def box_features(box: Sequence[float], hw: Sequence[int]) -> np.ndarray:
    """Position, size and aspect of an xyxy box in an image of size ``hw`` (see ``FEATURES``)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    h, w = float(hw[0]), float(hw[1])
    bw, bh = max(x2 - x1, 1e-6), max(y2 - y1, 1e-6)
    return np.array([(x1 + x2) / 2 / w, (y1 + y2) / 2 / h, 0.5 * np.log(bw * bh / (w * h)), np.log(bw / bh)])


class BoxPrior:
    """Independent Gaussians over :func:`box_features` of the training masks' boxes.

    Args:
        boxes_and_sizes: ``(xyxy box, (H, W))`` of each training mask (at least one).
        min_std: floor of each feature's standard deviation (k is small: 4 boxes cannot say how wide the spread is).
    """

    def __init__(self, boxes_and_sizes: Iterable[Tuple[Sequence[float], Sequence[int]]], min_std: float = 0.1):
        feats = np.stack([box_features(b, hw) for b, hw in boxes_and_sizes])
        self.mean, self.std = feats.mean(0), np.maximum(feats.std(0), min_std)
        self.count = len(feats)

    def log_likelihood(self, box: Sequence[float], hw: Sequence[int]) -> float:
        z = (box_features(box, hw) - self.mean) / self.std
        return float(-0.5 * (z ** 2).sum() - np.log(self.std).sum())

    def choose(self, detections: np.ndarray, hw: Sequence[int]) -> Optional[int]:
        """Index of the detection (rows ``x1 y1 x2 y2 conf cls``) maximising log prior + log confidence."""
        if not len(detections):
            return None
        scores = [self.log_likelihood(d[:4], hw) + np.log(max(float(d[4]), 1e-12)) for d in detections]
        return int(np.argmax(scores))

    @classmethod
    def from_split(cls, data_root: str, ann_file: str, seg_map_dir: str = 'ann_dir/train',
                   seg_map_suffix: str = '.png', ignore_index: int = 255, min_std: float = 0.1) -> 'BoxPrior':
        """From the masks named in a few-shot split file (paths relative to ``data_root``, as mmseg's)."""
        items = []
        for name in split_names(data_root, ann_file, 'box prior (model.prompter.prior.ann_file)'):
            box, hw = mask_file_box(osp.join(data_root, seg_map_dir, name + seg_map_suffix), 'box prior', ignore_index)
            if box is not None:
                items.append((box, hw))
        if not items:
            raise ValueError(f'box prior: no mask listed in {osp.join(data_root, ann_file)} has any foreground')
        return cls(items, min_std=min_std)
