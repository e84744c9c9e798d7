"""A fixed, seeded pool of shapes-world scenes held in memory (images, object label maps, object classes)."""
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

import numpy as np

from .shapes_world import PRETRAIN_FAMILIES, PRETRAIN_STYLE, make_scene


@dataclass
class ScenePool:
    """``images`` (N, H, W, 3) uint8 RGB; ``labels`` (N, H, W) uint8: 0 = background, ``j`` = object ``j`` of the
    scene (visible part); ``classes[n][j - 1]`` = family index of object ``j`` of scene ``n``."""
    images: np.ndarray
    labels: np.ndarray
    classes: List[List[int]]

    def __len__(self) -> int:
        return len(self.images)

    def objects(self) -> List[Tuple[int, int]]:
        """Every ``(scene index, object label)`` of the pool."""
        return [(n, j + 1) for n, cls in enumerate(self.classes) for j in range(len(cls))]


def make_scene_pool(count: int, seed: int, split: int, size: int = 128, families=PRETRAIN_FAMILIES,
                    num_objects=(1, 3), style: dict = PRETRAIN_STYLE,
                    progress: Optional[Callable[[int], None]] = None) -> ScenePool:
    """``count`` scenes; scene ``i`` depends only on ``(seed, split, i)`` (``split`` keeps train / eval apart)."""
    images = np.zeros((count, size, size, 3), np.uint8)
    labels = np.zeros((count, size, size), np.uint8)
    classes = []
    for i in range(count):
        image, objects = make_scene(np.random.default_rng([seed, split, i]), size, families, num_objects,
                                    style=style)
        images[i] = image
        for j, (_, mask) in enumerate(objects):
            labels[i][mask] = j + 1
        classes.append([c for c, _ in objects])
        if progress:
            progress(i + 1)
    return ScenePool(images, labels, classes)
