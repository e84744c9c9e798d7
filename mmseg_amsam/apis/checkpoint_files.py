"""The official pretrained weights AM-SAM uses: where to get them, and how to check a file is the right one.

``tools/download_checkpoints.py`` is the command line. Downloads go to a temporary file in the target folder,
are checked (size and SHA-256, computed while downloading) and only then renamed to their final name, so a
file under its final name is always complete; an interrupted or wrong download leaves nothing behind.

Reference values come from the files published at these URLs (SAM: facebookresearch/segment-anything README
links; YOLOv8: ultralytics/assets release v8.2.0). A ``None`` size or hash means "no reference known": the file is
accepted and its computed SHA-256 printed so it can be recorded.

Why not ``torch.hub.download_url_to_file(url, dst, hash_prefix=...)``: it checks the hash only (not the size) and
fails with a bare ``RuntimeError``; here size and SHA-256 are checked while streaming and the outcome is the same
:class:`VerifyResult` that ``--verify`` prints for files already on disk.
"""
import hashlib
import os
import os.path as osp
import tempfile
import urllib.request
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Optional

from ..utils.file_stamp import file_sha256

CHUNK = 1 << 20


@dataclass(frozen=True)
class KnownFile:
    name: str  # short name: sam_vit_b, yolov8n ...
    filename: str
    url: str
    size: Optional[int]  # bytes; None = unknown
    sha256: Optional[str]  # hex; None = unknown
    description: str = ''


KNOWN_FILES: Dict[str, KnownFile] = {
    f.name: f
    for f in (
        KnownFile('sam_vit_b', 'sam_vit_b_01ec64.pth',
                  'https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth', 375042383,
                  'ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912',
                  'SAM ViT-B (the paper\'s and the default configs\' encoder)'),
        KnownFile('sam_vit_l', 'sam_vit_l_0b3195.pth',
                  'https://dl.fbaipublicfiles.com/segment_anything/sam_vit_l_0b3195.pth', 1249524607,
                  '3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622', 'SAM ViT-L'),
        KnownFile('sam_vit_h', 'sam_vit_h_4b8939.pth',
                  'https://dl.fbaipublicfiles.com/segment_anything/sam_vit_h_4b8939.pth', 2564550879,
                  'a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e', 'SAM ViT-H'),
        KnownFile('yolov8n', 'yolov8n.pt', 'https://github.com/ultralytics/assets/releases/download/v8.2.0/yolov8n.pt',
                  6549796, 'f59b3d833e2ff32e194b5bb8e08d211dc7c5bdf144b90d2c8412c47ccfc83b36',
                  'YOLOv8n COCO detector (the default box prompter)'),
        KnownFile('yolov8s', 'yolov8s.pt', 'https://github.com/ultralytics/assets/releases/download/v8.2.0/yolov8s.pt',
                  22588772, '1f47a78bf100391c2a140b7ac73a1caae18c32779be7d310658112f7ac9aa78a',
                  'YOLOv8s COCO detector'),
        KnownFile('yolov8m', 'yolov8m.pt', 'https://github.com/ultralytics/assets/releases/download/v8.2.0/yolov8m.pt',
                  52136884, '5d4a90cdc7a21786cc59cd19778e9eafff836df9e2da32524737c7ee6efe4fe5',
                  'YOLOv8m COCO detector'),
    )
}
DEFAULT_NAMES = ('sam_vit_b', 'yolov8n')  # what configs/_base_/models/amsam_vit_b.py uses
GROUPS = {'all': tuple(KNOWN_FILES), 'sam': ('sam_vit_b', 'sam_vit_l', 'sam_vit_h'),
          'yolo': ('yolov8n', 'yolov8s', 'yolov8m')}


class ChecksumError(RuntimeError):
    """A file is not the published one (wrong size or SHA-256)."""


@dataclass
class VerifyResult:
    ok: bool
    message: str
    sha256: Optional[str] = None
    size: Optional[int] = None


def resolve(name: str) -> KnownFile:
    """A known file by short name (``sam_vit_b``) or file name (``sam_vit_b_01ec64.pth``)."""
    if name in KNOWN_FILES:
        return KNOWN_FILES[name]
    for known in KNOWN_FILES.values():
        if name == known.filename or osp.basename(name) == known.filename:
            return known
    raise KeyError(f'unknown checkpoint {name!r}; known: {", ".join(KNOWN_FILES)} '
                   f'(or groups {", ".join(GROUPS)})')


def expand(names: Iterable[str]) -> List[KnownFile]:
    """Names and groups (``all``, ``sam``, ``yolo``) to known files, in order, without repeats."""
    out: List[KnownFile] = []
    for name in names:
        for item in GROUPS.get(name, (name, )):
            known = resolve(item)
            if known not in out:
                out.append(known)
    return out


def check(known: KnownFile, size: int, sha256: Optional[str], where: str) -> VerifyResult:
    """Compare a file's size / digest with the reference values of ``known``."""
    if known.size is not None and size != known.size:
        kind = 'truncated' if size < known.size else 'too large'
        return VerifyResult(False, f'{where}: {kind}: {size} bytes, expected {known.size} bytes for '
                                   f'{known.filename}. Download it again ({known.url}).', sha256, size)
    if sha256 is not None and known.sha256 is not None and sha256 != known.sha256:
        return VerifyResult(False, f'{where}: altered or wrong file: sha256 {sha256}, expected {known.sha256} for '
                                   f'{known.filename}. Download it again ({known.url}).', sha256, size)
    if known.sha256 is None:
        return VerifyResult(True, f'{where}: {known.filename}, {size} bytes: no reference hash; computed {sha256}',
                            sha256, size)
    return VerifyResult(True, f'{where}: OK ({known.filename}, {size} bytes, sha256 {sha256})', sha256, size)


def verify_file(path: str, name: Optional[str] = None, progress: bool = False) -> VerifyResult:
    """Check a file on disk against the reference of ``name`` (default: recognised by its file name)."""
    try:
        known = resolve(name or osp.basename(path))
    except KeyError as exc:
        return VerifyResult(False, f'{path}: {exc.args[0]}; pass the name with --name')
    if not osp.isfile(path):
        return VerifyResult(False, f'{path}: no such file. Download it with: python tools/download_checkpoints.py '
                                   f'{known.name} --dir {osp.dirname(path) or "."}')
    size = osp.getsize(path)
    if known.size is not None and size != known.size:
        return check(known, size, None, path)  # no need to hash a file of the wrong size
    bar = _bar(size, f'sha256 {osp.basename(path)}') if progress else None
    try:
        digest = file_sha256(path, bar.update if bar else None, CHUNK)
    finally:
        if bar:
            bar.close()
    return check(known, size, digest, path)


def _bar(total: Optional[int], desc: str):
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit='B', unit_scale=True, unit_divisor=1024, leave=False)


def download(known: KnownFile, directory: str, force: bool = False, progress: bool = True,
             opener: Callable = urllib.request.urlopen, timeout: float = 60.0) -> VerifyResult:
    """Download ``known`` into ``directory`` (skipped when a verified copy is already there).

    The data goes to a temporary file in ``directory``; only a download of the right size and SHA-256 is renamed
    to ``known.filename``. Raises :class:`ChecksumError` for a wrong download (nothing is left behind) and lets
    network errors through (idem).
    """
    os.makedirs(directory, exist_ok=True)
    target = osp.join(directory, known.filename)
    if osp.isfile(target) and not force:
        existing = verify_file(target, known.name, progress=progress)
        if existing.ok:
            return VerifyResult(True, f'{target}: already present and verified', existing.sha256, existing.size)
    fd, tmp = tempfile.mkstemp(prefix=f'.{known.filename}.', suffix='.part', dir=directory)
    h, size = hashlib.sha256(), 0
    try:
        with os.fdopen(fd, 'wb') as out, opener(known.url, timeout=timeout) as response:
            total = known.size or _content_length(response)
            bar = _bar(total, known.filename) if progress else None
            try:
                for chunk in iter(lambda: response.read(CHUNK), b''):
                    out.write(chunk)
                    h.update(chunk)
                    size += len(chunk)
                    if bar:
                        bar.update(len(chunk))
            finally:
                if bar:
                    bar.close()
            out.flush()
            os.fsync(out.fileno())
        result = check(known, size, h.hexdigest(), f'download of {known.url}')
        if not result.ok:
            raise ChecksumError(result.message)
        os.replace(tmp, target)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
    return VerifyResult(True, f'{target}: downloaded, ' + result.message.split(': ', 1)[1], result.sha256, size)


def _content_length(response) -> Optional[int]:
    try:
        value = response.headers.get('Content-Length')
        return int(value) if value else None
    except (AttributeError, ValueError):
        return None
