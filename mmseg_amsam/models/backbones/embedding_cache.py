"""Cache of frozen-encoder outputs: each distinct input image is encoded once, then reused across steps, levels and
epochs (the paper's reference code re-encodes every image in both levels of every step).

Entries are keyed by the *content* of the encoder input (a SHA-1 of the preprocessed tensor's bytes) together with
the encoder's own key (class, arch, image size, checkpoint path and its modification time/size, or a digest of
random weights) and the autocast dtype when encoding under autocast (``--amp``). A different checkpoint, arch, image
size, precision or preprocessing therefore never hits a stale entry; random augmentation simply misses
(see :func:`random_transforms` to switch the cache off up front). Memory is bounded by ``max_bytes`` (LRU).

An encoder may return one tensor ``(B, ...)`` or a tuple of them (SAM 2: the image embedding and its two
high-resolution feature maps); an entry then holds the image's tuple, counted in full against ``max_bytes``.
"""
import hashlib
import os
import os.path as osp
from collections import OrderedDict
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from ...utils.tensor_digest import tensor_digest

Entry = Union[Tensor, Tuple[Tensor, ...]]  # one image's encoder output
RANDOM_TRANSFORM_PREFIXES = ('Random', 'PhotoMetricDistortion', 'BioMedical3DRandom', 'RandomResize')


def random_transforms(pipeline: Sequence[dict]) -> List[str]:
    """Names of transforms in a pipeline config that change the image at random (so the cache would only miss)."""
    names = []
    for t in pipeline or ():
        name = str(t.get('type', '')) if isinstance(t, dict) else type(t).__name__
        if name.startswith(RANDOM_TRANSFORM_PREFIXES) or name == 'PhotoMetricDistortion':
            names.append(name)
    return names


def _tensors(value: Entry) -> Tuple[Tensor, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, )


def entry_nbytes(value: Entry) -> int:
    """Bytes held by one entry: all of its tensors."""
    return sum(t.numel() * t.element_size() for t in _tensors(value))


def _own(t: Tensor) -> Tensor:
    """``t`` detached, copied out of a larger batch tensor if it is a view into one (its memory is then its own, as
    counted by :func:`entry_nbytes`)."""
    t = t.detach()
    return t.clone() if t.untyped_storage().nbytes() > t.numel() * t.element_size() else t


class EmbeddingCache:
    """Per-image cache of a frozen, deterministic ``encode(batch) -> (B, ...)`` (or tuple of such) function.

    Args:
        owner_key: what identifies the encoder (see ``SAMImageEncoder.cache_key``).
        max_bytes: memory bound of the in-memory store (least recently used entries are dropped).
        disk_dir: optional on-disk store (one ``.pt`` per entry, loaded with ``weights_only=True``) for large sets.
        device: where cached tensors live (``None`` = where they were computed).
    """

    def __init__(self, owner_key: tuple, max_bytes: int = 4 << 30, disk_dir: Optional[str] = None,
                 device: Optional[str] = None):
        self.owner = hashlib.sha1(repr(owner_key).encode()).hexdigest()[:16]
        self.max_bytes, self.disk_dir, self.device = int(max_bytes), disk_dir, device
        self._store: 'OrderedDict[str, Entry]' = OrderedDict()
        self.nbytes = 0
        self.hits = self.misses = 0
        if disk_dir:
            os.makedirs(disk_dir, exist_ok=True)

    def __len__(self) -> int:
        return len(self._store)

    def stats(self) -> Dict[str, float]:
        total = self.hits + self.misses
        return dict(entries=len(self._store), mb=self.nbytes / 2**20, hits=self.hits, misses=self.misses,
                    hit_rate=self.hits / total if total else 0.0)

    def clear(self) -> None:
        self._store.clear()
        self.nbytes = 0

    def _disk_path(self, key: str) -> str:
        return osp.join(self.disk_dir, f'{self.owner}_{key}.pt')

    def _get(self, key: str) -> Optional[Entry]:
        value = self._store.get(key)
        if value is not None:
            self._store.move_to_end(key)
            return value
        if self.disk_dir and osp.isfile(self._disk_path(key)):
            value = torch.load(self._disk_path(key), map_location='cpu', weights_only=True)
            self._put(key, value, write_disk=False)
        return value

    def _put(self, key: str, value: Entry, write_disk: bool = True) -> None:
        is_tuple = isinstance(value, (tuple, list))
        parts = tuple(_own(t) if self.device is None else _own(t).to(self.device) for t in _tensors(value))
        value = parts if is_tuple else parts[0]
        size = entry_nbytes(value)
        if size > self.max_bytes:
            return
        self._store[key] = value
        self.nbytes += size
        while self.nbytes > self.max_bytes:
            _, old = self._store.popitem(last=False)
            self.nbytes -= entry_nbytes(old)
        if write_disk and self.disk_dir:
            tmp = self._disk_path(key) + '.tmp'
            torch.save(tuple(t.cpu() for t in parts) if is_tuple else value.cpu(), tmp)
            os.replace(tmp, self._disk_path(key))  # never a half-written entry

    def __call__(self, inputs: Tensor, encode: Callable[[Tensor], Entry]) -> Entry:
        """``encode(inputs)`` (a batch tensor, or a tuple of batch tensors), computing only the images not cached."""
        device = inputs.device.type  # an entry computed under autocast differs from the fp32 one: part of the key
        mode = f'_autocast-{str(torch.get_autocast_dtype(device)).split(".")[-1]}' \
            if torch.is_autocast_enabled(device) else ''
        keys = [tensor_digest(x, 'sha1') + mode for x in inputs]
        found = [self._get(k) for k in keys]
        missing = [i for i, v in enumerate(found) if v is None]
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        if missing:
            fresh = encode(inputs[missing])
            for j, i in enumerate(missing):
                found[i] = tuple(f[j] for f in fresh) if isinstance(fresh, (tuple, list)) else fresh[j]
                self._put(keys[i], found[i])
        if isinstance(found[0], tuple):
            return tuple(torch.stack([v[n].to(inputs.device) for v in found]) for n in range(len(found[0])))
        return torch.stack([v.to(inputs.device) for v in found])
