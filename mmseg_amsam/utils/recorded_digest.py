"""A file we write together with its SHA-256 (``NAME.sha256`` beside it), checked before we read it again: a file
damaged or changed since (or one without a record) is recognised before anything loads it. This detects damage and
accidental changes; it is not the security boundary (whoever can plant the file can plant its record too): what
keeps a planted file from running code is that every such file is read weights-only."""
import os
import os.path as osp
import shutil
from typing import Optional

from .file_stamp import file_sha256


def digest_file(path: str) -> str:
    return path + '.sha256'


def copy_with_digest(src: str, dst: str) -> None:
    """Copy ``src`` to ``dst`` and record its SHA-256; the digest is in place before ``dst`` appears, and ``dst``
    appears whole (a temporary file renamed)."""
    digest = file_sha256(src)
    partial = dst + '.partial'
    shutil.copyfile(src, partial)
    with open(digest_file(dst) + '.partial', 'w') as f:
        f.write(digest + '\n')
    os.replace(digest_file(dst) + '.partial', digest_file(dst))
    os.replace(partial, dst)


def digest_mismatch(path: str) -> Optional[str]:
    """None when ``path`` matches the SHA-256 recorded when it was written, else why not (``path`` must exist)."""
    recorded_in = digest_file(path)
    if not osp.isfile(recorded_in):
        return f'has no recorded SHA-256 ({recorded_in})'
    with open(recorded_in) as f:
        recorded = f.read().strip()
    if recorded != file_sha256(path):
        return f'does not match the SHA-256 recorded when it was written ({recorded_in})'
    return None
