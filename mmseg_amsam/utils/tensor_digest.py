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


def module_digest(module: torch.nn.Module) -> str:
    """SHA-1 over a module's parameters and buffers (names, dtypes, shapes, bytes): the identity of weights that come
    from no file (random initialisation), for cache keys."""
    h = hashlib.sha1()
    for name, t in list(module.named_parameters()) + list(module.named_buffers()):
        h.update(f'{name}:{tensor_digest(t, "sha1")}|'.encode())
    return h.hexdigest()
