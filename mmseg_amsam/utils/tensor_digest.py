"""Content digests of tensors: cache keys (embedding / box caches) and checkpoint integrity records."""
import hashlib

import torch


def tensor_digest(tensor: torch.Tensor, algorithm: str = 'sha256') -> str:
    """Hex digest of a tensor's dtype, shape and bytes (device independent). ``sha1`` is enough (and faster) for
    in-process cache keys; digests written into files use ``sha256``."""
    t = tensor.detach()
    if t.device.type != 'cpu':
        t = t.cpu()
    t = t.contiguous()
    h = hashlib.new(algorithm, f'{t.dtype}|{tuple(t.shape)}|'.encode())
    if t.numel():
        h.update(t.reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()
