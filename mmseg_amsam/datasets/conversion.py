"""Turn a raw download of (image, mask) pairs into the prepared layout; shared by every dataset converter.

The three converters in ``tools/dataset_converters`` only describe *where* their pairs are and which split
each belongs to (a :class:`RawDataset`); validation, normalisation, atomic writing and the summary live here.

Normalisation rules (anything not covered is skipped and reported, never guessed):

Images
  * must decode completely with Pillow (truncated or corrupt files are skipped);
  * RGB is kept; modes 1, L, LA, P, PA, RGBA, RGBX, CMYK and YCbCr are converted to RGB (alpha is dropped);
    other modes (16-bit, float) are skipped;
  * an EXIF orientation tag (2-8) is resolved and removed, so that no loader (cv2 honours the tag, Pillow does
    not) rotates the image away from its mask: the orientation is applied, unless only the stored pixels have
    the mask's aspect ratio (a 90 degree tag on an image annotated unrotated);
  * an image that already is an RGB file of the target format with no orientation tag is copied byte for byte,
    anything else is re-encoded (JPEG quality 95, or PNG).
Masks
  * modes 1, L, P (the palette *indices* are the values), LA (alpha ignored) and RGB/RGBA whose three channels
    are equal; colour masks with unequal channels and 16-bit/float masks are skipped;
  * values {0, 1} are kept; {0, 255} become 0/1 by ``> 127``; other masks reaching above 127 (anti-aliased or
    JPEG-compressed edges) are thresholded at ``> 127``; a mask with exactly the two values {0, v},
    1 < v <= 127, becomes ``> 0``; any other label map (several values, all <= 127) is skipped as not binary;
  * a mask whose size differs from its image is resized to the image size with nearest neighbour and reported,
    unless the aspect ratios differ by more than 5 % (then it does not belong to that frame: skipped);
  * written as a single-channel 8-bit PNG with values 0/1. Empty masks (no foreground) are kept and counted.
Files
  * files without an image suffix, hidden files and sub-folders are ignored and listed;
  * an image without a mask, a mask without an image and a name used by two images are skipped.
"""
import argparse
import dataclasses
import hashlib
import json
import os
import re
import shutil
import sys
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import ExifTags, Image, ImageOps

from .prepared_layout import (SEG_MAP_SUFFIX, MANIFEST_NAME, OutputExistsError, PathLike, atomic_output_dir,
                              check_not_nested, describe_existing_output, file_record, read_manifest, split_dirs,
                              write_manifest)

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
TARGET_FORMATS = {'.jpg': 'JPEG', '.jpeg': 'JPEG', '.png': 'PNG'}
RGB_CONVERTIBLE_MODES = frozenset({'1', 'L', 'LA', 'La', 'P', 'PA', 'RGBA', 'RGBa', 'RGBX', 'CMYK', 'YCbCr'})
ASPECT_TOLERANCE = 0.05
JPEG_QUALITY = 95
CONVERTER_VERSION = 1

Note = Tuple[str, str]  # (category shown in the summary, detail for this pair)


class RawLayoutError(FileNotFoundError):
    """The raw folder does not have the layout the converter expects."""


class ConversionError(RuntimeError):
    """The conversion cannot produce a usable dataset (e.g. no valid pair at all)."""


class PairError(ValueError):
    """One (image, mask) pair cannot be normalised safely; it is skipped and reported."""


@dataclasses.dataclass
class RawPair:
    """One candidate sample of a raw dataset; ``problem`` is set when it is known to be unusable already."""
    name: str
    split: str
    image: Optional[Path]
    mask: Optional[Path]
    problem: Optional[str] = None


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


@dataclasses.dataclass
class PairResult:
    """Outcome of converting one pair: written (``record`` = byte sizes) or skipped (``skipped`` = reason)."""
    name: str
    split: str
    notes: List[Note] = dataclasses.field(default_factory=list)
    skipped: Optional[str] = None
    record: Optional[List[int]] = None


# --------------------------------------------------------------------------------------------- raw folders
def natural_key(name: str) -> tuple:
    """Sort key that orders digit runs numerically: '2' < '10', 'img_9' < 'img_10' (zero-padded names unchanged)."""
    return tuple((0, int(tok), '') if tok.isdigit() else (1, 0, tok) for tok in re.split(r'(\d+)', name) if tok)


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
        problem = None
        if len(imgs) > 1 or len(msks) > 1:
            problem = 'ambiguous name: ' + ', '.join(p.name for p in imgs + msks)
        elif not msks:
            problem = f'no mask in {mask_dir.name}/'
        elif not imgs:
            problem = f'mask without image in {image_dir.name}/'
        pairs.append(RawPair(name, split, imgs[0] if imgs else None, msks[0] if msks else None, problem))
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


def raw_fingerprint(raw_dir: Path, raw: RawDataset, source: str) -> str:
    """Hash of the raw file list (relative paths and sizes), the settings and the converter version."""
    entries = []
    for folder in raw.folders:
        for path in sorted(folder.iterdir()):
            if path.is_file():
                entries.append((str(path.relative_to(raw_dir)), path.stat().st_size))
    payload = json.dumps(dict(source=source, version=CONVERTER_VERSION, settings=raw.settings, files=entries),
                         sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


# --------------------------------------------------------------------------------------------- one pair
def _open_fully(path: Path, what: str) -> Image.Image:
    """Open and decode ``path`` completely (Pillow decodes lazily); any decoding failure becomes a PairError."""
    try:
        with Image.open(path) as im:
            im.load()
    except Exception as e:  # noqa: BLE001 - a foreign file can fail in many ways; all mean "unreadable"
        raise PairError(f'unreadable {what} {path.name} ({type(e).__name__}: {e})') from None
    return im


def same_aspect(size_a: Tuple[int, int], size_b: Tuple[int, int], tol: float = ASPECT_TOLERANCE) -> bool:
    """Whether two (w, h) sizes have aspect ratios within ``tol`` (relative) of each other."""
    return abs((size_a[0] / size_a[1]) / (size_b[0] / size_b[1]) - 1) <= tol


def normalise_image(im: Image.Image, mask_size: Tuple[int, int],
                    img_suffix: str) -> Tuple[Image.Image, List[Note], bool]:
    """RGB, orientation-free version of ``im``; returns (image, notes, must_re_encode)."""
    notes: List[Note] = []
    source_format = im.format
    reencode = False
    orientation = im.getexif().get(ExifTags.Base.Orientation, 1)
    if orientation in range(2, 9):
        reencode = True
        displayed = ImageOps.exif_transpose(im)
        if same_aspect(mask_size, im.size) and not same_aspect(mask_size, displayed.size):
            notes.append(('image EXIF orientation tag dropped (mask follows the stored pixels)', str(orientation)))
        else:
            im = displayed
            notes.append(('image EXIF orientation applied to the pixels', str(orientation)))
    if im.mode != 'RGB':
        if im.mode not in RGB_CONVERTIBLE_MODES:
            raise PairError(f'unsupported image mode {im.mode}')
        notes.append(('image converted to RGB', im.mode))
        im = im.convert('RGB')
        reencode = True
    target = TARGET_FORMATS[img_suffix]
    if source_format != target:
        notes.append(('image re-encoded', f'{source_format} -> {target}'))
        reencode = True
    return im, notes, reencode


def mask_values(m: Image.Image) -> Tuple[np.ndarray, List[Note]]:
    """The single-channel uint8 value array of a mask image (see the module docstring for accepted modes)."""
    if m.mode == '1':
        return np.asarray(m, dtype=np.uint8), []
    if m.mode == 'L':
        return np.asarray(m), []
    if m.mode == 'P':
        return np.asarray(m), [('mask palette: indices used as values', '')]
    if m.mode == 'LA':
        return np.asarray(m.getchannel('L')), [('mask alpha channel ignored', 'LA')]
    if m.mode in ('RGB', 'RGBA'):
        rgb = np.asarray(m.convert('RGB'))
        if not ((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 0] == rgb[..., 2]).all()):
            raise PairError(f'colour mask ({m.mode} with unequal channels) cannot be binarised safely')
        return np.ascontiguousarray(rgb[..., 0]), [('mask RGB with equal channels -> single channel', m.mode)]
    raise PairError(f'unsupported mask mode {m.mode}')


def binarise(values: np.ndarray) -> Tuple[np.ndarray, List[Note]]:
    """Map a uint8 mask to 0/1 following the module rules; raise :class:`PairError` if that is not safe."""
    present = np.flatnonzero(np.bincount(values.ravel(), minlength=256))
    notes: List[Note] = []
    if present.max() <= 1:
        mask = values.astype(np.uint8, copy=True)
    elif set(present.tolist()) <= {0, 255}:
        mask = (values > 127).astype(np.uint8)
        notes.append(('mask 0/255 -> 0/1', ''))
    elif present.max() > 127:
        mask = (values > 127).astype(np.uint8)
        notes.append(('mask grey levels thresholded at >127', f'{len(present)} distinct values'))
    elif len(present) == 2 and present[0] == 0:
        mask = (values > 0).astype(np.uint8)
        notes.append(('mask 0/v -> 0/1 (>0)', f'0/{present[1]}'))
    else:
        raise PairError(f'mask values {present.tolist()[:8]} look like a multi-class label map, not a binary mask')
    if not mask.any():
        notes.append(('mask empty (no foreground), kept', ''))
    return mask, notes


def normalise_mask(m: Image.Image, image_size: Tuple[int, int]) -> Tuple[np.ndarray, List[Note]]:
    """0/1 uint8 mask of ``image_size`` (w, h) from a mask image; raise :class:`PairError` when unsafe."""
    values, notes = mask_values(m)
    mask, more = binarise(values)
    notes += more
    if m.size != image_size:
        if not same_aspect(m.size, image_size):
            raise PairError(f'mask {m.size[0]}x{m.size[1]} and image {image_size[0]}x{image_size[1]} differ in '
                            f'aspect ratio by more than {ASPECT_TOLERANCE:.0%}: the mask does not fit the image')
        mask = np.asarray(Image.fromarray(mask).resize(image_size, Image.Resampling.NEAREST))
        notes.append(('mask resized to image size (nearest)',
                      f'{m.size[0]}x{m.size[1]} -> {image_size[0]}x{image_size[1]}'))
    return mask, notes


def convert_pair(pair: RawPair, out_root: Path, img_suffix: str) -> PairResult:
    """Validate, normalise and write one pair under ``out_root``; never raises for a bad pair."""
    result = PairResult(pair.name, pair.split)
    if pair.problem:
        result.skipped = pair.problem
        return result
    try:
        mask_im = _open_fully(pair.mask, 'mask')
        image = _open_fully(pair.image, 'image')
        image, notes, reencode = normalise_image(image, mask_im.size, img_suffix)
        mask, mask_notes = normalise_mask(mask_im, image.size)
    except PairError as e:
        result.skipped = str(e)
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


def _convert_job(job: Tuple[RawPair, Path, str]) -> PairResult:
    return convert_pair(*job)


# --------------------------------------------------------------------------------------------- whole dataset
@dataclasses.dataclass
class ConversionSummary:
    """What a converter run did; :meth:`format` is what the command line prints."""
    source: str
    raw_dir: str
    out_dir: str
    noop: bool
    found: Dict[str, int]
    written: Dict[str, int]
    normalised: Dict[str, List[str]]
    skipped: List[str]
    ignored: List[str]

    @staticmethod
    def _counts(counts: Dict[str, int]) -> str:
        return f'{sum(counts.values())} (' + ', '.join(f'{k} {v}' for k, v in counts.items()) + ')'

    @staticmethod
    def _examples(items: List[str], limit: int = 5) -> str:
        shown = ', '.join(items[:limit])
        return shown + (f', ... and {len(items) - limit} more' if len(items) > limit else '')

    def format(self) -> str:
        if self.noop:
            return (f'[{self.source}] nothing to do: {self.out_dir} is already a complete prepared dataset from '
                    f'the same raw data (pairs: {self._counts(self.written)}); pass --overwrite to rebuild it')
        lines = [f'[{self.source}] {self.raw_dir} -> {self.out_dir}',
                 f'  found:   {self._counts(self.found)} candidate pairs',
                 f'  written: {self._counts(self.written)}',
                 f'  normalised: {"none" if not self.normalised else ""}']
        for category, items in self.normalised.items():
            lines.append(f'    - {category}: {len(items)} [{self._examples(items)}]')
        lines.append(f'  skipped: {len(self.skipped)}')
        lines += [f'    - {s}' for s in self.skipped]
        lines.append(f'  ignored files: {len(self.ignored)}')
        lines += [f'    - {s}' for s in self.ignored]
        lines.append(f'  report: {Path(self.out_dir) / MANIFEST_NAME}')
        return '\n'.join(lines)


def _split_order(splits) -> List[str]:
    order = ['train', 'val', 'test']
    return sorted(set(splits), key=lambda s: (order.index(s) if s in order else len(order), s))


def convert_dataset(raw: RawDataset, raw_dir: PathLike, out_dir: PathLike, *, source: str, img_suffix: str,
                    overwrite: bool = False, workers: int = 1,
                    log: Callable[[str], None] = print) -> ConversionSummary:
    """Write ``raw`` into the prepared layout at ``out_dir`` (atomically) and return the summary.

    A complete prepared dataset of the same source and raw fingerprint at ``out_dir`` makes this a no-op;
    any other non-empty ``out_dir`` raises :class:`OutputExistsError` unless ``overwrite``.
    """
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    check_not_nested(raw_dir, out_dir)
    fingerprint = raw_fingerprint(raw_dir, raw, source)
    state = describe_existing_output(out_dir, source, fingerprint)
    if state is None and not overwrite:
        manifest = read_manifest(out_dir)
        written = {s: len(v) for s, v in manifest['files'].items()}
        return ConversionSummary(source, str(raw_dir), str(out_dir), True, {}, written, {}, [], [])
    if state and not overwrite:
        raise OutputExistsError(f'{state}. Refusing to touch it; pass --overwrite to replace it, '
                                'or choose another OUT_DIR')

    splits = _split_order(p.split for p in raw.pairs)
    found = Counter(p.split for p in raw.pairs)
    with atomic_output_dir(out_dir) as tmp:
        for split in splits:
            for d in split_dirs(tmp, split):
                d.mkdir(parents=True)
        jobs = [(pair, tmp, img_suffix) for pair in raw.pairs]
        log(f'[{source}] converting {len(jobs)} candidate pairs from {raw_dir} with {workers} worker(s)')
        results: List[PairResult] = []
        if workers > 1:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                for result in pool.map(_convert_job, jobs, chunksize=8):
                    results.append(result)
                    _progress(len(results), len(jobs), log)
        else:
            for job in jobs:
                results.append(_convert_job(job))
                _progress(len(results), len(jobs), log)

        files: Dict[str, Dict[str, List[int]]] = {s: {} for s in splits}
        normalised: Dict[str, List[str]] = defaultdict(list)
        skipped: List[str] = []
        for r in results:
            if r.skipped:
                skipped.append(f'{r.split}/{r.name}: {r.skipped}')
                continue
            files[r.split][r.name] = r.record
            for category, detail in r.notes:
                normalised[category].append(f'{r.name}: {detail}' if detail else r.name)
        if not any(files.values()):
            raise ConversionError(f'no valid image/mask pair in {raw_dir}; nothing written. Skipped: '
                                  + '; '.join(skipped[:5]))
        written = {s: len(files[s]) for s in splits}
        summary = ConversionSummary(source, str(raw_dir), str(out_dir), False,
                                    {s: found[s] for s in splits}, written, dict(normalised), skipped, raw.ignored)
        write_manifest(tmp, dict(
            source=source, img_suffix=img_suffix, seg_map_suffix=SEG_MAP_SUFFIX, raw_dir=str(raw_dir.resolve()),
            raw_fingerprint=fingerprint, settings=raw.settings, converter_version=CONVERTER_VERSION,
            report=dict(found=summary.found, written=written, normalised=summary.normalised, skipped=skipped,
                        ignored=raw.ignored),
            files=files))
    return summary


def _progress(done: int, total: int, log: Callable[[str], None]) -> None:
    step = max(total // 10, 1)
    if total >= 200 and (done % step == 0 or done == total):
        log(f'  {done}/{total}')


# --------------------------------------------------------------------------------------------- command line
def converter_main(argv: Optional[Sequence[str]], *, source: str, img_suffix: str, description: str,
                   collect: Callable[[Path, argparse.Namespace], RawDataset],
                   add_arguments: Optional[Callable[[argparse.ArgumentParser], None]] = None) -> int:
    """Shared ``main`` of the converter scripts: parse ``RAW_DIR OUT_DIR [--overwrite] [--workers N]``,
    collect the raw pairs with ``collect`` and convert them; returns the process exit code."""
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('raw_dir', type=Path, help='the raw download (see the expected layout above)')
    parser.add_argument('out_dir', type=Path, help='where to write the prepared dataset (e.g. data/humanseg)')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace OUT_DIR if it exists and differs (its splits/ folder is lost too)')
    parser.add_argument('--workers', type=int, default=min(4, os.cpu_count() or 1),
                        help='processes decoding images in parallel (default: %(default)s)')
    if add_arguments:
        add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        raw = collect(args.raw_dir, args)
        summary = convert_dataset(raw, args.raw_dir, args.out_dir, source=source, img_suffix=img_suffix,
                                  overwrite=args.overwrite, workers=max(1, args.workers))
    except (RawLayoutError, OutputExistsError, ConversionError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    print(summary.format())
    return 0


def collect_tail_split(raw_dir: Path, image_folder: str, mask_folder: str, label: str,
                       num_test: int) -> RawDataset:
    """All pairs of two paired folders; the last ``num_test`` names (natural order) go to the test split."""
    image_dir, mask_dir = require_folders(raw_dir, (image_folder, mask_folder), label)
    raw = pair_folders(image_dir, mask_dir, split='train')
    assign_tail_split(raw.pairs, num_test)
    raw.settings['num_test'] = num_test
    return raw


def tail_split_converter_main(argv: Optional[Sequence[str]], *, dataset_cls, image_folder: str, mask_folder: str,
                              label: str, default_num_test: int, description: str) -> int:
    """``main`` of a converter for two paired folders whose last ``--num-test`` names (natural order) are the
    test split (HumanSeg, TikTok)."""
    return converter_main(
        argv, source=dataset_cls.SOURCE, img_suffix=dataset_cls.IMG_SUFFIX, description=description,
        collect=lambda raw_dir, args: collect_tail_split(raw_dir, image_folder, mask_folder, label, args.num_test),
        add_arguments=lambda p: p.add_argument('--num-test', type=int, default=default_num_test,
                                               help='the last N images (natural name order) form the test split'))
