"""The box of a sample's ground-truth mask, in network-input pixels, whichever frame the mask is in."""
import os.path as osp
from typing import List, Optional, Tuple

import torch

from .box_geometry import original_to_input


def mask_box(fg: torch.Tensor) -> Optional[Tuple[float, float, float, float]]:
    """xyxy box (pixel edges: a one-pixel mask at (x, y) -> (x, y, x + 1, y + 1)) of a (H, W) bool mask, or None."""
    cols, rows = fg.any(0), fg.any(1)
    if not bool(cols.any()):
        return None
    xs, ys = torch.nonzero(cols)[:, 0], torch.nonzero(rows)[:, 0]
    return (float(xs[0]), float(ys[0]), float(xs[-1]) + 1.0, float(ys[-1]) + 1.0)


def gt_in_original_frame(gt_hw, meta) -> bool:
    """Whether a GT mask of size ``gt_hw`` is at the original image's geometry (loaded after the transforms, as the
    test pipelines do so that Dice is computed at the original size) rather than at the network input's (loaded
    before them, then resized/flipped/padded with the image, as in training).

    The original frame is recognised by its size: ``ori_shape`` and different from the input (``img_shape``,
    ``pad_shape``). When all are equal both readings agree unless the image was flipped; a flipped mask of that
    size is taken as flipped with the image (training pipelines load annotations before ``RandomFlip``).
    """
    gt_hw = tuple(int(v) for v in gt_hw)
    ori = tuple(int(v) for v in meta.get('ori_shape', gt_hw)[:2])
    inputs = {tuple(int(v) for v in meta[k][:2]) for k in ('img_shape', 'pad_shape') if meta.get(k) is not None}
    return gt_hw == ori and gt_hw not in inputs


def gt_box_in_input(sample, ignore_index: int = 255,
                    label: Optional[int] = None) -> Optional[Tuple[float, float, float, float]]:
    """Box of the foreground (labels > 0, ``ignore_index`` excluded; with ``label`` only that class) in input
    pixels; None without GT or without such pixels."""
    if 'gt_sem_seg' not in sample:
        return None
    gt = sample.gt_sem_seg.data
    gt = gt[0] if gt.dim() == 3 else gt
    box = mask_box((gt > 0) & (gt != ignore_index) if label is None else gt == label)
    if box is None:
        return None
    return original_to_input(box, sample.metainfo) if gt_in_original_frame(gt.shape, sample.metainfo) else box


def split_names(data_root: str, ann_file: str, who: str) -> List[str]:
    """The image names of a few-shot split file (relative to ``data_root``, as mmseg's ``ann_file``)."""
    split = ann_file if osp.isabs(ann_file) else osp.join(data_root, ann_file)
    if not osp.isfile(split):
        raise FileNotFoundError(f'{who}: split file {split} not found (the k training images); make it with '
                                'tools/dataset_converters/make_fewshot_split.py')
    with open(split) as f:
        names = [line.strip() for line in f if line.strip()]
    if not names:
        raise ValueError(f'{who}: split file {split} lists no image')
    return names


def mask_file_box(path: str, who: str, ignore_index: int = 255,
                  label: Optional[int] = None) -> Tuple[Optional[Tuple], Tuple[int, int]]:
    """``(box of the foreground or None, (H, W))`` of a mask file (labels > 0, ``ignore_index`` excluded; with
    ``label`` the pixels of that class only)."""
    import cv2
    mask = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise FileNotFoundError(f'{who}: cannot read the mask {path}')
    fg = (mask > 0) & (mask != ignore_index) if label is None else mask == label
    return mask_box(torch.from_numpy(fg)), mask.shape[:2]
