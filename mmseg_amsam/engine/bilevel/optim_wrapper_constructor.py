"""Builds the two optimizers of bi-level training: ``lower`` (LoRA + decoder parts) and ``upper`` (the prompt)."""
import copy
import re
from typing import Dict, List, Sequence

from mmengine.logging import print_log
from mmengine.optim import OptimWrapperDict
from mmseg.registry import OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS, OPTIMIZERS
from torch import nn

DEFAULT_PARAMS = dict(lower=(r'^decode_head\.', ), upper=(r'^learnable_prompt\.', ))


def select_parameters(model: nn.Module, patterns: Sequence[str]) -> Dict[str, nn.Parameter]:
    """Trainable parameters whose name matches any regex in ``patterns`` (``re.search``)."""
    regexes = [re.compile(p) for p in patterns]
    return {n: p for n, p in model.named_parameters() if p.requires_grad and any(r.search(n) for r in regexes)}


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class BiLevelOptimWrapperConstructor:
    """``OptimWrapperDict(lower=..., upper=...)``, each level built from its own ``OptimWrapper`` config.

    Config::

        optim_wrapper = dict(
            constructor='BiLevelOptimWrapperConstructor',
            lower=dict(type='OptimWrapper', params=[r'^decode_head\\.'],
                       optimizer=dict(type='AdamW', lr=5e-3, betas=(0.9, 0.999), weight_decay=0.1)),
            upper=dict(type='OptimWrapper', params=[r'^learnable_prompt\\.'],
                       optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.1)))

    ``params`` are regexes on parameter names (trainable ones only). The two sets must be non-empty and disjoint;
    any other trainable parameter is frozen (and logged), so nothing trains outside the two levels.
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg=None):
        if paramwise_cfg:
            raise ValueError('BiLevelOptimWrapperConstructor does not take paramwise_cfg; select parameters with '
                             "each level's `params` patterns.")
        missing = {'lower', 'upper'} - set(optim_wrapper_cfg)
        if missing:
            raise ValueError(f'bi-level optim_wrapper needs the keys lower and upper; missing {sorted(missing)}')
        self.cfg = copy.deepcopy(optim_wrapper_cfg)

    def __call__(self, model: nn.Module) -> OptimWrapperDict:
        if hasattr(model, 'module'):
            model = model.module
        chosen: Dict[str, Dict[str, nn.Parameter]] = {}
        for level in ('lower', 'upper'):
            patterns = self.cfg[level].get('params', DEFAULT_PARAMS[level])
            chosen[level] = select_parameters(model, patterns)
            if not chosen[level]:
                raise ValueError(f'bi-level {level} level: no trainable parameter matches {list(patterns)}. '
                                 'Check the `params` patterns against model.named_parameters().')
        both = set(chosen['lower']) & set(chosen['upper'])
        if both:
            raise ValueError(f'parameters selected by both levels: {sorted(both)[:6]}; make the patterns disjoint.')
        others: List[str] = [n for n, p in model.named_parameters()
                             if p.requires_grad and n not in chosen['lower'] and n not in chosen['upper']]
        for name, param in model.named_parameters():
            if name in others:
                param.requires_grad_(False)
        if others:
            print_log(f'bi-level: froze {len(others)} trainable parameters outside both levels: {others[:6]}',
                      logger='current')
        wrappers = {}
        for level in ('lower', 'upper'):
            cfg = copy.deepcopy(self.cfg[level])
            cfg.pop('params', None)
            optimizer_cfg = cfg.pop('optimizer')
            optimizer_cfg['params'] = list(chosen[level].values())
            optimizer = OPTIMIZERS.build(optimizer_cfg)
            cfg.setdefault('type', 'OptimWrapper')
            wrappers[level] = OPTIM_WRAPPERS.build(cfg, default_args=dict(optimizer=optimizer))
            wrappers[level].param_names = list(chosen[level])
            n = sum(p.numel() for p in chosen[level].values())
            print_log(f'bi-level {level} level: {len(chosen[level])} tensors, {n} parameters', logger='current')
        return OptimWrapperDict(**wrappers)
