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
import os.path as osp
import sys

HERE = osp.dirname(osp.abspath(__file__))
if HERE not in sys.path:  # converter_cli.py lies beside this script (also when it is loaded by path)
    sys.path.insert(0, HERE)

from converter_cli import tail_split_converter_main  # noqa: E402  (also puts the checkout on sys.path)

from mmseg_amsam.datasets import HumanSegDataset  # noqa: E402


def main(argv=None) -> int:
    return tail_split_converter_main(argv, dataset_cls=HumanSegDataset, image_folder='Training_Images',
                                     mask_folder='Ground_Truth', label='HumanSeg', default_num_test=100,
                                     description=__doc__)


if __name__ == '__main__':
    sys.exit(main())
