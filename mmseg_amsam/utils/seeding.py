"""A seeded block that leaves the process' random streams as it found them."""
import random
from contextlib import contextmanager
from typing import Optional

import numpy as np
import torch


@contextmanager
def seeded(seed: Optional[int]):
    """Seed python / numpy / torch (CPU) like mmengine's ``set_random_seed`` for the block, then restore the
    previous generator states, so building a reference model leaves training's random streams untouched."""
    py_state, np_state, torch_state = random.getstate(), np.random.get_state(), torch.get_rng_state()
    try:
        if seed is not None:
            random.seed(seed)
            np.random.seed(seed % 2**32)
            torch.default_generator.manual_seed(int(seed))
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        torch.set_rng_state(torch_state)
