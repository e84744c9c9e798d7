"""The prepared on-disk layout shared by every dataset of this package, and how it is written safely.

A *prepared* dataset is what the converters in ``tools/dataset_converters`` and
:func:`~mmseg_amsam.datasets.demo_shapes.generate_demo_dataset` write, and what the dataset classes read::

    DATA_ROOT/
    ├── img_dir/{train,test[,val]}/NAME{img_suffix}   # RGB images, one suffix per dataset
    ├── ann_dir/{train,test[,val]}/NAME.png           # single-channel PNG: 0 = background, 1 = foreground
    ├── splits/train_{k}shot[_seed{S}].txt            # optional few-shot lists (make_fewshot_split.py)
    └── amsam_prepared.json                           # manifest, written last

The manifest records the source (``'humanseg'``, ``'isic2018'``, ...), a fingerprint of the raw input, every
written file with its size, and the conversion report. A dataset is *complete* when the manifest exists and
every file it lists is present with the recorded size. Output is written into a temporary sibling folder and
moved into place only when complete, so an interrupted run never leaves a half-written ``DATA_ROOT``.
"""
import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Union

PathLike = Union[str, os.PathLike]

IMG_DIR = 'img_dir'
ANN_DIR = 'ann_dir'
SPLITS_DIR = 'splits'
MANIFEST_NAME = 'amsam_prepared.json'
MANIFEST_FORMAT = 1
SEG_MAP_SUFFIX = '.png'


class OutputExistsError(FileExistsError):
    """Raised when the output folder exists, differs from what would be written, and overwriting was not asked."""


def split_dirs(root: PathLike, split: str) -> tuple:
    """``(img_dir/<split>, ann_dir/<split>)`` under ``root``."""
    root = Path(root)
    return root / IMG_DIR / split, root / ANN_DIR / split


def read_manifest(root: PathLike) -> Optional[dict]:
    """The manifest of a prepared dataset, or None when ``root`` has none (or it is unreadable)."""
    path = Path(root) / MANIFEST_NAME
    try:
        with open(path, encoding='utf-8') as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def write_manifest(root: PathLike, manifest: dict) -> None:
    """Write ``manifest`` (adds the format version) to ``root``."""
    manifest = dict(manifest, format=MANIFEST_FORMAT)
    with open(Path(root) / MANIFEST_NAME, 'w', encoding='utf-8') as f:
        json.dump(manifest, f, indent=1, sort_keys=False)
        f.write('\n')


def file_record(img_path: Path, ann_path: Path) -> List[int]:
    """What the manifest stores for one written pair: the byte sizes of image and mask."""
    return [img_path.stat().st_size, ann_path.stat().st_size]


def manifest_problems(root: PathLike, manifest: dict, max_report: int = 5) -> List[str]:
    """Files listed in ``manifest`` that are missing or whose size changed (empty list: complete)."""
    root = Path(root)
    img_suffix = manifest.get('img_suffix', '')
    seg_suffix = manifest.get('seg_map_suffix', SEG_MAP_SUFFIX)
    problems: List[str] = []
    files: Dict[str, Dict[str, list]] = manifest.get('files', {})
    for split, entries in files.items():
        img_dir, ann_dir = split_dirs(root, split)
        for name, (img_size, ann_size) in entries.items():
            for path, size in ((img_dir / (name + img_suffix), img_size), (ann_dir / (name + seg_suffix), ann_size)):
                try:
                    actual = path.stat().st_size
                except OSError:
                    problems.append(f'missing {path.relative_to(root)}')
                    continue
                if actual != size:
                    problems.append(f'{path.relative_to(root)} has {actual} bytes, manifest says {size}')
            if len(problems) >= max_report:
                return problems
    return problems


def describe_existing_output(out_dir: PathLike, source: str, fingerprint: Optional[str]) -> Optional[str]:
    """Compare an existing output folder with what would be written.

    Returns:
        None when ``out_dir`` is a complete prepared dataset of ``source`` made from the same raw input
        (``fingerprint``; None skips that check) - i.e. there is nothing to do; otherwise a sentence saying why it
        differs ('' when the folder does not exist or is empty, so it may simply be written).
    """
    out_dir = Path(out_dir)
    if not out_dir.exists():
        return ''
    if not out_dir.is_dir():
        return f'{out_dir} exists and is not a folder'
    if not any(out_dir.iterdir()):
        return ''
    manifest = read_manifest(out_dir)
    if manifest is None:
        return f'{out_dir} is not empty and holds no {MANIFEST_NAME} (not a dataset prepared by this package)'
    if manifest.get('source') != source:
        return f"{out_dir} holds a prepared '{manifest.get('source')}' dataset, not '{source}'"
    if fingerprint is not None and manifest.get('raw_fingerprint') != fingerprint:
        return (f'{out_dir} was prepared from different raw data (raw_dir {manifest.get("raw_dir")!r}, '
                f'different file list/sizes) or with different settings')
    problems = manifest_problems(out_dir, manifest)
    if problems:
        return f'{out_dir} is an incomplete or modified prepared dataset: ' + '; '.join(problems)
    return None


def check_not_nested(raw_dir: PathLike, out_dir: PathLike) -> None:
    """Refuse an output folder that is, contains or lies inside the raw folder (overwriting could destroy it)."""
    raw, out = Path(raw_dir).resolve(), Path(out_dir).resolve()
    if raw == out or raw in out.parents or out in raw.parents:
        raise ValueError(f'OUT_DIR {out_dir} must not be, contain or lie inside RAW_DIR {raw_dir}')


@contextlib.contextmanager
def atomic_output_dir(out_dir: PathLike) -> Iterator[Path]:
    """Yield a fresh temporary folder next to ``out_dir``; when the block succeeds, it replaces ``out_dir``.

    On any exception the temporary folder is deleted and ``out_dir`` is left untouched. The caller decides
    beforehand whether replacing an existing ``out_dir`` is allowed.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f'.{out_dir.name}.partial-', dir=out_dir.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the dataset should get normal permissions
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if out_dir.exists():
        old = out_dir.with_name(f'.{out_dir.name}.old-{os.getpid()}')
        out_dir.rename(old)
    tmp.rename(out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
