"""Where a box of the original image lies in the network input: the geometry the data pipeline recorded.

mmcv 2.1 / mmseg 1.2.2 transforms record, and ``PackSegInputs`` packs, ``ori_shape``, ``img_shape``, ``pad_shape``,
``scale_factor`` = ``(w_scale, h_scale)`` (``Resize``, ``RandomResize``, ``RandomChoiceResize``,
``ResizeShortestEdge``; keep-ratio or not), ``flip`` / ``flip_direction`` (``RandomFlip``: 'horizontal',
'vertical', 'diagonal'). Padding (mmcv ``Pad``, the data preprocessor's ``stack_batch``) adds pixels at the
bottom/right only, which moves no box. Crops (``RandomCrop``, ``CenterCrop``) record nothing of where they cut:
the input is then smaller than the resized original, and :func:`check_geometry` refuses it with a clear error.
Order assumed (that of every mmseg pipeline): resize, then flip, then pad.
"""
from typing import Mapping, Optional, Sequence, Tuple

Box = Tuple[float, float, float, float]


class UnmappableGeometryError(ValueError):
    """The pipeline changed the image in a way whose geometry the metainfo does not record."""


def _hw(shape) -> Tuple[int, int]:
    return int(shape[0]), int(shape[1])


def scale_of(meta: Mapping) -> Tuple[float, float]:
    """``(w_scale, h_scale)`` from the original image to the network input."""
    sf = meta.get('scale_factor')
    if sf is None:
        ori, img = _hw(meta.get('ori_shape', meta['img_shape'])), _hw(meta['img_shape'])
        if ori != img:
            raise UnmappableGeometryError(
                f'{_name(meta)}: the network input is {img[1]}x{img[0]} but the original image {ori[1]}x{ori[0]}, and '
                'the metainfo has no scale_factor saying how one became the other (a resize that does not record '
                'it, or a crop?). Keep mmcv/mmseg Resize transforms (they record scale_factor) or detect on the '
                'network input (model.prompter.use_original_image=False).')
        return 1.0, 1.0
    if isinstance(sf, (int, float)):
        return float(sf), float(sf)
    return float(sf[0]), float(sf[1])


def _name(meta: Mapping) -> str:
    return str(meta.get('img_path') or 'an image')


def resized_hw(meta: Mapping) -> Tuple[int, int]:
    """Size of the original image after the recorded resize (before any padding)."""
    w_scale, h_scale = scale_of(meta)
    ori_h, ori_w = _hw(meta.get('ori_shape', meta['img_shape']))
    return int(round(ori_h * h_scale)), int(round(ori_w * w_scale))


def check_geometry(meta: Mapping) -> None:
    """Raise :class:`UnmappableGeometryError` when the input is not the (resized, flipped, padded) original."""
    rh, rw = resized_hw(meta)
    img_h, img_w = _hw(meta['img_shape'])
    if img_h < rh or img_w < rw:
        raise UnmappableGeometryError(
            f'{_name(meta)}: the network input ({img_w}x{img_h}) is smaller than the resized original ({rw}x{rh}), '
            'so the pipeline cropped it (RandomCrop/CenterCrop...), and where it cut is not recorded in the '
            'metainfo: a box found on the original image cannot be placed in the input. Remove the crop from the '
            'pipeline, or detect on the network input (model.prompter.use_original_image=False).')
    direction = meta.get('flip_direction')
    if meta.get('flip') and direction not in ('horizontal', 'vertical', 'diagonal'):
        raise UnmappableGeometryError(f'{_name(meta)}: unknown flip_direction {direction!r}')


def _flip(box: Box, meta: Mapping, hw: Tuple[int, int]) -> Box:
    if not meta.get('flip'):
        return box
    x1, y1, x2, y2 = box
    direction = meta.get('flip_direction')
    if direction in ('horizontal', 'diagonal'):
        x1, x2 = hw[1] - x2, hw[1] - x1
    if direction in ('vertical', 'diagonal'):
        y1, y2 = hw[0] - y2, hw[0] - y1
    return (x1, y1, x2, y2)


def original_to_input(box: Sequence[float], meta: Mapping) -> Box:
    """Map an xyxy box in original-image pixels to network-input pixels (resize, flip; padding moves nothing)."""
    check_geometry(meta)
    w_scale, h_scale = scale_of(meta)
    x1, y1, x2, y2 = (float(v) for v in box)
    return _flip((x1 * w_scale, y1 * h_scale, x2 * w_scale, y2 * h_scale), meta, resized_hw(meta))


def input_to_original(box: Sequence[float], meta: Mapping) -> Box:
    """Inverse of :func:`original_to_input`."""
    check_geometry(meta)
    w_scale, h_scale = scale_of(meta)
    x1, y1, x2, y2 = _flip(tuple(float(v) for v in box), meta, resized_hw(meta))
    return (x1 / w_scale, y1 / h_scale, x2 / w_scale, y2 / h_scale)


def prompt_box_in_original(meta: Mapping):
    """The prompt box a prompter recorded (``meta['prompt_box']``, network-input pixels) in original-image pixels,
    back through the recorded resize / flip and clipped to the image; None where it fell back or there is none.
    With class prompts (a list, one entry per class) the list of those."""
    box = meta.get('prompt_box')
    if isinstance(box, list):  # class prompts: one box (or None) per class
        return [_box_in_original(b, meta) for b in box]
    return _box_in_original(box, meta)


def _box_in_original(box, meta: Mapping) -> Optional[Box]:
    if box is None:
        return None
    ori_h, ori_w = (float(v) for v in meta['ori_shape'][:2])
    limits = (ori_w, ori_h, ori_w, ori_h)
    return tuple(min(max(v, 0.0), limit) for v, limit in zip(input_to_original(box, meta), limits))


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two xyxy boxes (0 when either is empty)."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
