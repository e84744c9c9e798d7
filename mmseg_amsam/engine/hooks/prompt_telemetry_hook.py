"""Logs what the automated prompter did in every train / val / test run, and warns once when it mostly fell back."""
from typing import Optional

import numpy as np
import torch
from mmengine.dist import all_reduce
from mmengine.hooks import Hook
from mmengine.runner import IterBasedTrainLoop
from mmseg.registry import HOOKS

from ...models.prompters.box_prompter import BoxPrompter
from ...models.prompters.pipeline_geometry import dataset_pipeline
from ...models.prompters.prompt_telemetry import fallback_warning, format_summary, summarize_counts
from ...utils.model_wrapper import unwrap_model

LOGGED = ('detection_rate', 'fallbacks', 'box_iou', 'box_iou_ge_0.5')


def hub_key(mode: str, name: str) -> str:
    """Message-hub key of the scalar logged as ``{mode}/prompt_{name}``: mmengine's ``LogProcessor`` strips the
    leading ``{mode}/`` of every key it writes (log line, ``scalars.json``, TensorBoard ...), which would put the
    train and the val values in one ``prompt_*`` series; the key repeats the split so that it survives."""
    return f'{mode}/{mode}/prompt_{name}'


@HOOKS.register_module()
class PromptTelemetryHook(Hook):
    """Publishes the prompter's :class:`PromptTelemetry` (a no-op for models without a box prompter).

    After each train epoch (at its last iteration; iteration-based loops: every ``interval`` iterations), each
    validation and each test run: one log line (``format_summary``) and the scalars
    ``{train,val,test}/prompt_detection_rate``, ``.../prompt_fallbacks``, ``.../prompt_box_iou`` and
    ``.../prompt_box_iou_ge_0.5``, one series per split, through the message hub (keys: :func:`hub_key`), from where
    mmengine's ``LoggerHook`` (which runs after this hook) writes them to the log, to every visualizer backend
    (``scalars.json``, TensorBoard, ...) and to the test results' JSON. Counts are summed over ranks.

    When a published share of fallbacks is above the prompter's ``warn_fallback_rate``, one WARNING says so with the
    number (once per run).
    """

    priority = 'NORMAL'  # before LoggerHook (BELOW_NORMAL): its line for this epoch includes our scalars

    def __init__(self, interval: int = 50):
        self.interval = interval
        self._warned = False

    @staticmethod
    def _prompter(runner) -> Optional[BoxPrompter]:
        prompter = getattr(unwrap_model(runner.model), 'prompter', None)
        return prompter if isinstance(prompter, BoxPrompter) else None

    def _reset(self, runner, which: str) -> None:
        prompter = self._prompter(runner)
        if prompter is not None:
            prompter.telemetry[which].reset()

    def _publish(self, runner, which: str, mode: str) -> None:
        prompter = self._prompter(runner)
        if prompter is None:
            return
        telemetry = prompter.telemetry[which]
        labels = prompter.prompt_labels or []
        counts = torch.tensor(np.concatenate([telemetry.counts()[None], telemetry.class_counts(labels)]),
                              dtype=torch.float64)
        all_reduce(counts, op='sum')  # in place; a no-op outside distributed runs
        summary = summarize_counts(counts[0].tolist())
        telemetry.reset()
        if not summary['prompts']:
            return
        runner.logger.info(f'{type(prompter).__name__} ({mode}): {format_summary(summary)}')
        per_class = [(f'.{label}', summarize_counts(c.tolist())) for label, c in zip(labels, counts[1:])]
        for suffix, values in [('', summary)] + per_class:  # multi-class: also prompt_<key>.<label> per class
            if suffix:
                runner.logger.info(f'  class {suffix[1:]}: {format_summary(values)}')
            for key in LOGGED:
                if values[key] == values[key]:  # not NaN (no ground truth: no IoU)
                    runner.message_hub.update_scalar(hub_key(mode, f'{key}{suffix}'), values[key])
        warning = fallback_warning(int(summary['fallbacks']), int(summary['prompts']),
                                   getattr(prompter, 'warn_fallback_rate', None), f' in {mode}')
        if warning and not self._warned:
            self._warned = True
            runner.logger.warning(f'!!! {type(prompter).__name__}: {warning} This warning is shown once per run.')

    def before_run(self, runner) -> None:
        """Refuse, before any work, a pipeline whose geometry the detector's boxes cannot follow."""
        prompter = self._prompter(runner)
        if prompter is None or not hasattr(prompter, 'check_pipeline'):
            return
        for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            pipeline = dataset_pipeline((runner.cfg.get(name) or {}).get('dataset'))
            if pipeline:
                prompter.check_pipeline(pipeline, f'{name}.dataset.pipeline')

    def before_train_epoch(self, runner) -> None:
        self._reset(runner, 'train')

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        """Iteration-based: every ``interval`` iterations; epoch-based: the epoch's last iteration, before
        ``LoggerHook`` writes that iteration's scalars (after ``train_epoch`` nothing writes them until the next
        epoch's first logged iteration, and never after the last epoch)."""
        if isinstance(runner.train_loop, IterBasedTrainLoop):
            due = self.every_n_train_iters(runner, self.interval)
        else:
            due = self.end_of_epoch(runner.train_dataloader, batch_idx)
        if due:
            self._publish(runner, 'train', 'train')

    def before_val_epoch(self, runner) -> None:
        self._reset(runner, 'eval')

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._publish(runner, 'eval', 'val')

    def before_test_epoch(self, runner) -> None:
        self._reset(runner, 'eval')

    def after_test_epoch(self, runner, metrics=None) -> None:
        self._publish(runner, 'eval', 'test')
