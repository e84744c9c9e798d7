#!/usr/bin/env python
"""Convert ISIC 2018 Task 1 (lesion boundary segmentation) into the prepared mmseg layout.

Raw layout (the official challenge folders, https://challenge.isic-archive.com/data/#2018):

    RAW_DIR/ISIC2018_Task1-2_Training_Input/ISIC_XXXXXXX.jpg
    RAW_DIR/ISIC2018_Task1_Training_GroundTruth/ISIC_XXXXXXX_segmentation.png
    RAW_DIR/ISIC2018_Task1-2_Test_Input/...            RAW_DIR/ISIC2018_Task1_Test_GroundTruth/...
    RAW_DIR/ISIC2018_Task1-2_Validation_Input/...      RAW_DIR/ISIC2018_Task1_Validation_GroundTruth/...  (optional)

The official splits are kept (train 2594, val 100, test 1000); the ``_segmentation`` suffix is dropped from
mask names. The LICENSE/ATTRIBUTION text files shipped in the folders are ignored.

Example:
    python tools/dataset_converters/isic2018.py /data/ISIC2018 data/isic2018
"""
import argparse
import os.path as osp
import sys
from pathlib import Path

HERE = osp.dirname(osp.abspath(__file__))
if HERE not in sys.path:  # converter_cli.py lies beside this script (also when it is loaded by path)
    sys.path.insert(0, HERE)

from converter_cli import converter_main  # noqa: E402  (also puts the checkout on sys.path)

from mmseg_amsam.datasets import ISIC2018Dataset  # noqa: E402
from mmseg_amsam.datasets.conversion import RawDataset, RawLayoutError, pair_folders, require_folders  # noqa: E402

MASK_NAME_SUFFIX = '_segmentation'
SPLITS = (  # split, image folder, mask folder, required
    ('train', 'ISIC2018_Task1-2_Training_Input', 'ISIC2018_Task1_Training_GroundTruth', True),
    ('val', 'ISIC2018_Task1-2_Validation_Input', 'ISIC2018_Task1_Validation_GroundTruth', False),
    ('test', 'ISIC2018_Task1-2_Test_Input', 'ISIC2018_Task1_Test_GroundTruth', True),
)


def collect(raw_dir: Path, args: argparse.Namespace) -> RawDataset:
    """Pairs of the official train/test (and, when both of its folders exist, validation) folders."""
    required = [folder for _, img, mask, req in SPLITS if req for folder in (img, mask)]
    require_folders(raw_dir, required, 'ISIC 2018 Task 1')
    parts = []
    for split, img, mask, req in SPLITS:
        present = [(Path(raw_dir) / f).is_dir() for f in (img, mask)]
        if not req and not all(present):
            if any(present):
                raise RawLayoutError(f'{raw_dir} has only one of the optional {split} folders {img}/ and {mask}/; '
                                     'provide both or neither')
            continue
        parts.append(pair_folders(Path(raw_dir) / img, Path(raw_dir) / mask, split, MASK_NAME_SUFFIX))
    return RawDataset.combine(parts)


def main(argv=None) -> int:
    return converter_main(argv, source=ISIC2018Dataset.SOURCE, img_suffix=ISIC2018Dataset.IMG_SUFFIX,
                          description=__doc__, collect=collect)


if __name__ == '__main__':
    sys.exit(main())
