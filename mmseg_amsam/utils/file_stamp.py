"""Identity of a file: its stamp for cache keys (a changed file, new mtime or size, never matches a stale entry) and
its SHA-256."""
import hashlib
import os
import os.path as osp
from typing import Callable, Optional


def file_stamp(path: Optional[str]) -> tuple:
    """``(absolute path, mtime_ns, size)`` of an existing file, else ``(path,)``."""
    if path and osp.isfile(path):
        st = os.stat(path)
        return (osp.abspath(path), st.st_mtime_ns, st.st_size)
    return (path, )


def file_sha256(path: str, progress: Optional[Callable[[int], None]] = None, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks; ``progress(n_bytes)`` after each chunk."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            h.update(block)
            if progress:
                progress(len(block))
    return h.hexdigest()
