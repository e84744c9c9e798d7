"""The D1/D2 halves of the few-shot training set (BLO-SAM): D1 trains the lower level, D2 the upper level."""
from typing import List, Tuple

import torch


def split_halves(num_items: int, seed: int = 0) -> Tuple[List[int], List[int]]:
    """Seeded random split of ``range(num_items)`` into disjoint halves covering it; D1 gets the odd one out.

    The same ``(num_items, seed)`` always gives the same split (a private ``torch.Generator``, not global state).
    """
    if num_items < 2:
        raise ValueError(f'Bi-level training splits the training set into halves D1/D2 and needs at least 2 '
                         f'images; the training set has {num_items}. Add images or use a single-level schedule.')
    gen = torch.Generator().manual_seed(int(seed))
    perm = torch.randperm(num_items, generator=gen).tolist()
    half = (num_items + 1) // 2
    return sorted(perm[:half]), sorted(perm[half:])
