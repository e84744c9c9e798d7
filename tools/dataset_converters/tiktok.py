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
import os.path as osp
import sys

HERE = osp.dirname(osp.abspath(__file__))
if HERE not in sys.path:  # converter_cli.py lies beside this script (also when it is loaded by path)
    sys.path.insert(0, HERE)

from converter_cli import tail_split_converter_main  # noqa: E402  (also puts the checkout on sys.path)

from mmseg_amsam.datasets import TikTokBodyDataset  # noqa: E402


def main(argv=None) -> int:
    return tail_split_converter_main(argv, dataset_cls=TikTokBodyDataset, image_folder='images', mask_folder='masks',
                                     label='TikTok dancing', default_num_test=2000, description=__doc__)


if __name__ == '__main__':
    sys.exit(main())
