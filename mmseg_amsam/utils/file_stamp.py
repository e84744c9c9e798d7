"""Identity of a file for cache keys: a changed file (new mtime or size) never matches a stale entry."""
import os
import os.path as osp
from typing import Optional


def file_stamp(path: Optional[str]) -> tuple:
    """``(absolute path, mtime_ns, size)`` of an existing file, else ``(path,)``."""
    if path and osp.isfile(path):
        st = os.stat(path)
        return (osp.abspath(path), st.st_mtime_ns, st.st_size)
    return (path, )
