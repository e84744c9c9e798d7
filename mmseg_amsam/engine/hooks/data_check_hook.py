"""Fail at the start of a run when an image or mask file of its datasets cannot be read."""
from typing import Dict, Iterator, List

from mmengine.hooks import Hook
from mmengine.runner.base_loop import BaseLoop
from mmseg.registry import HOOKS

from ...utils.file_checks import check_readable

PATH_KEYS = ('img_path', 'seg_map_path')


def _datasets(loader) -> Iterator:
    """The datasets a loop's dataloader reads: its ``dataset`` and, for ``BiLevelDataLoader``, D2's too."""
    for part in (loader, getattr(loader, 'upper', None)):
        dataset = getattr(part, 'dataset', None)
        if dataset is not None:
            yield dataset


def dataset_files(dataset) -> List[str]:
    """Every ``img_path`` / ``seg_map_path`` of an mmengine dataset (wrappers and subsets included), each once."""
    if not hasattr(dataset, 'get_data_info'):
        inner = [getattr(dataset, 'dataset', None)] + list(getattr(dataset, 'datasets', None) or [])
        return list(dict.fromkeys(p for d in inner if d is not None for p in dataset_files(d)))
    files: Dict[str, None] = {}
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        files.update((str(info[k]), None) for k in PATH_KEYS if info.get(k))
    return list(files)


@HOOKS.register_module()
class DataCheckHook(Hook):
    """``before_run``: decode every image and mask file of the run's datasets (training, D1 and D2 of a bi-level
    run, validation, test: the loops this run built) in full (``utils.file_checks``); any unreadable file raises one
    message naming all of them, before a checkpoint is loaded or an iteration runs. (The detector adaptation, which
    runs when the model is built, checks its own split the same way.) Each file is decoded once per process."""

    priority = 'VERY_HIGH'

    def before_run(self, runner) -> None:
        check_run_files(runner)


def check_run_files(runner) -> None:
    """``DataCheckHook``'s check, callable as soon as the runner's loops are built (a tool can run it while it
    holds the start-up log back, so that the refusal is all that is printed)."""
    for attr, field in (('_train_loop', 'train_dataloader'), ('_val_loop', 'val_dataloader'),
                        ('_test_loop', 'test_dataloader')):
        loop = getattr(runner, attr, None)
        if not isinstance(loop, BaseLoop):  # not built: this run does not use it
            continue
        files = [p for dataset in _datasets(loop.dataloader) for p in dataset_files(dataset)]
        check_readable(files, f'{field} dataset')
