"""The k-shot protocol of ``tools/run_cells.py``: configs x shots x seeds -> cells, each a seeded k-shot split, a
train command and a test command, done when its test result exists.

A cell ``NAME_Kshot`` with seed ``s`` trains ``configs/NAME_Kshot.py`` (or ``configs/NAME.py`` when there is no
per-k file) on ``splits/train_{K}shot_seed{s}.txt`` (``make_fewshot_splits``: one seeded permutation of the
training pool per seed; the k-shot sets of a seed are nested), with ``randomness.seed`` and the bi-level D1/D2
``split_seed`` set to ``s``, in ``OUT/NAME_Kshot/seed{s}``; then tests its best checkpoint (bi-level: best on the
selection set) or its last one (single level), or the untrained model (no training loop), in ``.../test``.

Model selection (``select_on``): ``'d2'`` is the paper's protocol (the best D2 Dice; D2 also trains the prompt, so
the choice is optimistic); ``'val'`` selects on a held-out validation subset of ``val_size`` labelled images of the
training pool, disjoint from every k-shot set of that seed: the *last* ``val_size`` names of the seed's permutation
(written as ``splits/val_{val_size}_seed{s}.txt``). The test split is never used for selection either way.
"""
import glob
import os.path as osp
import shlex
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from mmengine.config import Config

from ..datasets.fewshot import list_pool, make_fewshot_splits, select_fewshot, split_file_name
from .run_logs import find_test_runs

# The paper's tables as (config name without the shots, shots or None = untrained): one command per table.
PAPER_TABLES: Dict[str, List[tuple]] = {
    '1': [(f'{m}_tiktok', (4, 8)) for m in ('deeplabv3', 'swinunet', 'samed', 'blosam', 'amsam')] +
         [('sam-yolo_tiktok', None)],
    '2': [(f'{m}_humanseg', (4, 8, 16)) for m in ('blosam', 'amsam')],
    '3': [(f'{m}_isic', (4, 8, 16)) for m in ('blosam', 'amsam')],
    '4': [(f'{m}_{d}', (4, 8)) for m in ('blosam', 'amsam-calib', 'amsam-yolo', 'amsam') for d in ('isic', 'tiktok')],
}
SELECT_ON = ('d2', 'val')


@dataclass
class Cell:
    name: str  # NAME_Kshot (or NAME for an untrained model): the experiment, as summarize.py parses it
    config: str
    shots: Optional[int]
    seed: int
    work_dir: str
    overrides: List[str] = field(default_factory=list)  # of the training run
    test_overrides: List[str] = field(default_factory=list)
    trains: bool = True
    bilevel: bool = True

    @property
    def test_dir(self) -> str:
        return osp.join(self.work_dir, 'test')

    def done(self) -> bool:
        return bool(find_test_runs(self.test_dir))


def resolve_config(config_dir: str, name: str, shots: Optional[int]) -> str:
    """``configs/NAME_Kshot.py`` when it exists, else ``configs/NAME.py``, else another ``configs/NAME_*shot.py``
    (the shipped per-k configs differ only in their split file, which the cell's override replaces)."""
    candidates = ([osp.join(config_dir, f'{name}_{shots}shot.py')] if shots else []) + [osp.join(config_dir,
                                                                                                   f'{name}.py')]
    for path in candidates:
        if osp.isfile(path):
            return path
    others = sorted(glob.glob(osp.join(config_dir, f'{glob.escape(name)}_*shot.py')))
    if shots and others:
        return others[0]
    raise FileNotFoundError(f'no config for {name!r} at {shots} shots: looked for {", ".join(candidates)}')


def plan_cells(names: Sequence[str], shots: Sequence[int], seeds: Sequence[int], out: str, config_dir: str,
               select_on: str = 'd2', val_size: int = 8, extra: Sequence[str] = (),
               untrained: Sequence[str] = ()) -> List[Cell]:
    """The cells of ``names`` x ``shots`` x ``seeds`` (a name in ``untrained`` once, seed ``seeds[0]``)."""
    if select_on not in SELECT_ON:
        raise ValueError(f'select_on must be one of {SELECT_ON}, got {select_on!r}')
    cells = []
    for name in names:
        for k in ([None] if name in untrained else shots):
            config = resolve_config(config_dir, name, k)
            cfg = Config.fromfile(config)
            train_cfg = cfg.get('train_cfg') or {}
            trains = k is not None and bool(train_cfg)
            bilevel = str(train_cfg.get('type', '')).startswith('BiLevel')
            cell_name = f'{name}_{k}shot' if k else name
            for seed in (seeds if trains else seeds[:1]):
                overrides = [f'randomness.seed={seed}']
                adapt = []  # the detector adapts on the same k shots, in training and in the test run
                if trains and (cfg.model.get('prompter') or {}).get('adapt'):
                    adapt = [f'model.prompter.adapt.ann_file=splits/{split_file_name(k, seed)}']
                if trains:
                    overrides += [f'train_dataloader.dataset.ann_file=splits/{split_file_name(k, seed)}'] + adapt
                    if bilevel:
                        overrides.append(f'train_cfg.split_seed={seed}')
                        if select_on == 'val':
                            overrides += ['train_cfg.val_on=val',
                                          f'val_dataloader.dataset.ann_file=splits/val_{val_size}_seed{seed}.txt',
                                          "val_dataloader.dataset.data_prefix.img_path=img_dir/train",
                                          "val_dataloader.dataset.data_prefix.seg_map_path=ann_dir/train"]
                cells.append(Cell(cell_name, config, k if trains else None, seed,
                                  osp.join(out, cell_name, f'seed{seed}'), overrides + list(extra),
                                  [f'randomness.seed={seed}'] + adapt + list(extra), trains, bilevel))
    return cells


def write_splits(cells: Sequence[Cell], select_on: str = 'd2', val_size: int = 8) -> List[str]:
    """The seeded k-shot split files (and validation subsets) the cells train on, in each config's data root."""
    wanted: Dict[tuple, set] = {}
    for cell in cells:
        if cell.trains:
            root = Config.fromfile(cell.config).train_dataloader.dataset.data_root
            wanted.setdefault((root, cell.seed), set()).add(cell.shots)
    written = []
    for (root, seed), shots in sorted(wanted.items()):
        written += [str(p) for p in make_fewshot_splits(root, sorted(shots), seed=seed)]
        if select_on == 'val':
            written.append(write_val_subset(root, seed, val_size, max(shots)))
    return written


def write_val_subset(data_root: str, seed: int, val_size: int, max_shots: int) -> str:
    """``splits/val_{val_size}_seed{seed}.txt``: the last ``val_size`` names of the seed's permutation of the pool."""
    pool = list_pool(data_root)
    if val_size < 1 or max_shots + val_size > len(pool):
        raise ValueError(f'{data_root}: a validation subset of {val_size} images beside {max_shots} shots needs '
                         f'{max_shots + val_size} training images; the pool has {len(pool)}. Use a smaller '
                         '--val-size (or --select-on d2, the paper\'s protocol).')
    names = select_fewshot(pool, len(pool), seed)[-val_size:]
    path = osp.join(data_root, 'splits', f'val_{val_size}_seed{seed}.txt')
    with open(path, 'w') as f:
        f.write(''.join(f'{n}\n' for n in names))
    return path


def train_command(cell: Cell, tools_dir: str, launcher: str = 'local', gpus: int = 1,
                  partition: Optional[str] = None, resume: bool = False) -> List[str]:
    args = [cell.config, '--work-dir', cell.work_dir] + (['--resume'] if resume else [])
    args += ['--cfg-options'] + cell.overrides
    if launcher == 'dist':
        return ['bash', osp.join(tools_dir, 'dist_train.sh'), cell.config, str(gpus)] + args[1:]
    if launcher == 'slurm':
        return ['bash', osp.join(tools_dir, 'slurm_train.sh'), partition or 'PARTITION',
                f'{cell.name}_seed{cell.seed}', cell.config] + args[1:]
    return [sys.executable, osp.join(tools_dir, 'train.py')] + args


def test_command(cell: Cell, tools_dir: str, checkpoint: str) -> List[str]:
    return [sys.executable, osp.join(tools_dir, 'test.py'), cell.config, checkpoint, '--work-dir', cell.test_dir,
            '--cfg-options'] + cell.test_overrides


def trained_checkpoint(work_dir: str, bilevel: bool) -> Optional[str]:
    """The checkpoint a finished training run leaves for testing: the newest best-on-selection checkpoint
    (bi-level) or the one ``last_checkpoint`` names (single level: no validation); None before it exists."""
    if bilevel:
        best = sorted(glob.glob(osp.join(work_dir, 'best_mDice_*.pth')), key=osp.getmtime)
        return best[-1] if best else None
    last = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(last):
        return None
    with open(last) as f:
        return f.read().strip()


def checkpoint_to_test(cell: Cell) -> str:
    """:func:`trained_checkpoint` of the cell (``'none'`` for an untrained model); for a dry run the shell
    expression that finds it."""
    if not cell.trains:
        return 'none'
    found = trained_checkpoint(cell.work_dir, cell.bilevel)
    if found:
        return found
    work_dir = shlex.quote(cell.work_dir)
    return f'$(ls -t {work_dir}/best_mDice_*.pth | head -n 1)' if cell.bilevel else f'$(cat {work_dir}/last_checkpoint)'
