"""Drawing predictions: mask files and overlays with the prompt box (used by tools/infer.py, tools/visualize.py)."""
from typing import Optional, Sequence

import cv2
import numpy as np

BOX_COLOUR = (255, 220, 0)  # RGB, yellow
FALLBACK_COLOUR = (255, 40, 40)  # RGB, for classes whose palette colour is black or white


def save_mask(mask: np.ndarray, path: str, palette: Optional[Sequence[Sequence[int]]] = None) -> None:
    """A class map as PNG: grey values = class ids (0/1 for binary tasks), or a paletted PNG with ``palette``."""
    from PIL import Image
    img = Image.fromarray(mask.astype(np.uint8), mode='L' if palette is None else 'P')
    if palette is not None:
        flat = [int(c) for colour in palette for c in colour]
        img.putpalette(flat + [0] * (768 - len(flat)))
    img.save(path)


def overlay(rgb: np.ndarray, mask: Optional[np.ndarray], box=None, palette=None, opacity: float = 0.5,
            thickness: Optional[int] = None) -> np.ndarray:
    """RGB image with the classes > 0 of ``mask`` blended in (palette colours) and ``box`` (x1, y1, x2, y2) drawn
    (or each box of a list: a multi-class model's boxes)."""
    out = rgb.copy()
    if mask is not None:
        for cls in np.unique(mask):
            if cls == 0:
                continue
            colour = np.array(palette[cls % len(palette)] if palette else FALLBACK_COLOUR, dtype=np.float32)
            if colour.max() == colour.min() and colour.max() in (0, 255):  # black / white: invisible on photos
                colour = np.array(FALLBACK_COLOUR, dtype=np.float32)
            sel = mask == cls
            out[sel] = ((1 - opacity) * out[sel] + opacity * colour).astype(np.uint8)
    boxes = [] if box is None or not len(box) else list(box) if isinstance(box[0], (list, tuple)) else [box]
    for b in boxes:
        t = thickness or max(1, round(max(rgb.shape[:2]) / 200))
        x1, y1, x2, y2 = (int(round(v)) for v in b)
        cv2.rectangle(out, (x1, y1), (max(x1, x2 - 1), max(y1, y2 - 1)), BOX_COLOUR, t)
    return out
