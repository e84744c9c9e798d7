"""ISIC 2018 Task 1 skin lesion segmentation (AM-SAM paper, Table 3)."""
from mmseg.registry import DATASETS

from .binary_seg import BinarySegDataset


@DATASETS.register_module()
class ISIC2018Dataset(BinarySegDataset):
    """Skin lesion segmentation (background / lesion) with the official ISIC 2018 Task 1 splits
    (2594 train, optional 100 validation, 1000 test).

    Prepare with ``python tools/dataset_converters/isic2018.py RAW_DIR data/isic2018``, where RAW_DIR holds the
    official ``ISIC2018_Task1-2_{Training,Test}_Input`` and ``ISIC2018_Task1_{Training,Test}_GroundTruth``
    folders (Validation folders optional).
    """
    METAINFO = dict(classes=('background', 'lesion'), palette=[[0, 0, 0], [255, 128, 0]])
    IMG_SUFFIX = '.jpg'
    SOURCE = 'isic2018'
    PREPARE_COMMAND = 'python tools/dataset_converters/isic2018.py /path/to/ISIC2018 {data_root}'
