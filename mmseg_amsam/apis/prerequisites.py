"""Every file a config needs, checked before anything is built: one list of all that is missing, each with its fix.

``tools/train.py`` and ``tools/test.py`` call :func:`check_prerequisites` before ``Runner.from_cfg``, so a new user
learns at once that the SAM weights, the YOLO weights *and* the dataset are missing, instead of one per run after a
long start-up. Checked (paths relative to the working directory, as mmengine reads them):

* weights: ``model...sam_checkpoint`` / ``checkpoint`` / ``pretrained`` (local paths, not ``scheme://`` URLs) and
  a YOLO prompter's ``model`` (not a ``.yaml``): fix ``python tools/download_checkpoints.py NAME`` for the official
  files, else ``--cfg-options FIELD=PATH``;
* per dataloader the run uses: ``data_root`` (fix: the dataset's converter, its ``PREPARE_COMMAND``), the
  ``data_prefix`` folders under it, and the split ``ann_file`` (fix: ``make_fewshot_split.py``);
* ``load_from`` (``tools/test.py``'s CHECKPOINT argument).
"""
import os.path as osp
import re
from typing import Iterator, List, NamedTuple, Sequence, Tuple

from ..utils.sam2_checkpoint import SAM2_URL
from . import checkpoint_files as ck

WEIGHT_KEYS = ('sam_checkpoint', 'checkpoint', 'pretrained')
DATA_HINT = 'prepare it as described in docs/reproduce.md, "2. Data"'


class Prerequisite(NamedTuple):
    field: str  # full config path, e.g. 'model.prompter.model'
    path: str
    fix: str


class PrerequisitesError(FileNotFoundError):
    """Files a config needs are missing; ``missing`` lists them (:class:`Prerequisite`)."""

    def __init__(self, missing: List[Prerequisite]):
        self.missing = list(missing)
        super().__init__(format_missing(self.missing))


def _is_local(value) -> bool:
    return (isinstance(value, str) and bool(value) and '://' not in value
            and not value.startswith(('open-mmlab:', 'torchvision:', 'mmcls:', 'mmpretrain:')))


def _leaves(node, prefix: str) -> Iterator[Tuple[str, str, object, dict]]:
    """(full field, key, value, the dict holding it) of every non-container value under ``node``."""
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in items:
        field = f'{prefix}.{key}' if isinstance(node, dict) else f'{prefix}[{key}]'
        if isinstance(value, (dict, list, tuple)):
            yield from _leaves(value, field)
        else:
            yield field, key, value, node


def _weights_fix(field: str, path: str) -> str:
    try:
        known = ck.resolve(osp.basename(path))
    except KeyError:
        name = osp.basename(path)
        if name.startswith('sam2.1_hiera_') and name.endswith('.pt'):  # no digest recorded here: plain download
            return f'wget -P {osp.dirname(path) or "."} {SAM2_URL}{name} (or --cfg-options {field}=PATH)'
        return f'point {field} at the file: --cfg-options {field}=PATH'
    folder = osp.dirname(path) or '.'
    where = '' if osp.normpath(folder) == 'checkpoints' else f' --dir {folder}'
    return f'python tools/download_checkpoints.py {known.name}{where}'


def _missing_weights(model: dict) -> Iterator[Prerequisite]:
    for field, key, value, holder in _leaves(model, 'model'):
        is_yolo = key == 'model' and 'YOLO' in str(holder.get('type', ''))
        if not (key in WEIGHT_KEYS or is_yolo) or not _is_local(value):
            continue
        if is_yolo and value.endswith(('.yaml', '.yml')):  # built with random weights
            continue
        if not osp.isfile(value):
            yield Prerequisite(field, value, _weights_fix(field, value))


def _datasets(dataset: dict, field: str) -> Iterator[Tuple[str, dict]]:
    """The datasets of a dataloader's ``dataset``, through wrappers (``dataset=`` / ``datasets=[...]``)."""
    if isinstance(dataset.get('dataset'), dict):
        yield from _datasets(dataset['dataset'], f'{field}.dataset')
    elif isinstance(dataset.get('datasets'), (list, tuple)):
        for i, inner in enumerate(dataset['datasets']):
            yield from _datasets(inner, f'{field}.datasets[{i}]')
    else:
        yield field, dataset


def _prepare_command(dataset_type, root: str) -> str:
    cls = None
    if isinstance(dataset_type, str):
        from mmseg.registry import DATASETS
        cls = DATASETS.get(dataset_type)
    elif isinstance(dataset_type, type):
        cls = dataset_type
    command = getattr(cls, 'PREPARE_COMMAND', None)
    return command.format(data_root=root) if command and '<' not in command else f'{DATA_HINT} (into {root})'


def _split_fix(root: str, ann_file: str) -> str:
    match = re.search(r'train_(\d+)shot(?:_seed(\d+))?\.txt$', ann_file)
    if not match:
        return f'create it (image names without suffix, one per line; {DATA_HINT})'
    seed = f' --seed {match.group(2)}' if match.group(2) else ''
    return f'python tools/dataset_converters/make_fewshot_split.py {root or "DATA_ROOT"} --shots {match.group(1)}{seed}'


def _missing_data(dataset: dict, field: str) -> Iterator[Prerequisite]:
    root = dataset.get('data_root') or ''
    prepare = _prepare_command(dataset.get('type'), root or 'DATA_ROOT')
    root_ok = not root or osp.isdir(root)
    if not root_ok:
        yield Prerequisite(f'{field}.data_root', root, prepare)
    prefix = dataset.get('data_prefix') or {}
    for key, sub in (prefix.items() if root_ok and isinstance(prefix, dict) else ()):
        folder = osp.join(root, sub) if root and not osp.isabs(sub) else sub
        if sub and not osp.isdir(folder):
            yield Prerequisite(f'{field}.data_prefix.{key}', folder, f'{root or "the data root"} is not a complete '
                               f'prepared dataset; prepare it again: {prepare}')
    ann_file = dataset.get('ann_file')
    if isinstance(ann_file, str) and ann_file:
        path = osp.join(root, ann_file) if root and not osp.isabs(ann_file) else ann_file
        if not osp.isfile(path):
            yield Prerequisite(f'{field}.ann_file', path, _split_fix(root, ann_file))


def missing_prerequisites(cfg, phases: Sequence[str] = ('train', 'val', 'test')) -> List[Prerequisite]:
    """Every file or folder ``cfg`` needs for the given phases that is not there, as (field, path, fix).

    A phase's data is checked when the config has its ``{phase}_dataloader`` (``val`` also needs ``val_cfg``).
    """
    missing: List[Prerequisite] = []
    model = cfg.get('model')
    if isinstance(model, dict):
        missing += _missing_weights(model)
    for phase in phases:
        loader = cfg.get(f'{phase}_dataloader')
        if not isinstance(loader, dict) or not isinstance(loader.get('dataset'), dict):
            continue
        if phase == 'val' and not cfg.get('val_cfg'):
            continue
        for field, dataset in _datasets(loader['dataset'], f'{phase}_dataloader.dataset'):
            missing += _missing_data(dataset, field)
    load_from = cfg.get('load_from')
    if _is_local(load_from) and not osp.isfile(load_from):
        missing.append(Prerequisite('load_from', load_from, 'give a checkpoint tools/train.py wrote (tools/test.py: '
                                    'the CHECKPOINT argument), e.g. work_dirs/NAME/best_mDice_*.pth'))
    return missing


def format_missing(missing: Sequence[Prerequisite]) -> str:
    """One block: each missing path once, with every field that names it and its fix."""
    groups = {}
    for item in missing:
        groups.setdefault((item.path, item.fix), []).append(item.field)
    lines = [f'{len(groups)} file(s) or folder(s) this config needs are missing (nothing was built):']
    for (path, fix), fields in groups.items():
        lines.append(f'  {", ".join(fields)} = {path}\n      fix: {fix}')
    return '\n'.join(lines)


def check_prerequisites(cfg, phases: Sequence[str] = ('train', 'val', 'test')) -> None:
    """Raise :class:`PrerequisitesError` listing everything :func:`missing_prerequisites` finds."""
    missing = missing_prerequisites(cfg, phases)
    if missing:
        raise PrerequisitesError(missing)
