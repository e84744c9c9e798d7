"""The prepared on-disk layout shared by every dataset of this package, and how it is written safely.

This module is longer than 250 lines because the layout, its manifest, which files of a prepared folder are ours and
the atomic writer that replaces such a folder are one set of rules: split apart, they would import each other.

A *prepared* dataset is what the converters in ``tools/dataset_converters`` and
:func:`~mmseg_amsam.datasets.demo_shapes.generate_demo_dataset` write, and what the dataset classes read::

    DATA_ROOT/
    ├── img_dir/{train,test[,val]}/NAME{img_suffix}   # RGB images, one suffix per dataset
    ├── ann_dir/{train,test[,val]}/NAME.png           # single-channel PNG: 0 = background, 1 = foreground
    ├── splits/train_{k}shot[_seed{S}].txt            # optional few-shot lists (make_fewshot_split.py)
    └── amsam_prepared.json                           # manifest, written last

The manifest records the source (``'humanseg'``, ``'isic2018'``, ...), a fingerprint of the raw input, every
written file with its size, and the conversion report. A dataset is *complete* when the manifest exists and
every file it lists is present with the recorded size. Output is written into a hidden sibling ``.NAME.partial-*``
moved into place only when complete: an interrupted run (exception, Ctrl-C, SIGTERM) never leaves a half-written
``DATA_ROOT``, and the next run removes what a killed one left (a partial folder is recognised by its name *and*
the marker file :data:`PARTIAL_MARKER` written into it first, never a user's folder; one a live writer holds
locked is left alone). Only an empty folder or a prepared dataset is replaced, and a prepared dataset only while
everything in it is ours (:func:`foreign_entries`: the manifest, the files it lists, the few-shot split files this
package wrote); a file anyone else put there makes the replacement refuse, listing it, and nothing is deleted.
"""
import contextlib
import hashlib
import json
import os
import shutil
import signal
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Union

try:
    import fcntl  # a live writer locks its partial folder, so that no other run deletes it
except ImportError:  # pragma: no cover - Windows
    fcntl = None

PathLike = Union[str, os.PathLike]

IMG_DIR = 'img_dir'
ANN_DIR = 'ann_dir'
SPLITS_DIR = 'splits'
MANIFEST_NAME = 'amsam_prepared.json'
MANIFEST_FORMAT = 1
SEG_MAP_SUFFIX = '.png'
PARTIAL_TAG, OLD_TAG = '.partial-', '.old-'  # hidden siblings of DATA_ROOT while it is written
PARTIAL_MARKER = '.amsam-partial'  # written first into every partial folder; removed just before it is moved in
SHOWN_FOREIGN = 10  # foreign entries named in a refusal


class OutputExistsError(FileExistsError):
    """Raised when the output folder exists and may not be replaced (not ours, or overwriting was not asked)."""


class Terminated(SystemExit):
    """SIGTERM arrived while a prepared dataset was being written; the partial output has been removed."""

    @classmethod
    def raise_for(cls, signum, frame) -> None:
        raise cls(128 + signum)  # the exit code a shell shows for a process ended by the signal


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
    """None when ``out_dir`` is a complete prepared dataset of ``source`` made from the same raw input (``fingerprint``;
    None skips that check): nothing to do. Otherwise a sentence saying why it differs ('' when missing or empty)."""
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


def _split_files_ours(splits: Path, manifest: dict) -> List[str]:
    """Names in ``splits/`` this package wrote: a ``.txt`` of make_fewshot_split with its ``.json`` record (the
    ``.txt`` lists exactly the record's names), or a split file the manifest records as written with the dataset
    (``split_files``: name -> SHA-256, e.g. the demo data's ``train_4shot.txt``), still holding those bytes. A
    manifest from before that record (no ``split_files`` key) falls back to the old rule for the demo data's file: a
    ``.txt`` listing exactly one whole split of the manifest."""
    ours: List[str] = []
    recorded = manifest.get('split_files')
    whole_splits = [set(names) for names in manifest.get('files', {}).values()] if recorded is None else []
    for txt in sorted(splits.glob('*.txt')) if splits.is_dir() else []:
        try:
            data = txt.read_bytes()
            lines = data.decode('utf-8').split()
            record = json.loads(txt.with_suffix('.json').read_text(encoding='utf-8')) \
                if txt.with_suffix('.json').is_file() else None
        except (OSError, ValueError):
            continue
        drawn = record.get('names_in_draw_order') if isinstance(record, dict) else None
        if len(set(lines)) != len(lines) or txt.is_symlink():
            continue
        if isinstance(drawn, list) and set(lines) == set(drawn) and len(drawn) == len(lines):
            ours += [txt.name, txt.with_suffix('.json').name]
        elif recorded is not None and recorded.get(txt.name) == hashlib.sha256(data).hexdigest():
            ours.append(txt.name)
        elif set(lines) in whole_splits:
            ours.append(txt.name)
    return ours


def split_file_records(splits: Path) -> Dict[str, str]:
    """``split_files`` for a manifest: the SHA-256 of each ``.txt`` written into ``splits/`` with the dataset."""
    return {txt.name: hashlib.sha256(txt.read_bytes()).hexdigest() for txt in sorted(splits.glob('*.txt'))} \
        if splits.is_dir() else {}


def foreign_entries(root: PathLike, manifest: dict) -> List[str]:
    """What inside the prepared dataset ``root`` this package did not write (relative paths; folders end in '/',
    their content is not listed): anything but the manifest, the image / mask files it lists (at their paths,
    whatever their size), their split folders and the split files of :func:`_split_files_ours`. Links are foreign."""
    root = Path(root)
    img_suffix, seg_suffix = manifest.get('img_suffix', ''), manifest.get('seg_map_suffix', SEG_MAP_SUFFIX)
    dirs, files = {IMG_DIR, ANN_DIR, SPLITS_DIR}, {MANIFEST_NAME}
    for split, entries in manifest.get('files', {}).items():
        dirs |= {f'{IMG_DIR}/{split}', f'{ANN_DIR}/{split}'}
        files |= {f'{IMG_DIR}/{split}/{name}{img_suffix}' for name in entries}
        files |= {f'{ANN_DIR}/{split}/{name}{seg_suffix}' for name in entries}
    files |= {f'{SPLITS_DIR}/{name}' for name in _split_files_ours(root / SPLITS_DIR, manifest)}
    foreign: List[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        rel = here.relative_to(root)
        for name in list(dirnames):
            if (rel / name).as_posix() not in dirs or (here / name).is_symlink():
                foreign.append((rel / name).as_posix() + '/')
                dirnames.remove(name)
        foreign += [(rel / name).as_posix() for name in filenames
                    if (rel / name).as_posix() not in files or (here / name).is_symlink()]
    return sorted(foreign)


def _foreign_sentence(out_dir: Path) -> Optional[str]:
    """None when everything in ``out_dir`` may be replaced; else what is not ours, as the start of a refusal."""
    manifest = read_manifest(out_dir) if out_dir.is_dir() else None
    foreign = foreign_entries(out_dir, manifest) if manifest is not None else []
    if not foreign:
        return None
    shown = ', '.join(foreign[:SHOWN_FOREIGN]) + (f', ... and {len(foreign) - SHOWN_FOREIGN} more'
                                                  if len(foreign) > SHOWN_FOREIGN else '')
    return f'{out_dir} holds {len(foreign)} file(s) or folder(s) this package did not write: {shown}'


def check_not_nested(raw_dir: PathLike, out_dir: PathLike) -> None:
    """Refuse an output folder that is, contains or lies inside the raw folder (overwriting could destroy it)."""
    raw, out = Path(raw_dir).resolve(), Path(out_dir).resolve()
    if raw == out or raw in out.parents or out in raw.parents:
        raise ValueError(f'OUT_DIR {out_dir} must not be, contain or lie inside RAW_DIR {raw_dir}')


def replaceable(root: PathLike) -> bool:
    """Whether writing ``root`` may delete what is there: nothing, an empty folder or a prepared dataset (manifest)."""
    root = Path(root)
    return not root.exists() or root.is_dir() and (read_manifest(root) is not None or not any(root.iterdir()))


def check_may_write(out_dir: PathLike, state: Optional[str], overwrite: bool, flag: str = '--overwrite') -> bool:
    """Whether to write ``out_dir`` given its ``state`` (:func:`describe_existing_output`); False: nothing to do.
    Refuses (:class:`OutputExistsError`) what is not a prepared dataset, whatever ``overwrite``."""
    if state is None and not overwrite:
        return False
    if not replaceable(out_dir):
        raise OutputExistsError(f'{state}. Refusing to touch it: only an empty folder or a dataset prepared by this '
                                'package is ever replaced; choose another (new or empty) output folder')
    foreign = _foreign_sentence(Path(out_dir))
    if foreign:
        raise OutputExistsError(f'{foreign}. Refusing to replace it (nothing was changed): replacing a prepared '
                                f'dataset deletes everything in it, so move those out of {out_dir} (or choose another '
                                'output folder) and run again')
    if state and not overwrite:
        raise OutputExistsError(f'{state}. Refusing to touch it; pass {flag} to replace it, or choose another '
                                'output folder')
    return True


def _lock_dir(path: Path) -> Optional[int]:
    """A descriptor of ``path`` holding an exclusive lock on it; None where another process holds it (or no fcntl)."""
    if fcntl is None:
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return fd
    except OSError:
        os.close(fd)


def _is_our_partial(path: Path, prefix: str) -> bool:
    """A folder named like our partial folders of this target that holds our marker file."""
    return path.name.startswith(prefix) and path.is_dir() and not path.is_symlink() and \
        (path / PARTIAL_MARKER).is_file()


def remove_stale_partials(out_dir: PathLike) -> List[Path]:
    """Delete the ``.NAME.partial-*`` folders beside ``out_dir`` that hold our marker and that no live run holds
    locked (left by a killed run)."""
    out_dir = Path(out_dir)
    prefix = f'.{out_dir.name}{PARTIAL_TAG}'
    removed = []
    for path in sorted(out_dir.parent.iterdir()) if out_dir.parent.is_dir() else []:
        fd = _lock_dir(path) if _is_our_partial(path, prefix) else None
        if fd is not None:
            shutil.rmtree(path, ignore_errors=True)
            os.close(fd)
            removed.append(path)
    return removed


@contextlib.contextmanager
def _signal_handlers(handler, signums) -> Iterator[None]:
    """``handler`` for ``signums`` inside the block (main thread only); the previous handlers are restored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, handler) for s in signums}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old if old is not None else signal.SIG_DFL)  # None: set outside Python


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT / SIGTERM arriving inside the block reach their handlers only when it ends (nothing is cut halfway)."""
    held = []
    with _signal_handlers(lambda signum, frame: held.append(signum), (signal.SIGINT, signal.SIGTERM)):
        yield
    if held:
        signal.raise_signal(held[0])


def _swap_in(tmp: Path, out_dir: Path) -> None:
    """Replace ``out_dir`` (nothing, an empty folder or a prepared dataset) by ``tmp``; signals wait until done."""
    if not replaceable(out_dir):
        raise OutputExistsError(f'{out_dir} appeared meanwhile and is not a prepared dataset; refusing to replace it')
    foreign = _foreign_sentence(out_dir)
    if foreign:
        raise OutputExistsError(f'{foreign} (added while it was being rebuilt); refusing to replace it, nothing was '
                                'changed')
    old = out_dir.with_name(f'.{out_dir.name}{OLD_TAG}{os.getpid()}-{uuid.uuid4().hex[:8]}')
    with _signals_held():
        (tmp / PARTIAL_MARKER).unlink()  # the dataset moved into place is complete: no longer a partial folder
        if out_dir.exists() or out_dir.is_symlink():
            out_dir.rename(old)
        try:
            tmp.rename(out_dir)
        except BaseException:
            if old.exists() or old.is_symlink():
                old.rename(out_dir)
            raise
        old.unlink() if old.is_symlink() else shutil.rmtree(old, ignore_errors=True)  # a link: never its target


@contextlib.contextmanager
def atomic_output_dir(out_dir: PathLike) -> Iterator[Path]:
    """Yield a fresh hidden folder beside ``out_dir`` that replaces it when the block succeeds (the caller checked
    :func:`check_may_write`); on an exception, Ctrl-C or SIGTERM (:class:`Terminated`) it is deleted instead."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(out_dir)
    with _signal_handlers(Terminated.raise_for, (signal.SIGTERM, )):
        tmp = Path(tempfile.mkdtemp(prefix=f'.{out_dir.name}{PARTIAL_TAG}', dir=out_dir.parent))
        lock = _lock_dir(tmp)
        (tmp / PARTIAL_MARKER).write_text(f'partial output of pid {os.getpid()} for {out_dir.name}\n')
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the dataset should get normal permissions
        try:
            yield tmp
            _swap_in(tmp, out_dir)
        except BaseException:
            with _signals_held():
                shutil.rmtree(tmp, ignore_errors=True)
            raise
        finally:
            if lock is not None:
                os.close(lock)
