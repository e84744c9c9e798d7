"""Small training checkpoints: keep what trains, rebuild the frozen parts from the config when loading.

AM-SAM trains a few million parameters (LoRA, decoder MLPs / transposed convs / mask tokens, calibration, the
learnable prompt) on top of a frozen SAM (ViT-B: 90M parameters, ViT-H: 640M). mmengine saves the whole
``state_dict`` with every checkpoint; :class:`TrainableOnlyCheckpointHook` drops from it every tensor that the
config rebuilds identically, and records where those come from in ``checkpoint['meta']['frozen_from']``::

    dict(format=1, sam_checkpoint='checkpoints/sam_vit_b_01ec64.pth', yolo='checkpoints/yolov8n.pt', seed=0,
         num_tensors=..., digests={key: sha256 of the tensor}, detector=sha256 of the YOLO weights)

A tensor is dropped only if (a) it does not train (a parameter with ``requires_grad=False`` or a buffer) and
(b) it is bit-identical to the same tensor of a model built from the run's config under the run's seed (checked
once, against a reference build, at the first save; buffers are re-checked at every save). Anything else (BN
statistics that moved, weights loaded by ``init_weights``, a fine-tuned encoder) stays in the checkpoint.

Loading: the same hook's ``after_load_checkpoint`` (``load_from``, ``--resume``, ``tools/test.py``) fills the
missing tensors from the freshly built model *after* checking them against the recorded digests, so

* a model built with another SAM file (or, for randomly initialised frozen parts as in the demo, another seed) is
  refused with a message saying which parts differ and how to build the right one;
* a checkpoint that lacks a *trained* tensor is refused (it is not one of ours, or it is damaged);
* mmengine then loads a complete state dict: no "missing keys" warning.

Outside a Runner use :func:`load_trained_checkpoint` (the inferencer does). Plain ``mmengine.runner.
load_checkpoint`` without this hook would leave the frozen parts as built and warn about missing keys.
"""
import copy
import hashlib
import random
from contextlib import contextmanager
from typing import Dict, Iterable, Optional, Union

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.runner.checkpoint import _load_checkpoint, _load_checkpoint_to_model
from mmseg.registry import HOOKS
from torch import nn

from ...models.utils.tensor_digest import tensor_digest

META_KEY = 'frozen_from'
FORMAT = 1


class FrozenWeightsError(RuntimeError):
    """A trainable-only checkpoint does not fit the model it is loaded into."""


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if is_model_wrapper(model) else model


def detector_digest(model: nn.Module) -> Optional[str]:
    """Digest of the prompter's YOLO weights (not part of the state dict: ``YOLOBoxPrompter`` hides it)."""
    detector = getattr(getattr(model, 'prompter', None), 'detector', None)
    net = getattr(detector, 'model', None)
    if not isinstance(net, nn.Module):
        return None
    h = hashlib.sha256()
    for key, value in sorted(net.state_dict().items()):
        h.update(f'{key}:{tensor_digest(value)}\n'.encode())
    return h.hexdigest()


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


def build_model(model_cfg: dict, seed: Optional[int] = None) -> nn.Module:
    """``MODELS.build(model_cfg)`` under ``seed`` (what a Runner with ``randomness.seed=seed`` builds)."""
    from mmengine.registry import DefaultScope, init_default_scope
    from mmseg.registry import MODELS
    if DefaultScope.get_current_instance() is None:
        init_default_scope('mmseg')
    with seeded(seed):
        return MODELS.build(copy.deepcopy(model_cfg))


def frozen_sources(model_cfg) -> dict:
    """Where the frozen weights of ``model_cfg`` come from (for the checkpoint meta and messages)."""
    model_cfg = model_cfg or {}
    prompter = model_cfg.get('prompter') or {}
    return dict(sam_checkpoint=model_cfg.get('sam_checkpoint'),
                yolo=prompter.get('model') if isinstance(prompter, dict) else None)


def checkpoint_seed(checkpoint: dict) -> Optional[int]:
    """The seed the checkpoint's model was built with: ``frozen_from.seed``, else mmengine's ``meta.seed``.

    Building under it reproduces randomly initialised frozen parts, including a YOLO built from a ``.yaml`` (not in
    the state dict); it changes nothing for weights read from files.
    """
    meta = checkpoint.get('meta') or {}
    frozen = meta.get(META_KEY) or {}
    seed = frozen.get('seed', meta.get('seed'))
    return int(seed) if seed is not None else None


def _groups(keys: Iterable[str]) -> str:
    counts: Dict[str, int] = {}
    for key in keys:
        top = key.split('.')[0]
        counts[top] = counts.get(top, 0) + 1
    return ', '.join(f'{name} ({n} tensors)' for name, n in counts.items())


def restore_frozen_weights(model: nn.Module, checkpoint: dict) -> dict:
    """Complete ``checkpoint['state_dict']`` of a trainable-only checkpoint with the model's own frozen tensors.

    Checks every filled tensor against the digest recorded at save time and that no trained tensor is missing;
    raises :class:`FrozenWeightsError` otherwise. A checkpoint without ``meta['frozen_from']`` is returned as is.
    """
    meta = checkpoint.get('meta') or {}
    frozen = meta.get(META_KEY)
    if not frozen:
        return checkpoint
    model = unwrap(model)
    state = checkpoint.get('state_dict', checkpoint)
    digests: Dict[str, str] = frozen.get('digests', {})
    own = model.state_dict()
    absent = [k for k in digests if k not in state]
    where = (f"sam_checkpoint={frozen.get('sam_checkpoint')!r}, YOLO={frozen.get('yolo')!r}, "
             f"seed={frozen.get('seed')}")
    not_in_model = [k for k in absent if k not in own]
    differ = [k for k in absent if k in own and tensor_digest(own[k]) != digests[k]]
    if not_in_model or differ:
        lines = []
        if differ:
            lines.append(f'frozen weights that differ: {_groups(differ)}, e.g. {differ[:3]}')
        if not_in_model:
            lines.append(f'frozen weights the model does not have: {_groups(not_in_model)}, e.g. {not_in_model[:3]}')
        raise FrozenWeightsError(
            'This checkpoint holds only the trained weights; its frozen weights must come from building the model '
            f'from the training config ({where}), but the model built here does not match: ' + '; '.join(lines) +
            '. Build it with the same config: the same model.sam_checkpoint file (and model arch / img_size); when '
            'frozen parts are randomly initialised (sam_checkpoint=None, as in the demo), also the same '
            f"randomness.seed (--cfg-options randomness.seed={frozen.get('seed')}).")
    for key in absent:
        state[key] = own[key]
    trained_missing = [k for k in own if k not in state]
    if trained_missing:
        raise FrozenWeightsError(
            f'The checkpoint lacks trained weights of this model: {_groups(trained_missing)}, e.g. '
            f'{trained_missing[:3]}. It was saved from a different model or config (or is damaged); load it with the '
            'config it was trained with.')
    recorded = frozen.get('detector')
    if recorded and detector_digest(model) not in (None, recorded):
        print_log(f"the prompter's YOLO weights differ from those this checkpoint was trained with "
                  f"({frozen.get('yolo')!r}); boxes (and so predictions) may differ.", logger='current',
                  level=30)
    return checkpoint


def load_trained_checkpoint(model: nn.Module, checkpoint: Union[str, dict], map_location='cpu',
                            strict: bool = True) -> dict:
    """Load a checkpoint (a path, or one already read) into ``model``, full or trainable-only.

    Trainable-only checkpoints are completed by :func:`restore_frozen_weights` first; the load is strict by
    default (any missing or unexpected key is an error). Returns the checkpoint dict.
    """
    if isinstance(checkpoint, str):
        checkpoint = _load_checkpoint(checkpoint, map_location=map_location)
    if not isinstance(checkpoint, dict):
        raise FrozenWeightsError(f'not a checkpoint: {type(checkpoint).__name__}')
    restore_frozen_weights(model, checkpoint)
    _load_checkpoint_to_model(unwrap(model), checkpoint, strict=strict)
    return checkpoint


@HOOKS.register_module()
class TrainableOnlyCheckpointHook(Hook):
    """Save only trained tensors in checkpoints; restore the frozen ones from the config on load (module doc).

    Args:
        enabled: False keeps mmengine's full checkpoints (loading trainable-only ones still works).
    """

    priority = 'LOW'  # after hooks that edit the saved state dict (e.g. EMA)

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self._reference: Optional[Dict[str, str]] = None  # key -> digest of droppable frozen tensors
        self._build_seed: Optional[int] = None
        self._detector: Optional[str] = None
        self._logged = False

    def before_run(self, runner) -> None:
        # the seed the runner built its model with (a resume may later switch runner.seed to the checkpoint's)
        self._build_seed = runner.seed

    def _reference_digests(self, runner, model: nn.Module, state: dict, trainable: set) -> Dict[str, str]:
        model_cfg = runner.cfg.get('model') if runner.cfg else None
        candidates = [k for k in state if k not in trainable]
        if not candidates:
            return {}
        if not isinstance(model_cfg, dict):
            runner.logger.warning('TrainableOnlyCheckpointHook: the runner has no model config to rebuild the frozen '
                                  'weights from; saving full checkpoints.')
            return {}
        try:
            reference = build_model(model_cfg, self._build_seed).state_dict()
        except Exception as exc:  # never lose a checkpoint over this: keep it full
            runner.logger.warning(f'TrainableOnlyCheckpointHook: cannot rebuild the model from its config '
                                  f'({type(exc).__name__}: {exc}); saving full checkpoints.')
            return {}
        same = {}
        for key in candidates:
            ref = reference.get(key)
            value = state[key]
            if (ref is not None and ref.dtype == value.dtype and ref.shape == value.shape
                    and torch.equal(ref, value.to(ref.device))):
                same[key] = tensor_digest(value)
        return same

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if not self.enabled:
            return
        model = unwrap(runner.model)
        state = checkpoint['state_dict']
        params = dict(model.named_parameters())
        trainable = {name for name, p in params.items() if p.requires_grad}
        if self._build_seed is None:  # saved before any run started: the runner's own seed built the model
            self._build_seed = runner.seed
        if self._reference is None:
            self._reference = self._reference_digests(runner, model, state, trainable)
            self._detector = detector_digest(model)  # frozen as well: once
        digests = {}
        for key, ref in self._reference.items():
            if key not in state or key in trainable:
                continue
            if key not in params and tensor_digest(state[key]) != ref:  # a buffer that changed: keep it
                continue
            digests[key] = ref
        if not digests:
            return
        total = sum(v.numel() * v.element_size() for v in state.values())
        dropped = sum(state[k].numel() * state[k].element_size() for k in digests)
        for key in digests:
            del state[key]
        sources = frozen_sources(runner.cfg.get('model'))
        checkpoint.setdefault('meta', {})[META_KEY] = dict(
            format=FORMAT, **sources, seed=self._build_seed, num_tensors=len(digests), digests=digests,
            detector=self._detector)
        if not self._logged:
            self._logged = True
            runner.logger.info(
                f'checkpoints hold the trained weights only: {len(digests)} frozen tensors '
                f'({dropped / 2**20:.1f} of {total / 2**20:.1f} MB of weights) are left out and rebuilt from the '
                f"config when loading (sam_checkpoint={sources['sam_checkpoint']!r}, yolo={sources['yolo']!r}, "
                f'seed={self._build_seed}).')

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        restore_frozen_weights(runner.model, checkpoint)
