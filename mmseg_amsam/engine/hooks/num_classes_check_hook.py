"""Fail at the start of a run when the model's number of classes disagrees with the dataset's."""
from mmengine.hooks import Hook
from mmengine.runner.base_loop import BaseLoop
from mmseg.registry import HOOKS

from ...utils.model_wrapper import unwrap_model as unwrap


@HOOKS.register_module()
class NumClassesCheckHook(Hook):
    """``before_run``: compare ``model.decode_head.num_classes`` with the classes of the run's dataset.

    In training the training set is checked (``train_dataloader.dataset.metainfo['classes']``); in
    ``runner.val()`` / ``runner.test()`` the validation / test set. The classes count the background (mmseg's
    convention: a binary task has ``classes=('background', 'foreground')`` and ``num_classes=2``, or ``num_classes=1``
    with one sigmoid channel and a ``threshold``, mmseg's binary mode). A mismatch
    raises ``ValueError`` naming the config field to change, before any weights are loaded or a step is run.
    """

    priority = 'VERY_HIGH'

    def before_run(self, runner) -> None:
        head = getattr(unwrap(runner.model), 'decode_head', None)
        num_classes = getattr(head, 'num_classes', None)
        if num_classes is None:
            return
        for attr, field in (('_train_loop', 'train_dataloader'), ('_val_loop', 'val_dataloader'),
                            ('_test_loop', 'test_dataloader')):
            loop = getattr(runner, attr, None)
            if not isinstance(loop, BaseLoop):  # not built: this run does not use it
                continue
            dataset = getattr(loop.dataloader, 'dataset', None)
            classes = (getattr(dataset, 'metainfo', None) or {}).get('classes')
            if classes is None:
                continue
            if num_classes == 1 and len(classes) == 2 and getattr(head, 'out_channels', None) == 1:
                return  # mmseg's one-channel binary mode (sigmoid + threshold) on a background/foreground set
            if len(classes) != num_classes:
                raise ValueError(
                    f'model.decode_head.num_classes = {num_classes}, but the {field} dataset '
                    f'({type(dataset).__name__}) has {len(classes)} classes {tuple(classes)} (background included). '
                    f'Set model.decode_head.num_classes={len(classes)} in the config (or pass --cfg-options '
                    f'model.decode_head.num_classes={len(classes)}), or fix the dataset\'s classes.')
            return
