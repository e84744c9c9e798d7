"""A tiny synthetic binary dataset (textured shapes on textured backgrounds) for smoke tests and demos.

``generate_demo_dataset('data/demo_shapes')`` (or ``python tools/generate_demo_data.py data/demo_shapes``)
writes the same prepared layout as the real converters, so every config and tool can be exercised without
downloading anything. Output is deterministic for a given seed and the call is idempotent.
"""
import hashlib
import json
from pathlib import Path
from typing import Callable, Optional

import numpy as np
from mmseg.registry import DATASETS
from PIL import Image, ImageDraw

from .binary_seg import BinarySegDataset
from .prepared_layout import (SEG_MAP_SUFFIX, OutputExistsError, PathLike, atomic_output_dir,
                              describe_existing_output, file_record, split_dirs, write_manifest)

DEMO_SOURCE = 'demo_shapes'
DEMO_VERSION = 1
_SPLIT_IDS = {'train': 0, 'test': 1}


def _texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """A random two-colour texture (gradient, stripes, checkerboard, blotches or dots), float32 HxWx3."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    angle = rng.uniform(0, np.pi)
    along = np.cos(angle) * xx + np.sin(angle) * yy
    kind = rng.integers(5)
    if kind == 0:  # linear gradient
        t = (along - along.min()) / max(float(np.ptp(along)), 1e-6)
    elif kind == 1:  # stripes
        t = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(3, 12) * along + rng.uniform(0, 2 * np.pi))
    elif kind == 2:  # checkerboard
        n = rng.integers(3, 11)
        t = ((np.floor(xx * n) + np.floor(yy * n)) % 2).astype(np.float32)
    elif kind == 3:  # smooth blotches: upsampled low-resolution noise
        k = int(rng.integers(3, 9))
        low = Image.fromarray((rng.uniform(0, 1, (k, k)) * 255).astype(np.uint8))
        t = np.asarray(low.resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32) / 255
    else:  # dots
        f = rng.uniform(4, 10)
        t = (np.sin(2 * np.pi * f * xx) * np.sin(2 * np.pi * f * yy) > rng.uniform(0, 0.6)).astype(np.float32)
    c1, c2 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    return (c1 * (1 - t[..., None]) + c2 * t[..., None]).astype(np.float32)


def _shape_polygon(rng: np.random.Generator, size: int) -> list:
    """Vertices of a rotated ellipse or a random star-shaped polygon, as [(x, y), ...]."""
    cx, cy = rng.uniform(0.25, 0.75, 2) * size
    if rng.random() < 0.5:
        a, b = rng.uniform(0.1, 0.3, 2) * size
        rot = rng.uniform(0, np.pi)
        t = np.linspace(0, 2 * np.pi, 64, endpoint=False)
        x, y = a * np.cos(t), b * np.sin(t)
        xs, ys = cx + x * np.cos(rot) - y * np.sin(rot), cy + x * np.sin(rot) + y * np.cos(rot)
    else:
        n = int(rng.integers(3, 9))
        angles = np.sort(rng.uniform(0, 2 * np.pi, n))
        radii = rng.uniform(0.5, 1.0, n) * rng.uniform(0.15, 0.3) * size
        xs, ys = cx + radii * np.cos(angles), cy + radii * np.sin(angles)
    return list(zip(xs.tolist(), ys.tolist()))


def make_demo_sample(rng: np.random.Generator, size: int) -> tuple:
    """One (HxWx3 uint8 image, HxW uint8 0/1 mask) with 1-2 textured shapes covering 3-60 % of the image."""
    for _ in range(100):
        canvas = Image.new('L', (size, size), 0)
        draw = ImageDraw.Draw(canvas)
        for _ in range(int(rng.integers(1, 3))):
            draw.polygon(_shape_polygon(rng, size), fill=1)
        mask = np.asarray(canvas, dtype=np.uint8)
        if 0.03 <= mask.mean() <= 0.6:
            break
    background, foreground = _texture(rng, size), _texture(rng, size)
    image = np.where(mask[..., None].astype(bool), foreground, background)
    image += rng.normal(0, rng.uniform(2, 15), image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), mask


def generate_demo_dataset(root: PathLike, num_train: int = 8, num_test: int = 4, size: int = 128, seed: int = 0,
                          overwrite: bool = False, log: Optional[Callable[[str], None]] = None) -> Path:
    """Write the synthetic demo dataset in the prepared layout at ``root`` and return ``root``.

    Images are ``img_dir/{train,test}/{split}_{i:03d}.png`` (RGB), masks ``ann_dir/...png`` with 0/1 values.
    Sample ``i`` of a split depends only on ``(seed, split, i)``. When ``root`` already is a complete demo
    dataset made with the same arguments nothing is done; if it holds anything else, :class:`OutputExistsError`
    is raised unless ``overwrite``. Writing is atomic (temporary folder, then rename).
    """
    if num_train < 1 or num_test < 1 or size < 32:
        raise ValueError(f'need num_train >= 1, num_test >= 1 and size >= 32, got {num_train}, {num_test}, {size}')
    root = Path(root)
    params = dict(num_train=num_train, num_test=num_test, size=size, seed=seed, version=DEMO_VERSION)
    fingerprint = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()
    state = describe_existing_output(root, DEMO_SOURCE, fingerprint)
    if state is None and not overwrite:
        if log:
            log(f'[demo_shapes] nothing to do: {root} is already complete ({num_train} train, {num_test} test)')
        return root
    if state and not overwrite:
        raise OutputExistsError(f'{state}. Refusing to touch it; use overwrite=True (--overwrite) or another root')
    files = {}
    with atomic_output_dir(root) as tmp:
        for split, count in (('train', num_train), ('test', num_test)):
            img_dir, ann_dir = split_dirs(tmp, split)
            img_dir.mkdir(parents=True)
            ann_dir.mkdir(parents=True)
            files[split] = {}
            for i in range(count):
                rng = np.random.default_rng([seed, _SPLIT_IDS[split], i])
                image, mask = make_demo_sample(rng, size)
                name = f'{split}_{i:03d}'
                img_path, ann_path = img_dir / f'{name}.png', ann_dir / f'{name}{SEG_MAP_SUFFIX}'
                Image.fromarray(image).save(img_path)
                Image.fromarray(mask).save(ann_path)
                files[split][name] = file_record(img_path, ann_path)
        write_manifest(tmp, dict(source=DEMO_SOURCE, img_suffix='.png', seg_map_suffix=SEG_MAP_SUFFIX,
                                 raw_dir=None, raw_fingerprint=fingerprint, settings=params, files=files))
    if log:
        log(f'[demo_shapes] wrote {num_train} train + {num_test} test images ({size}x{size}) to {root}')
    return root


@DATASETS.register_module()
class DemoShapesDataset(BinarySegDataset):
    """The synthetic demo dataset (background / shape); see :func:`generate_demo_dataset`."""
    METAINFO = dict(classes=('background', 'shape'), palette=[[0, 0, 0], [0, 200, 255]])
    IMG_SUFFIX = '.png'
    SOURCE = DEMO_SOURCE
    PREPARE_COMMAND = 'python tools/generate_demo_data.py {data_root}'
