"""A dataloader that yields ``{'lower': D1 batch, 'upper': D2 batch}`` pairs for bi-level training."""
from typing import Iterator

from torch.utils.data import DataLoader


class _BothSamplers:
    """Forwards ``set_epoch`` (DistSamplerSeedHook, epoch restarts) to the samplers of D1 and D2."""

    def __init__(self, *loaders: DataLoader):
        self.loaders = loaders

    def set_epoch(self, epoch: int) -> None:
        for loader in self.loaders:
            sampler = getattr(loader, 'sampler', None)
            if hasattr(sampler, 'set_epoch'):
                sampler.set_epoch(epoch)


class BiLevelDataLoader:
    """One epoch = one pass over D1; D2 is cycled alongside (it may be shorter or longer than D1) and restarts with
    every epoch, so the pairs of an epoch depend only on the samplers' epoch (exact resume).

    Looks like a DataLoader to mmengine (``dataset`` = D1's, ``sampler.set_epoch``, ``len``), so the stock loops and
    hooks work unchanged.
    """

    def __init__(self, lower: DataLoader, upper: DataLoader):
        self.lower, self.upper = lower, upper
        self.dataset = lower.dataset
        self.batch_size = lower.batch_size
        self.sampler = _BothSamplers(lower, upper)
        self._upper_iter = None

    def __len__(self) -> int:
        return len(self.lower)

    def _next_upper(self):
        if self._upper_iter is None:
            self._upper_iter = iter(self.upper)
        try:
            return next(self._upper_iter)
        except StopIteration:  # D2 shorter than D1: go round it again within this epoch
            self._upper_iter = iter(self.upper)
            return next(self._upper_iter)

    def __iter__(self) -> Iterator[dict]:
        self._upper_iter = None
        for lower_batch in self.lower:
            yield dict(lower=lower_batch, upper=self._next_upper())

    def infinite(self) -> Iterator[dict]:
        """Endless pairs for iteration-based loops (no 2 s pause per restart, unlike mmengine's wrapper)."""
        epoch = 0
        while True:
            yield from self
            epoch += 1
            self.sampler.set_epoch(epoch)
