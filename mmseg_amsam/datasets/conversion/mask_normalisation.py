"""Turn a mask image into a 0/1 uint8 array of its image's size, or refuse when that is not safe.

Masks
  * modes 1, L and RGB whose three channels are equal; colour masks with unequal channels and float masks are
    skipped;
  * masks with an alpha channel (LA, RGBA): a constant alpha carries nothing and is ignored; over a constant grey
    (or constant colour) the alpha is the mask; when both vary they must give the same 0/1 mask, otherwise which
    channel is the mask is ambiguous and the pair is skipped (the message names the file);
  * 16-bit masks (I;16, I): values up to 255 are used as they are, larger ones scaled to 8 bits (/257, so 65535 ->
    255); then they follow the 8-bit rules;
  * palette (P) masks follow what the palette shows, never the bare indices: when every used colour is a grey level,
    the grey level is the value; black and exactly one other colour are background and foreground; any other
    palette (two non-black colours, several colours, an index without a colour) is ambiguous and skipped;
  * values {0, 1} are kept; {0, 255} become 0/1 by ``> 127``; other masks reaching above 127 (anti-aliased or
    JPEG-compressed edges) are thresholded at ``> 127``; a mask with exactly the two values {0, v},
    1 < v <= 127, becomes ``> 0``; any other label map (several values, all <= 127) is skipped as not binary;
  * a mask whose size differs from its image is resized to the image size with nearest neighbour and reported,
    unless the aspect ratios differ by more than 5 % (then it does not belong to that frame: skipped);
  * written as a single-channel 8-bit PNG with values 0/1. Empty masks (no foreground) are kept and counted.
"""
from pathlib import Path
from typing import List, Tuple

import numpy as np
from PIL import Image

from .errors import PairError
from .image_normalisation import ASPECT_TOLERANCE, Note, same_aspect

SIXTEEN_BIT_MODES = frozenset({'I;16', 'I;16L', 'I;16B', 'I;16N', 'I'})
SHOWN_INDICES = 4  # palette entries listed in a note
ALPHA_MODES = ('LA', 'RGBA')


def _used_values(values: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.bincount(values.ravel(), minlength=256))


def _palette_colours(m: Image.Image) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The index array of a palette mask, the indices it uses and their RGB colours (Nx3)."""
    indices = np.asarray(m)
    used = _used_values(indices)
    palette = np.array(m.getpalette('RGB') or [], dtype=np.int64).reshape(-1, 3)
    if used.max() >= len(palette):
        raise PairError(f'palette mask uses index {used.max()} but its palette has only {len(palette)} colours',
                        'ambiguous palette')
    return indices, used, palette[used]


def _describe_palette(used: np.ndarray, colours: np.ndarray) -> str:
    shown = [f'{i}=({r},{g},{b})' for i, (r, g, b) in zip(used[:SHOWN_INDICES], colours[:SHOWN_INDICES])]
    return ' '.join(shown) + (f' ... ({len(used)} indices)' if len(used) > SHOWN_INDICES else '')


def palette_values(m: Image.Image) -> Tuple[np.ndarray, List[Note]]:
    """uint8 values of a palette mask from the colours its palette shows (module docstring), or PairError."""
    indices, used, colours = _palette_colours(m)
    lut = np.zeros(256, np.uint8)
    detail = _describe_palette(used, colours)
    if (colours == colours[:, :1]).all():
        lut[used] = colours[:, 0]
        return lut[indices], [('mask palette: grey level of each used colour taken as the value', detail)]
    black = (colours == 0).all(axis=1)
    if len(used) == 2 and black.sum() == 1:
        lut[used[~black]] = 1
        return lut[indices], [('mask palette: black = background, the other colour = foreground', detail)]
    raise PairError(f'palette mask with colours {detail}: which colour is foreground is ambiguous (need grey levels, '
                    'or black and one other colour)', 'ambiguous palette')


def sixteen_bit_values(m: Image.Image) -> Tuple[np.ndarray, List[Note]]:
    """uint8 values of a 16-bit mask: kept when all <= 255, else scaled by 1/257 (65535 -> 255)."""
    values = np.asarray(m).astype(np.int64)
    low, high = int(values.min()), int(values.max())
    if low < 0 or high > 65535:
        raise PairError(f'{m.mode} mask values {low}..{high} outside the 16-bit range', 'unsupported mask mode')
    if high <= 255:
        return values.astype(np.uint8), [('mask 16-bit with values <= 255 -> 8-bit unchanged', m.mode)]
    return np.round(values / 257).astype(np.uint8), [('mask 16-bit -> 8-bit (/257)', m.mode)]


def mask_values(m: Image.Image) -> Tuple[np.ndarray, List[Note]]:
    """The single-channel uint8 value array of a mask image (see the module docstring for accepted modes)."""
    if m.mode == '1':
        return np.asarray(m, dtype=np.uint8), []
    if m.mode == 'L':
        return np.asarray(m), []
    if m.mode == 'P':
        return palette_values(m)
    if m.mode in SIXTEEN_BIT_MODES:
        return sixteen_bit_values(m)
    if m.mode in ALPHA_MODES:
        return alpha_mask_values(m)
    if m.mode == 'RGB':
        return grey_of_rgb(np.asarray(m), m.mode), [('mask RGB with equal channels -> single channel', m.mode)]
    raise PairError(f'unsupported mask mode {m.mode}', 'unsupported mask mode')


def grey_of_rgb(rgb: np.ndarray, mode: str) -> np.ndarray:
    """The single channel of an HxWx3 array whose channels are equal, or PairError (a colour mask)."""
    if not ((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 0] == rgb[..., 2]).all()):
        raise PairError(f'colour mask ({mode} with unequal channels) cannot be binarised safely', 'colour mask')
    return np.ascontiguousarray(rgb[..., 0])


def _constant(values: np.ndarray) -> bool:
    return bool((values == values.reshape(-1, *values.shape[2:])[0]).all())


def _binary_or_none(values: np.ndarray):
    try:
        return binarise(values)[0]
    except PairError:
        return None


def alpha_mask_values(m: Image.Image) -> Tuple[np.ndarray, List[Note]]:
    """uint8 values of an LA / RGBA mask: from the channel that carries the mask (module docstring), or PairError."""
    alpha = np.asarray(m.getchannel('A'))
    colour = np.asarray(m.getchannel('L')) if m.mode == 'LA' else np.asarray(m.convert('RGB'))
    if _constant(alpha):
        grey = colour if m.mode == 'LA' else grey_of_rgb(colour, m.mode)
        return grey, [('mask alpha channel constant, ignored', f'{m.mode} alpha {alpha.flat[0]}')]
    if _constant(colour):
        return np.ascontiguousarray(alpha), [('mask alpha channel taken as the mask (the colour is constant)',
                                             m.mode)]
    name = f'{Path(m.filename).name}: ' if getattr(m, 'filename', '') else ''  # opened from a file
    fix = 'save the mask as a single-channel (L) PNG, or with a constant alpha'
    if m.mode == 'RGBA' and not (colour == colour[..., :1]).all():
        raise PairError(f'{name}RGBA mask with varying colours and a varying alpha channel: which one is the mask '
                        f'is ambiguous ({fix})', 'ambiguous alpha mask')
    grey = colour if m.mode == 'LA' else np.ascontiguousarray(colour[..., 0])
    from_grey, from_alpha = _binary_or_none(grey), _binary_or_none(alpha)
    if from_grey is None or from_alpha is None or (from_grey != from_alpha).any():
        differ = 'cannot both be binarised' if from_grey is None or from_alpha is None else \
            f'disagree on {int((from_grey != from_alpha).sum())} pixels'
        raise PairError(f'{name}{m.mode} mask whose grey and alpha channels both vary and {differ}: which one is '
                        f'the mask is ambiguous ({fix})', 'ambiguous alpha mask')
    return grey, [('mask grey and alpha channels agree, grey used', m.mode)]


def binarise(values: np.ndarray) -> Tuple[np.ndarray, List[Note]]:
    """Map a uint8 mask to 0/1 following the module rules; raise :class:`PairError` if that is not safe."""
    present = _used_values(values)
    notes: List[Note] = []
    if present.max() <= 1:
        mask = values.astype(np.uint8, copy=True)
    elif set(present.tolist()) <= {0, 255}:
        mask = (values > 127).astype(np.uint8)
        notes.append(('mask 0/255 -> 0/1', ''))
    elif present.max() > 127:
        mask = (values > 127).astype(np.uint8)
        notes.append(('mask grey levels thresholded at >127', f'{len(present)} distinct values'))
    elif len(present) == 2 and present[0] == 0:
        mask = (values > 0).astype(np.uint8)
        notes.append(('mask 0/v -> 0/1 (>0)', f'0/{present[1]}'))
    else:
        raise PairError(f'mask values {present.tolist()[:8]} look like a multi-class label map, not a binary mask',
                        'multi-class label map')
    if not mask.any():
        notes.append(('mask empty (no foreground), kept', ''))
    return mask, notes


def normalise_mask(m: Image.Image, image_size: Tuple[int, int]) -> Tuple[np.ndarray, List[Note]]:
    """0/1 uint8 mask of ``image_size`` (w, h) from a mask image; raise :class:`PairError` when unsafe."""
    values, notes = mask_values(m)
    mask, more = binarise(values)
    notes += more
    if m.size != image_size:
        if not same_aspect(m.size, image_size):
            raise PairError(f'mask {m.size[0]}x{m.size[1]} and image {image_size[0]}x{image_size[1]} differ in '
                            f'aspect ratio by more than {ASPECT_TOLERANCE:.0%}: the mask does not fit the image',
                            'aspect ratio mismatch')
        mask = np.asarray(Image.fromarray(mask).resize(image_size, Image.Resampling.NEAREST))
        notes.append(('mask resized to image size (nearest)',
                      f'{m.size[0]}x{m.size[1]} -> {image_size[0]}x{image_size[1]}'))
    return mask, notes
