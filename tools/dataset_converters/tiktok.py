#!/usr/bin/env python
"""Convert the Segmentation Full Body TikTok Dancing Dataset (Kaggle) into the prepared mmseg layout.

Raw layout (kaggle.com/datasets/tapakah68/segmentation-full-body-tiktok-dancing-dataset):

    RAW_DIR/images/<name>.png
    RAW_DIR/masks/<name>.png      (same names as the images)

The last --num-test (2000) images sorted by name (natural order) form the test split, as in BLO-SAM and
AM-SAM; the rest (615 of 2615) is train. Images are written as PNG.

Example:
    python tools/dataset_converters/tiktok.py /data/segmentation_full_body_tik_tok_2615_img data/tiktok
"""
import argparse
import sys
from pathlib import Path

from mmseg_amsam.datasets import TikTokBodyDataset
from mmseg_amsam.datasets.conversion import (RawDataset, assign_tail_split, converter_main, pair_folders,
                                             require_folders)

IMAGE_FOLDER, MASK_FOLDER = 'images', 'masks'


def collect(raw_dir: Path, args: argparse.Namespace) -> RawDataset:
    """All pairs of ``images/`` and ``masks/``; the last ``num_test`` names go to the test split."""
    image_dir, mask_dir = require_folders(raw_dir, (IMAGE_FOLDER, MASK_FOLDER), 'TikTok dancing')
    raw = pair_folders(image_dir, mask_dir, split='train')
    assign_tail_split(raw.pairs, args.num_test)
    raw.settings['num_test'] = args.num_test
    return raw


def main(argv=None) -> int:
    return converter_main(
        argv, source=TikTokBodyDataset.SOURCE, img_suffix=TikTokBodyDataset.IMG_SUFFIX, description=__doc__,
        collect=collect,
        add_arguments=lambda p: p.add_argument('--num-test', type=int, default=2000,
                                               help='last N images (sorted by name) form the test split'))


if __name__ == '__main__':
    sys.exit(main())
