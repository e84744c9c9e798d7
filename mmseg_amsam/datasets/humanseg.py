"""Vikram Shenoy Human Segmentation Dataset (AM-SAM paper, Table 2)."""
from mmseg.registry import DATASETS

from .binary_seg import BinarySegDataset


@DATASETS.register_module()
class HumanSegDataset(BinarySegDataset):
    """Human segmentation (background / person), 300 photos; the last 100 in numeric order are the test set.

    Prepare with ``python tools/dataset_converters/humanseg.py RAW_DIR data/humanseg``, where RAW_DIR is a copy
    of https://github.com/VikramShenoy97/Human-Segmentation-Dataset (``Training_Images/``, ``Ground_Truth/``).
    """
    METAINFO = dict(classes=('background', 'person'), palette=[[0, 0, 0], [220, 20, 60]])
    IMG_SUFFIX = '.jpg'
    SOURCE = 'humanseg'
    PREPARE_COMMAND = 'python tools/dataset_converters/humanseg.py /path/to/Human-Segmentation-Dataset {data_root}'
