"""The frozen encoder in micro-batches (``model.backbone.max_batch``): a batch of B images is encoded ``max_batch``
at a time and concatenated.

Why: segment-anything's ViT materialises its global attention, so its peak memory grows with the batch (ViT-B at
1024 px under ``inference_mode``: 3.6 / 6.2 / 11.0 GB RSS at batch 1 / 2 / 4; batch 8 did not fit 23 GB); in
micro-batches it stays at ``max_batch``'s. And with the default ``max_batch=1`` an image's embedding is
*the same bits* whatever else is in the batch: a batched pass rounds differently (up to ~1e-6 on the demo's
encoder), so with whole-batch passes an embedding (and an embedding-cache entry, computed for the images missing
from a batch) depended on its batch companions -- results then varied with batch size, validation order or a
resume whose empty cache refilled in other batches. On a CPU one image at a time costs nothing (ViT-B 256 px: 3.19
images/s at batch 1, 2.86 at batch 8); on a GPU a larger ``max_batch`` buys throughput, at that price.

While tracing (ONNX export, FLOP counts) the encoder runs once on the whole input, so the exported graph keeps a
dynamic batch.
"""
from typing import Callable, Optional, Tuple, Union

import torch
from torch import Tensor

EncoderOutput = Union[Tensor, Tuple[Tensor, ...]]


def check_max_batch(max_batch: Optional[int], owner: str) -> Optional[int]:
    """``max_batch`` as given: a whole number >= 1, or None (the whole batch in one pass)."""
    if max_batch is not None and (isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1):
        raise ValueError(f'{owner}: model.backbone.max_batch must be a whole number >= 1 (images per encoder pass) '
                         f'or None (the whole batch at once), got {max_batch!r}; e.g. --cfg-options '
                         'model.backbone.max_batch=1')
    return max_batch


def in_micro_batches(encode: Callable[[Tensor], EncoderOutput], inputs: Tensor,
                     max_batch: Optional[int]) -> EncoderOutput:
    """``encode(inputs)`` computed ``max_batch`` images at a time (module doc); tuples are concatenated per item."""
    if max_batch is None or inputs.shape[0] <= max_batch or torch.jit.is_tracing():
        return encode(inputs)
    parts = [encode(inputs[i:i + max_batch]) for i in range(0, inputs.shape[0], max_batch)]
    if isinstance(parts[0], (tuple, list)):
        return tuple(torch.cat(items) for items in zip(*parts))
    return torch.cat(parts)
