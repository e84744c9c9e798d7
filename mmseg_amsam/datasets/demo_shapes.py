"""The demo dataset: the held-out few-shot domain of the "shapes world" (``shapes_world.make_demo_sample``: one
object in a muted "scan" style the toy SAM / YOLO never saw in pretraining), written in the prepared layout.

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
from PIL import Image

from .binary_seg import BinarySegDataset
from .prepared_layout import (SEG_MAP_SUFFIX, PathLike, atomic_output_dir, check_may_write, describe_existing_output,
                              file_record, split_dirs, split_file_records, write_manifest)
from .shapes_world import make_demo_sample, make_multiclass_sample

DEMO_SOURCE = 'demo_shapes'
MULTICLASS_SOURCE = 'demo_shapes_multiclass'
MULTICLASS_FAMILIES = ('ellipse', 'rectangle')  # labels 1, 2 (shape families of the toy YOLO: class_map by name)
DEMO_VERSION = 3  # 3: scan-style ellipses (2: scan-style rings, 1: random polygons)
_SPLIT_IDS = {'train': 0, 'test': 1}


def generate_demo_dataset(root: PathLike, num_train: int = 4, num_test: int = 20, size: int = 128, seed: int = 0,
                          overwrite: bool = False, log: Optional[Callable[[str], None]] = None,
                          multiclass: bool = False) -> Path:
    """Write the synthetic demo dataset in the prepared layout at ``root`` and return ``root``.

    Images are ``img_dir/{train,test}/{split}_{i:03d}.png`` (RGB), masks ``ann_dir/...png`` with 0/1 values;
    ``multiclass=True`` writes the toy multi-class task instead (labels 0 background, 1 ellipse, 2 rectangle:
    :data:`MULTICLASS_FAMILIES`, ``shapes_world.make_multiclass_sample``; :class:`DemoShapesMultiClassDataset`).
    Sample ``i`` of a split depends only on ``(seed, split, i)``. When ``root`` already is a complete demo
    dataset made with the same arguments nothing is done; another prepared dataset is replaced only with
    ``overwrite``, and anything else (not prepared by this package) never: :class:`OutputExistsError`. Writing is
    atomic (temporary folder, then rename).
    """
    if num_train < 1 or num_test < 1 or size < 32:
        raise ValueError(f'need num_train >= 1, num_test >= 1 and size >= 32, got {num_train}, {num_test}, {size}')
    root = Path(root)
    params = dict(num_train=num_train, num_test=num_test, size=size, seed=seed, version=DEMO_VERSION)
    source = MULTICLASS_SOURCE if multiclass else DEMO_SOURCE
    if multiclass:
        params['families'] = list(MULTICLASS_FAMILIES)
    fingerprint = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()
    state = describe_existing_output(root, source, fingerprint)
    if not check_may_write(root, state, overwrite, flag='overwrite=True (--overwrite)'):
        if log:
            log(f'[demo_shapes] nothing to do: {root} is already complete ({num_train} train, {num_test} test)')
        return root
    files = {}
    with atomic_output_dir(root) as tmp:
        for split, count in (('train', num_train), ('test', num_test)):
            img_dir, ann_dir = split_dirs(tmp, split)
            img_dir.mkdir(parents=True)
            ann_dir.mkdir(parents=True)
            files[split] = {}
            for i in range(count):
                rng = np.random.default_rng([seed, _SPLIT_IDS[split], i])
                image, mask = make_multiclass_sample(rng, MULTICLASS_FAMILIES, size) if multiclass else \
                    make_demo_sample(rng, size)
                name = f'{split}_{i:03d}'
                img_path, ann_path = img_dir / f'{name}.png', ann_dir / f'{name}{SEG_MAP_SUFFIX}'
                Image.fromarray(image).save(img_path)
                Image.fromarray(mask).save(ann_path)
                files[split][name] = file_record(img_path, ann_path)
        (tmp / 'splits').mkdir()  # the k shots are every training image (what detector adaptation reads)
        (tmp / 'splits' / f'train_{num_train}shot.txt').write_text(''.join(f'{n}\n' for n in sorted(files['train'])))
        write_manifest(tmp, dict(source=source, img_suffix='.png', seg_map_suffix=SEG_MAP_SUFFIX,
                                 raw_dir=None, raw_fingerprint=fingerprint, settings=params, files=files,
                                 split_files=split_file_records(tmp / 'splits')))
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


@DATASETS.register_module()
class DemoShapesMultiClassDataset(DemoShapesDataset):
    """The toy multi-class task (background / ellipse / rectangle); ``generate_demo_dataset(..., multiclass=True)``."""
    METAINFO = dict(classes=('background', ) + MULTICLASS_FAMILIES, palette=[[0, 0, 0], [0, 200, 255], [255, 120, 0]])
    SOURCE = MULTICLASS_SOURCE
    PREPARE_COMMAND = 'python tools/generate_demo_data.py {data_root} --multiclass'
