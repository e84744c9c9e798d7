"""Distributed bi-level training: a DDP wrapper whose ``train_step`` runs the bi-level step on the wrapped model.

``MMDistributedDataParallel.train_step`` would call the wrapped model's ``forward`` through DDP and a single
optimizer wrapper, bypassing the bi-level step; and DDP only all-reduces gradients that ``backward()``
accumulates into ``.grad`` -- not those taken with ``torch.autograd.grad``. Here the bi-level step
(:func:`~.step.bilevel_train_step`) runs unchanged on the wrapped model and every gradient it applies (both levels,
and each piece of the unrolled hypergradient) is averaged over processes explicitly (``step.all_reduce_mean``).
DDP's part is what remains useful: broadcasting rank 0's parameters at construction so every process starts
identical. (The bi-level loops call the step on the unwrapped model directly; ``train_step`` here serves callers
that step the wrapper themselves.)
"""
from mmengine.model import MMDistributedDataParallel
from mmseg.registry import MODEL_WRAPPERS

from .step import bilevel_train_step, is_bilevel_batch


@MODEL_WRAPPERS.register_module()
class BiLevelDistributedDataParallel(MMDistributedDataParallel):

    def __init__(self, module, device_ids=None, **kwargs):
        if next(module.parameters()).device.type == 'cpu':
            device_ids = None  # CPU / gloo: DDP refuses device ids
        kwargs.setdefault('broadcast_buffers', False)
        super().__init__(module=module, device_ids=device_ids, **kwargs)

    def train_step(self, data, optim_wrapper):
        if is_bilevel_batch(data, optim_wrapper):
            return bilevel_train_step(self.module, data, optim_wrapper)
        return self.module.train_step(data, optim_wrapper)
