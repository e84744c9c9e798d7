"""Convert one (image, mask) pair: validate, normalise and write it, or say why it is skipped."""
import dataclasses
import shutil
from pathlib import Path
from typing import List, Optional

from PIL import Image

from ..prepared_layout import SEG_MAP_SUFFIX, file_record, split_dirs
from .errors import PairError
from .image_normalisation import JPEG_QUALITY, TARGET_FORMATS, Note, normalise_image, open_fully
from .mask_normalisation import normalise_mask
from .raw_pairs import RawPair


@dataclasses.dataclass
class PairResult:
    """Outcome of converting one pair: written (``record`` = byte sizes) or skipped (``skipped`` = why, in full;
    ``reason`` = its short category)."""
    name: str
    split: str
    notes: List[Note] = dataclasses.field(default_factory=list)
    skipped: Optional[str] = None
    record: Optional[List[int]] = None
    reason: Optional[str] = None


def convert_pair(pair: RawPair, out_root: Path, img_suffix: str) -> PairResult:
    """Validate, normalise and write one pair under ``out_root``; never raises for a bad pair."""
    result = PairResult(pair.name, pair.split)
    if pair.problem:
        result.skipped, result.reason = pair.problem, pair.reason or pair.problem
        return result
    try:
        mask_im = open_fully(pair.mask, 'mask')
        image = open_fully(pair.image, 'image')
        image, notes, reencode = normalise_image(image, mask_im.size, img_suffix)
        mask, mask_notes = normalise_mask(mask_im, image.size)
    except PairError as e:
        result.skipped, result.reason = str(e), e.reason
        return result
    img_dir, ann_dir = split_dirs(out_root, pair.split)
    img_out, ann_out = img_dir / (pair.name + img_suffix), ann_dir / (pair.name + SEG_MAP_SUFFIX)
    if reencode:
        fmt = TARGET_FORMATS[img_suffix]
        image.save(img_out, format=fmt, **(dict(quality=JPEG_QUALITY) if fmt == 'JPEG' else {}))
    else:
        shutil.copyfile(pair.image, img_out)
    Image.fromarray(mask).save(ann_out, format='PNG')
    result.notes = notes + mask_notes
    result.record = file_record(img_out, ann_out)
    return result
