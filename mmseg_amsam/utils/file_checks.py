"""Is every image / mask file of a split readable? Decoded in full, before anything trains on it.

mmseg's pipeline reads images with ``mmcv.imfrombytes`` (cv2 backend) and masks with it too (pillow backend);
ultralytics (detector adaptation) reads images with PIL and skips the ones it cannot read ("ignoring corrupt
image"). cv2 decodes a truncated JPEG without an error (grey where the data ends), PIL refuses it: a file counts as
readable only when both decode it fully. Results are kept per file stamp (path, mtime, size) for the process, so the
adaptation's check and the run's check (``DataCheckHook``) decode a file once. In ``utils`` so that both the
detector adaptation (``models``) and the hook (``engine``) use it.
"""
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, Iterable, List, Optional, Tuple

from .file_stamp import file_stamp

_checked: Dict[tuple, Optional[str]] = {}  # file stamp -> reason it is unreadable, None when readable


class UnreadableFilesError(ValueError):
    """Image or mask files of a split cannot be read; the message lists every one and why."""


def unreadable_reason(path: str) -> Optional[str]:
    """Why ``path`` cannot be used as an image / mask (missing, empty, not decodable in full), or None."""
    if not os.path.isfile(path):
        return 'not found'
    stamp = file_stamp(path)
    if stamp in _checked:
        return _checked[stamp]
    reason = _decode_problem(path)
    _checked[stamp] = reason
    return reason


def _pil_open():
    """PIL's own ``Image.open``. Importing ultralytics replaces it process-wide by a wrapper that, on a file PIL
    cannot identify, tries to install and register a HEIF plugin (``check_requirements('pi-heif')``) and then fails
    with ``No module named 'pi_heif'``: a check must neither install anything nor give a reason that depends on
    whether ultralytics was imported."""
    from PIL import Image
    patches = sys.modules.get('ultralytics.utils.patches')
    return getattr(patches, '_image_open', Image.open)


def _decode_problem(path: str) -> Optional[str]:
    import mmcv
    with open(path, 'rb') as f:
        data = f.read()
    if not data:
        return 'the file is empty'
    try:
        with _pil_open()(path) as im:
            im.load()  # decodes every byte: a truncated file raises here
    except Exception as exc:  # PIL's errors name the path; keep the reason only
        text = str(exc).replace(repr(path), '').replace(path, '').strip()
        return f'PIL cannot decode it ({type(exc).__name__}: {text or "unknown format"})'
    try:
        array = mmcv.imfrombytes(data, flag='unchanged', backend='cv2')
    except Exception as exc:
        return f'mmcv (cv2) cannot decode it ({type(exc).__name__}: {exc})'
    if array is None or array.size == 0:
        return 'mmcv (cv2), which the data pipeline uses, cannot decode it'
    return None


def unreadable_files(paths: Iterable[str], workers: int = 4) -> List[Tuple[str, str]]:
    """``(path, reason)`` of each file of ``paths`` that is missing or cannot be decoded in full, in input order
    (each path once). Decoding runs on a few threads (PIL and cv2 release the GIL while decoding)."""
    unique = list(dict.fromkeys(str(p) for p in paths))
    with ThreadPoolExecutor(max_workers=max(1, min(workers, os.cpu_count() or 1, len(unique) or 1))) as pool:
        reasons = list(pool.map(unreadable_reason, unique))
    return [(p, r) for p, r in zip(unique, reasons) if r is not None]


def check_readable(paths: Iterable[str], what: str) -> None:
    """Raise one :class:`UnreadableFilesError` naming every unreadable file of ``paths`` (``what``: whose files,
    e.g. ``'train_dataloader dataset'``)."""
    paths = list(dict.fromkeys(str(p) for p in paths))
    bad = unreadable_files(paths)
    if bad:
        lines = '\n'.join(f'  {p}: {r}' for p, r in bad)
        raise UnreadableFilesError(
            f'{len(bad)} of the {len(paths)} image / mask files of the {what} cannot be read (checked before '
            f'anything runs; nothing was trained or written):\n{lines}\nReplace them with intact copies (convert '
            'the raw data again, tools/dataset_converters/), or remove their names from the split file.')
