#!/usr/bin/env python
"""Convert the Vikram Shenoy Human Segmentation Dataset into the prepared mmseg layout.

Raw layout (https://github.com/VikramShenoy97/Human-Segmentation-Dataset):

    RAW_DIR/Training_Images/<n>.jpg
    RAW_DIR/Ground_Truth/<n>.png

The last --num-test (100) images in numeric order form the test split, as in the AM-SAM paper; the rest is
train. Output: OUT_DIR/{img_dir,ann_dir}/{train,test}/<n>.{jpg,png} with 0/1 masks.

Example:
    python tools/dataset_converters/humanseg.py /data/Human-Segmentation-Dataset data/humanseg
"""
import argparse
import sys
from pathlib import Path

from mmseg_amsam.datasets import HumanSegDataset
from mmseg_amsam.datasets.conversion import (RawDataset, assign_tail_split, converter_main, pair_folders,
                                             require_folders)

IMAGE_FOLDER, MASK_FOLDER = 'Training_Images', 'Ground_Truth'


def collect(raw_dir: Path, args: argparse.Namespace) -> RawDataset:
    """All pairs of the two folders; the last ``num_test`` names (numeric order) go to the test split."""
    image_dir, mask_dir = require_folders(raw_dir, (IMAGE_FOLDER, MASK_FOLDER), 'HumanSeg')
    raw = pair_folders(image_dir, mask_dir, split='train')
    assign_tail_split(raw.pairs, args.num_test)
    raw.settings['num_test'] = args.num_test
    return raw


def main(argv=None) -> int:
    return converter_main(
        argv, source=HumanSegDataset.SOURCE, img_suffix=HumanSegDataset.IMG_SUFFIX, description=__doc__,
        collect=collect,
        add_arguments=lambda p: p.add_argument('--num-test', type=int, default=100,
                                               help='last N images (numeric order) form the test split'))


if __name__ == '__main__':
    sys.exit(main())
