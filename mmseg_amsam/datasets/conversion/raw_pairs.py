"""What a converter found in RAW_DIR: candidate (image, mask) pairs, matched by name, and the split of each.

Files
  * files without an image suffix, hidden files and sub-folders are ignored and listed;
  * an image without a mask, a mask without an image and a name used by two images are skipped.
"""
import dataclasses
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from ..file_names import IMAGE_SUFFIXES, natural_key
from ..prepared_layout import PathLike
from .errors import ConversionError, RawLayoutError


@dataclasses.dataclass
class RawPair:
    """One candidate sample of a raw dataset; ``problem`` is set when it is known to be unusable already
    (``reason``: its short category, counted in the summary)."""
    name: str
    split: str
    image: Optional[Path]
    mask: Optional[Path]
    problem: Optional[str] = None
    reason: Optional[str] = None


@dataclasses.dataclass
class RawDataset:
    """What a converter found in RAW_DIR: the candidate pairs, the folders read, ignored files, settings."""
    pairs: List[RawPair]
    folders: List[Path]
    ignored: List[str] = dataclasses.field(default_factory=list)
    settings: Dict[str, object] = dataclasses.field(default_factory=dict)

    @classmethod
    def combine(cls, parts: Sequence['RawDataset']) -> 'RawDataset':
        """One RawDataset holding the pairs, folders, ignored files and settings of all ``parts``."""
        combined = cls(pairs=[], folders=[])
        for part in parts:
            combined.pairs += part.pairs
            combined.folders += part.folders
            combined.ignored += part.ignored
            combined.settings.update(part.settings)
        return combined


def require_folders(raw_dir: PathLike, folders: Sequence[str], dataset: str) -> List[Path]:
    """Return ``raw_dir/f`` for each expected sub-folder, or raise :class:`RawLayoutError` naming what is missing."""
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise RawLayoutError(f'RAW_DIR {raw_dir} does not exist or is not a folder')
    missing = [f for f in folders if not (raw_dir / f).is_dir()]
    if missing:
        msg = (f'{raw_dir} does not look like a raw {dataset} download: expected the sub-folder(s) '
               f'{", ".join(missing)} (expected layout: {", ".join(f + "/" for f in folders)})')
        children = [p for p in sorted(raw_dir.iterdir()) if p.is_dir()]
        candidates = children + [q for p in children for q in sorted(p.iterdir()) if q.is_dir()]
        nested = [p for p in candidates if all((p / f).is_dir() for f in folders)]
        if nested:
            msg += f'; they exist inside {nested[0]}, pass that folder as RAW_DIR'
        raise RawLayoutError(msg)
    return [raw_dir / f for f in folders]


def scan_folder(folder: Path, strip_suffix: str = '') -> Tuple[Dict[str, List[Path]], List[str]]:
    """Image files of ``folder`` by name (suffix and ``strip_suffix`` removed), and notes on ignored entries."""
    by_name: Dict[str, List[Path]] = defaultdict(list)
    ignored: List[str] = []
    for entry in sorted(folder.iterdir()):
        where = f'{folder.name}/{entry.name}'
        if entry.name.startswith('.'):
            ignored.append(f'{where} (hidden file)')
        elif entry.is_dir():
            ignored.append(f'{where} (sub-folder)')
        elif entry.suffix.lower() not in IMAGE_SUFFIXES:
            ignored.append(f'{where} (not an image file)')
        else:
            stem = entry.stem
            if strip_suffix and stem.endswith(strip_suffix):
                stem = stem[:-len(strip_suffix)]
            by_name[stem].append(entry)
    return dict(by_name), ignored


def pair_folders(image_dir: Path, mask_dir: Path, split: str, mask_name_suffix: str = '') -> RawDataset:
    """Match images and masks by name (masks may carry ``mask_name_suffix``, e.g. '_segmentation')."""
    images, ignored = scan_folder(image_dir)
    masks, ignored_masks = scan_folder(mask_dir, mask_name_suffix)
    pairs = []
    for name in sorted(set(images) | set(masks), key=natural_key):
        imgs, msks = images.get(name, []), masks.get(name, [])
        problem, reason = None, None
        if len(imgs) > 1 or len(msks) > 1:
            problem, reason = 'ambiguous name: ' + ', '.join(p.name for p in imgs + msks), 'ambiguous name'
        elif not msks:
            problem, reason = f'no mask in {mask_dir.name}/', 'no mask'
        elif not imgs:
            problem, reason = f'mask without image in {image_dir.name}/', 'mask without image'
        pairs.append(RawPair(name, split, imgs[0] if imgs else None, msks[0] if msks else None, problem, reason))
    return RawDataset(pairs=pairs, folders=[image_dir, mask_dir], ignored=ignored + ignored_masks)


def assign_tail_split(pairs: List[RawPair], num_test: int, test_split: str = 'test') -> None:
    """Put the last ``num_test`` names that have an image (natural order) into ``test_split``.

    The position is decided on the raw names, before validation, so a skipped file never moves another
    sample from one split to the other.
    """
    with_image = sorted((p for p in pairs if p.image is not None), key=lambda p: natural_key(p.name))
    if num_test < 1 or num_test >= len(with_image):
        raise ConversionError(f'cannot hold out the last {num_test} images as test set: the raw folder has '
                              f'{len(with_image)} images (need more than {num_test})')
    for pair in with_image[-num_test:]:
        pair.split = test_split


def collect_tail_split(raw_dir: Path, image_folder: str, mask_folder: str, label: str,
                       num_test: int) -> RawDataset:
    """All pairs of two paired folders; the last ``num_test`` names (natural order) go to the test split."""
    image_dir, mask_dir = require_folders(raw_dir, (image_folder, mask_folder), label)
    raw = pair_folders(image_dir, mask_dir, split='train')
    assign_tail_split(raw.pairs, num_test)
    raw.settings['num_test'] = num_test
    return raw
