"""Datasets of AM-SAM (registered in ``mmseg.registry.DATASETS``) and the tools that prepare them."""
from .binary_seg import BinarySegDataset
from .conversion import (ConversionError, PairError, RawDataset, RawLayoutError, RawPair, binarise,
                         convert_dataset)
from .demo_shapes import DemoShapesDataset, DemoShapesMultiClassDataset, generate_demo_dataset
from .file_names import natural_key
from .fewshot import list_pool, make_fewshot_splits, select_fewshot, split_file_name
from .humanseg import HumanSegDataset
from .isic2018 import ISIC2018Dataset
from .prepared_layout import MANIFEST_NAME, OutputExistsError, read_manifest
from .tiktok import TikTokBodyDataset

__all__ = [
    'BinarySegDataset', 'HumanSegDataset', 'ISIC2018Dataset', 'TikTokBodyDataset', 'DemoShapesDataset',
    'DemoShapesMultiClassDataset',
    'generate_demo_dataset', 'make_fewshot_splits', 'select_fewshot', 'list_pool', 'split_file_name',
    'convert_dataset', 'binarise', 'natural_key', 'RawDataset', 'RawPair', 'RawLayoutError', 'PairError',
    'ConversionError', 'OutputExistsError', 'MANIFEST_NAME', 'read_manifest'
]
