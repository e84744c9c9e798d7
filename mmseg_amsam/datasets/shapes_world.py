"""The "shapes world": generated scenes of textured shapes on textured backgrounds, with per-object masks.

It is the pretraining world of the embedded toy SAM and YOLO (``tools/pretrain_toy.py``) and the source of the demo's
held-out few-shot domain (:func:`make_demo_sample`). Every scene depends only on the ``numpy`` generator given.

* Pretraining domain (:data:`PRETRAIN_STYLE`): 1-3 objects of the :data:`PRETRAIN_FAMILIES` (the YOLO class names),
  random colours and textures, scales 8-45 % of the image side, occlusion (later objects cover earlier ones).
* Held-out domain (:data:`HELD_OUT_STYLE`): one object (:data:`HELD_OUT_FAMILY`) in a muted, noisy, blurred
  "scan-like" grey-blue style never seen in pretraining, like going from natural images to a medical modality.
  (``'ring'``, a family never seen, was tried first: the toy SAM segments its hole wrongly even given the box and
  the toy YOLO boxes it poorly, so 4 shots could not teach it; toy_world/README.md has the numbers.)
* Multi-class held-out domain (:func:`make_multiclass_sample`): the same style, 1-3 objects of two pretraining
  families (ellipse, rectangle), labelled by family: the toy multi-class task.
"""
from typing import List, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

PRETRAIN_FAMILIES = ('ellipse', 'rectangle', 'triangle', 'star')
HELD_OUT_FAMILY = 'ellipse'
PRETRAIN_STYLE = dict(palette='colour', noise=(2.0, 12.0), blur=(0.0, 0.6), min_contrast=60.0)
HELD_OUT_STYLE = dict(palette='scan', noise=(8.0, 14.0), blur=(0.6, 1.0), min_contrast=35.0)


def texture(rng: np.random.Generator, size: int, colours: Tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """A two-colour texture (flat, gradient, stripes, checkerboard, blotches or dots), float32 HxWx3."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    angle = rng.uniform(0, np.pi)
    along = np.cos(angle) * xx + np.sin(angle) * yy
    kind = int(rng.integers(6))
    if kind == 0:  # flat
        t = np.zeros_like(xx)
    elif kind == 1:  # linear gradient
        t = (along - along.min()) / max(float(np.ptp(along)), 1e-6)
    elif kind == 2:  # stripes
        t = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(3, 10) * along + rng.uniform(0, 2 * np.pi))
    elif kind == 3:  # checkerboard
        n = int(rng.integers(3, 9))
        t = ((np.floor(xx * n) + np.floor(yy * n)) % 2).astype(np.float32)
    elif kind == 4:  # smooth blotches: upsampled low-resolution noise
        k = int(rng.integers(3, 8))
        low = Image.fromarray((rng.uniform(0, 1, (k, k)) * 255).astype(np.uint8))
        t = np.asarray(low.resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32) / 255
    else:  # dots
        f = rng.uniform(4, 9)
        t = (np.sin(2 * np.pi * f * xx) * np.sin(2 * np.pi * f * yy) > rng.uniform(0, 0.6)).astype(np.float32)
    c1, c2 = colours
    return (c1 * (1 - t[..., None]) + c2 * t[..., None]).astype(np.float32)


def _colour_pair(rng: np.random.Generator, palette: str, base: np.ndarray = None,
                 min_contrast: float = 60.0) -> Tuple[np.ndarray, np.ndarray]:
    """Two colours of one texture; with ``base`` (the background's mean) the pair's mean differs from it by at
    least ``min_contrast`` (Euclidean RGB distance), so the object stays visible."""
    for _ in range(50):
        if palette == 'colour':
            c1 = rng.uniform(0, 255, 3)
            c2 = np.clip(c1 + rng.uniform(-70, 70, 3), 0, 255)
        else:  # 'scan': grey-blue tints, narrow range, like a stained or scanned image
            level = rng.uniform(60, 200)
            c1 = np.clip(level * np.array([0.85, 0.95, 1.05]) + rng.normal(0, 4, 3), 0, 255)
            c2 = np.clip(c1 + rng.uniform(-25, 25), 0, 255)
        if base is None or np.linalg.norm((c1 + c2) / 2 - base) >= min_contrast:
            break
    return c1, c2


def shape_mask(rng: np.random.Generator, family: str, size: int, scale: Tuple[float, float]) -> np.ndarray:
    """An HxW bool mask of one shape of ``family``, radius ``scale`` x ``size``, at a random place and angle."""
    radius = rng.uniform(*scale) * size
    cx, cy = rng.uniform(radius * 0.8, size - radius * 0.8, 2)
    rot = rng.uniform(0, 2 * np.pi)

    def place(xs, ys):
        x, y = np.asarray(xs), np.asarray(ys)
        return list(zip((cx + x * np.cos(rot) - y * np.sin(rot)).tolist(),
                        (cy + x * np.sin(rot) + y * np.cos(rot)).tolist()))

    t = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    canvas = Image.new('L', (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    if family in ('ellipse', 'ring'):
        aspect = rng.uniform(0.6, 1.0)
        draw.polygon(place(radius * np.cos(t), radius * aspect * np.sin(t)), fill=1)
        if family == 'ring':  # the hole shows the background
            inner = rng.uniform(0.45, 0.65)
            draw.polygon(place(inner * radius * np.cos(t), inner * radius * aspect * np.sin(t)), fill=0)
    elif family == 'rectangle':
        w, h = radius, radius * rng.uniform(0.5, 1.0)
        draw.polygon(place([-w, w, w, -w], [-h, -h, h, h]), fill=1)
    elif family == 'triangle':
        angles = np.array([0, 2 * np.pi / 3, 4 * np.pi / 3]) + rng.uniform(-0.4, 0.4, 3)
        draw.polygon(place(radius * np.cos(angles), radius * np.sin(angles)), fill=1)
    elif family == 'star':
        n = int(rng.integers(5, 8))
        a = np.linspace(0, 2 * np.pi, 2 * n, endpoint=False)
        r = np.where(np.arange(2 * n) % 2 == 0, radius, radius * rng.uniform(0.45, 0.6))
        draw.polygon(place(r * np.cos(a), r * np.sin(a)), fill=1)
    else:
        raise ValueError(f'unknown shape family {family!r}; known: {PRETRAIN_FAMILIES + ("ring", )}')
    return np.asarray(canvas, dtype=bool)


def make_scene(rng: np.random.Generator, size: int = 128, families: Sequence[str] = PRETRAIN_FAMILIES,
               num_objects: Tuple[int, int] = (1, 3), scale: Tuple[float, float] = (0.12, 0.4),
               style: dict = PRETRAIN_STYLE) -> Tuple[np.ndarray, List[Tuple[int, np.ndarray]]]:
    """One scene: ``(HxWx3 uint8 RGB image, [(family index, HxW bool visible mask), ...])``.

    Objects are drawn in order, each covering the ones before it; an object whose visible part is below 50 % of
    its shape (or 1 % of the image) is redrawn, so every listed object is clearly visible.
    """
    palette = style['palette']
    background = texture(rng, size, _colour_pair(rng, palette))
    base = background.reshape(-1, 3).mean(0)
    image = background.copy()
    objects: List[Tuple[int, np.ndarray]] = []
    count = int(rng.integers(num_objects[0], num_objects[1] + 1))
    for _ in range(count):
        for _attempt in range(20):
            cls = int(rng.integers(len(families)))
            mask = shape_mask(rng, families[cls], size, scale)
            visible = [m & ~mask for _, m in objects]
            if all(v.sum() >= 0.5 * m.sum() for v, (_, m) in zip(visible, objects)) and mask.sum() >= 0.01 * size ** 2:
                break
        else:
            continue
        objects = [(c, v) for v, (c, _) in zip(visible, objects)]
        fg = texture(rng, size, _colour_pair(rng, palette, base, style['min_contrast']))
        image = np.where(mask[..., None], fg, image)
        objects.append((cls, mask))
    blur = rng.uniform(*style['blur'])
    out = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))
    if blur > 0.05:
        out = out.filter(ImageFilter.GaussianBlur(blur))
    noisy = np.asarray(out, dtype=np.float32) + rng.normal(0, rng.uniform(*style['noise']), (size, size, 3))
    return np.clip(noisy, 0, 255).astype(np.uint8), objects


def make_demo_sample(rng: np.random.Generator, size: int = 128) -> Tuple[np.ndarray, np.ndarray]:
    """One image of the held-out domain and its 0/1 uint8 mask: a single :data:`HELD_OUT_FAMILY` object in the
    :data:`HELD_OUT_STYLE`."""
    image, objects = make_scene(rng, size, (HELD_OUT_FAMILY, ), (1, 1), (0.2, 0.4), HELD_OUT_STYLE)
    return image, objects[0][1].astype(np.uint8)


def make_multiclass_sample(rng: np.random.Generator, families: Sequence[str], size: int = 128
                           ) -> Tuple[np.ndarray, np.ndarray]:
    """One image of the held-out style with 1-3 objects of ``families`` and its label map: ``1 + i`` where an
    object of ``families[i]`` is visible, 0 elsewhere (a family may be absent from an image, or appear twice)."""
    image, objects = make_scene(rng, size, tuple(families), (1, 3), (0.15, 0.35), HELD_OUT_STYLE)
    labels = np.zeros((size, size), np.uint8)
    for cls, mask in objects:
        labels[mask] = cls + 1
    return image, labels


def mask_box(mask: np.ndarray) -> Tuple[float, float, float, float]:
    """xyxy box of a bool mask in pixel-edge coordinates (a one-pixel mask at (x, y) is ``(x, y, x+1, y+1)``)."""
    ys, xs = np.nonzero(mask)
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)
