"""Few-shot training subsets, written as mmseg ``ann_file`` split files.

``make_fewshot_splits('data/humanseg', [4, 8, 16])`` writes ``data/humanseg/splits/train_{k}shot.txt``: one
image name per line (no suffix), exactly what :class:`mmseg.datasets.BaseSegDataset` reads as ``ann_file``.

Selection:
  * default (``seed=None``): the first ``k`` names of the pool in natural (numeric-aware) sorted order, the
    deterministic counterpart of BLO-SAM's ``os.listdir(...)[:k]`` (for zero-padded names this is plain
    sorting; for HumanSeg's numeric names it gives 1, 2, 3, 4);
  * with ``seed``: one ``random.Random(seed)`` permutation of the sorted pool; the k-shot set is its first
    ``k`` names, so the sets of one seed are nested (4-shot within 8-shot within 16-shot). The file is named
    ``train_{k}shot_seed{seed}.txt``.

Next to every ``.txt`` a ``.json`` records how it was made (pool size, seed, method, names in draw order).
The ``.txt`` stays a plain list because mmseg reads every line as a name.
"""
import json
import random
from pathlib import Path
from typing import Iterable, List, Optional

from .file_names import IMAGE_SUFFIXES, natural_key
from .prepared_layout import SEG_MAP_SUFFIX, SPLITS_DIR, PathLike, read_manifest, split_dirs


def split_file_name(shots: int, seed: Optional[int] = None, split: str = 'train') -> str:
    """``train_4shot.txt`` / ``train_4shot_seed1.txt``."""
    return f'{split}_{shots}shot' + (f'_seed{seed}' if seed is not None else '') + '.txt'


def list_pool(data_root: PathLike, split: str = 'train') -> List[str]:
    """Names (no suffix) in ``img_dir/<split>`` that have a mask in ``ann_dir/<split>``, naturally sorted."""
    img_dir, ann_dir = split_dirs(data_root, split)
    if not img_dir.is_dir() or not ann_dir.is_dir():
        raise FileNotFoundError(f'{data_root} is not a prepared dataset: {img_dir} or {ann_dir} is missing '
                                '(run the dataset converter in tools/dataset_converters first)')
    manifest = read_manifest(data_root) or {}
    suffixes = (manifest['img_suffix'],) if manifest.get('img_suffix') else IMAGE_SUFFIXES
    names = {p.stem for p in img_dir.iterdir()
             if p.suffix.lower() in suffixes and (ann_dir / (p.stem + SEG_MAP_SUFFIX)).is_file()}
    return sorted(names, key=natural_key)


def select_fewshot(pool: List[str], shots: int, seed: Optional[int] = None) -> List[str]:
    """The ``shots`` names chosen from ``pool`` (see module docstring), in draw order."""
    if shots < 1:
        raise ValueError(f'shots must be >= 1, got {shots}')
    if shots > len(pool):
        raise ValueError(f'a {shots}-shot split needs {shots} images but the pool has only {len(pool)}')
    ordered = sorted(pool, key=natural_key)
    if seed is None:
        return ordered[:shots]
    return random.Random(seed).sample(ordered, len(ordered))[:shots]


def make_fewshot_splits(data_root: PathLike, shots: Iterable[int], seed: Optional[int] = None,
                        split: str = 'train', overwrite: bool = False) -> List[Path]:
    """Write one split file (+ json record) per value of ``shots`` under ``data_root/splits``.

    All values are validated before anything is written. Re-running with the same arguments rewrites nothing;
    an existing file with different content raises :class:`FileExistsError` unless ``overwrite``.

    Returns:
        The paths of the ``.txt`` split files, in the order of ``shots``.
    """
    data_root = Path(data_root)
    shots = list(shots)
    pool = list_pool(data_root, split)
    bad = [k for k in shots if not 1 <= k <= len(pool)]
    if bad:
        raise ValueError(f'cannot make a {bad[0]}-shot split: {data_root}/img_dir/{split} holds {len(pool)} usable '
                         f'images with masks (shots must be between 1 and {len(pool)}); nothing written')
    out_dir = data_root / SPLITS_DIR
    planned = []
    for k in shots:
        chosen = select_fewshot(pool, k, seed)
        txt = out_dir / split_file_name(k, seed, split)
        text = ''.join(name + '\n' for name in sorted(chosen, key=natural_key))
        if txt.exists() and txt.read_text() != text and not overwrite:
            raise FileExistsError(f'{txt} exists with a different selection (the pool changed or it was edited); '
                                  'pass --overwrite to replace it')
        record = dict(split=split, shots=k, seed=seed, pool_size=len(pool),
                      method='first k names in natural sort order' if seed is None else
                      'first k of random.Random(seed).sample(naturally sorted pool, len(pool))',
                      names_in_draw_order=chosen)
        planned.append((txt, text, record))
    out_dir.mkdir(parents=True, exist_ok=True)
    for txt, text, record in planned:
        if not txt.exists() or txt.read_text() != text:
            txt.write_text(text)
        txt.with_suffix('.json').write_text(json.dumps(record, indent=1) + '\n')
    return [txt for txt, _, _ in planned]
