"""Turn a raw download of (image, mask) pairs into the prepared layout; shared by every dataset converter.

The pieces, in the order a conversion uses them:

* :mod:`.raw_pairs` - find the candidate pairs in RAW_DIR and the split of each (:class:`RawDataset`);
* :mod:`.image_normalisation`, :mod:`.mask_normalisation` - the rules for one image and one mask (anything
  not covered is skipped and reported, never guessed);
* :mod:`.pair_conversion` - validate, normalise and write one pair;
* :mod:`.dataset_conversion` - the whole dataset, written atomically, with :class:`ConversionSummary`.

The command lines live in ``tools/dataset_converters``.
"""
from .conversion_summary import ConversionSummary
from .dataset_conversion import CONVERTER_VERSION, convert_dataset, raw_fingerprint
from .errors import ConversionError, PairError, RawLayoutError
from .image_normalisation import normalise_image, open_fully, same_aspect
from .mask_normalisation import binarise, mask_values, normalise_mask
from .pair_conversion import PairResult, convert_pair
from .raw_pairs import (RawDataset, RawPair, assign_tail_split, collect_tail_split, pair_folders, require_folders,
                        scan_folder)
from ..file_names import IMAGE_SUFFIXES, natural_key

__all__ = [
    'ConversionSummary', 'CONVERTER_VERSION', 'convert_dataset', 'raw_fingerprint', 'ConversionError', 'PairError',
    'RawLayoutError', 'normalise_image', 'open_fully', 'same_aspect', 'binarise', 'mask_values', 'normalise_mask',
    'PairResult', 'convert_pair', 'RawDataset', 'RawPair', 'assign_tail_split', 'collect_tail_split',
    'pair_folders', 'require_folders', 'scan_folder', 'IMAGE_SUFFIXES', 'natural_key'
]
