"""Turns the embedding cache off for training when the training pipeline is random, and logs its memory use."""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS

from ...models.backbones.embedding_cache import random_transforms


def _cache_of(runner):
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    return model, getattr(model, 'embedding_cache', None)


@HOOKS.register_module()
class EmbeddingCacheHook(Hook):
    """``before_train``: if the training pipeline has random transforms (``Random*``, ``PhotoMetricDistortion``),
    the frozen encoder's input changes every epoch, so caching it would only fill memory: switch it off for
    training (validation/test inputs stay deterministic and keep the cache). After each epoch: log entries, MB and
    hit rate."""

    priority = 'NORMAL'

    def before_train(self, runner) -> None:
        model, cache = _cache_of(runner)
        if cache is None:
            return
        pipeline = runner.cfg.get('train_dataloader', {}).get('dataset', {}).get('pipeline', [])
        found = random_transforms(pipeline)
        if found:
            model.cache_in_training = False
            runner.logger.info(f'embedding cache: off for training (random transforms {found}); on for val/test')

    def _report(self, runner, when: str) -> None:
        _, cache = _cache_of(runner)
        if cache is None:
            return
        s = cache.stats()
        runner.message_hub.update_scalar('cache/mb', s['mb'])
        runner.message_hub.update_scalar('cache/hit_rate', s['hit_rate'])
        runner.logger.info(f"embedding cache after {when}: {s['entries']} images, {s['mb']:.1f} MB, "
                           f"hit rate {100 * s['hit_rate']:.1f}% ({s['hits']} hits / {s['misses']} misses)")

    def after_train_epoch(self, runner) -> None:
        self._report(runner, f'train epoch {runner.epoch}')

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._report(runner, 'validation')
