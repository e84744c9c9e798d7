"""Segmentation Full Body TikTok Dancing Dataset (AM-SAM paper, Table 1)."""
from mmseg.registry import DATASETS

from .binary_seg import BinarySegDataset


@DATASETS.register_module()
class TikTokBodyDataset(BinarySegDataset):
    """Full-body segmentation (background / person), 2615 frames; the last 2000 by name are the test set.

    Prepare with ``python tools/dataset_converters/tiktok.py RAW_DIR data/tiktok``, where RAW_DIR is the Kaggle
    download ``tapakah68/segmentation-full-body-tiktok-dancing-dataset`` (the folder holding ``images/`` and
    ``masks/``). Images are stored as PNG.
    """
    METAINFO = dict(classes=('background', 'person'), palette=[[0, 0, 0], [220, 20, 60]])
    IMG_SUFFIX = '.png'
    SOURCE = 'tiktok'
    PREPARE_COMMAND = 'python tools/dataset_converters/tiktok.py /path/to/tiktok_raw {data_root}'
