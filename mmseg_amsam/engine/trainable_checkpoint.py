"""Small training checkpoints: what may be left out, and how a trainable-only checkpoint is completed on load.

AM-SAM trains a few million parameters (LoRA, decoder MLPs / transposed convs / mask tokens, calibration, the
learnable prompt) on top of a frozen SAM (ViT-B: 90M parameters, ViT-H: 640M). ``TrainableOnlyCheckpointHook``
(``engine/hooks``) drops from every saved ``state_dict`` each tensor that the config rebuilds identically
(:func:`droppable_frozen_digests`) and records where those come from in ``checkpoint['meta']['frozen_from']``::

    dict(format=1, sam_checkpoint='checkpoints/sam_vit_b_01ec64.pth', yolo='checkpoints/yolov8n.pt', seed=0,
         num_tensors=..., digests={key: sha256 of the tensor}, detector=sha256 of the YOLO weights)

A tensor is dropped only if (a) it does not train (a parameter with ``requires_grad=False`` or a buffer) and
(b) it is bit-identical to the same tensor of a model built from the run's config under the run's seed (checked
once, against a reference build, at the first save; buffers are re-checked at every save). Anything else (BN
statistics that moved, weights loaded by ``init_weights``, a fine-tuned encoder) stays in the checkpoint.

Loading (:func:`restore_frozen_weights`, called by the hook on ``load_from`` / ``--resume`` / ``tools/test.py`` and
by :func:`load_trained_checkpoint` outside a Runner) fills the missing tensors from the freshly built model *after*
checking them against the recorded digests, so

* a model built with another SAM file (or, for randomly initialised frozen parts as in the demo, another seed) is
  refused with a message saying which parts differ and how to build the right one;
* a checkpoint that lacks a *trained* tensor is refused (it is not one of ours, or it is damaged);
* mmengine then loads a complete state dict: no "missing keys" warning.
"""
import copy
import hashlib
from typing import Dict, Iterable, List, Optional, Set, Union

import torch
from mmengine.logging import print_log
from mmengine.runner.checkpoint import _load_checkpoint, _load_checkpoint_to_model
from torch import nn

from ..utils.model_wrapper import unwrap_model as unwrap
from .checkpoint_loading import amsam_checkpoint_loader
from ..utils.seeding import seeded
from ..utils.tensor_digest import tensor_digest

META_KEY = 'frozen_from'
FORMAT = 1


class FrozenWeightsError(RuntimeError):
    """A trainable-only checkpoint does not fit the model it is loaded into."""


def detector_digest(model: nn.Module) -> Optional[str]:
    """Digest of the prompter's detector weights (not part of the state dict: the detector prompters hide them)."""
    prompter = getattr(model, 'prompter', None)
    net = prompter.detector_module() if hasattr(prompter, 'detector_module') else None
    if not isinstance(net, nn.Module):
        return None
    h = hashlib.sha256()
    for key, value in sorted(net.state_dict().items()):
        h.update(f'{key}:{tensor_digest(value)}\n'.encode())
    return h.hexdigest()


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
    detector = None  # YOLOBoxPrompter: model; MMDetBoxPrompter: checkpoint (or config, random weights)
    if isinstance(prompter, dict):
        detector = prompter.get('model') or prompter.get('checkpoint') or prompter.get('config')
    return dict(sam_checkpoint=model_cfg.get('sam_checkpoint'), yolo=detector)


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


def check_trained_present(model: nn.Module, state: dict, source: Optional[str] = None) -> None:
    """Refuse (:class:`FrozenWeightsError`) a state dict that lacks a trained parameter of ``model``: loading it
    non-strictly (mmengine's ``load_from``) would keep the untrained values, e.g. an official SAM file given as
    the trained checkpoint."""
    keys = {k[len('module.'):] if k.startswith('module.') else k for k in state}  # mmengine's default revise_keys
    missing = [name for name, p in unwrap(model).named_parameters() if p.requires_grad and name not in keys]
    if not missing:
        return
    what = f'{source}' if source else 'The checkpoint'
    sam = [k for k in keys if k.startswith(('image_encoder.', 'prompt_encoder.', 'mask_decoder.'))]
    kind = (' It is an official SAM checkpoint (keys image_encoder.*, mask_decoder.* ...): that file belongs in '
            'the config field model.sam_checkpoint, not here.' if sam and len(sam) * 2 >= len(keys) else '')
    raise FrozenWeightsError(
        f'{what} lacks the trained weights of this model: {_groups(missing)}, e.g. {missing[:3]}; loading it '
        f'would evaluate untrained weights.{kind} Give the checkpoint tools/train.py wrote for this config '
        '(work_dirs/NAME/best_mDice_*.pth or the file named in work_dirs/NAME/last_checkpoint), or `none` to test '
        'the model as built from the config.')


def restore_frozen_weights(model: nn.Module, checkpoint: dict, source: Optional[str] = None) -> dict:
    """Complete ``checkpoint['state_dict']`` of a trainable-only checkpoint with the model's own frozen tensors.

    Checks every filled tensor against the digest recorded at save time and that no trained tensor is missing;
    raises :class:`FrozenWeightsError` otherwise (``source``, the file, is named in the message). A checkpoint
    without ``meta['frozen_from']`` is only checked to hold every trained parameter (:func:`check_trained_present`).
    """
    meta = checkpoint.get('meta') or {}
    frozen = meta.get(META_KEY)
    state = checkpoint.get('state_dict', checkpoint)
    if not frozen:
        check_trained_present(model, state, source)
        return checkpoint
    model = unwrap(model)
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
            f'{source or "The checkpoint"} lacks trained weights of this model: {_groups(trained_missing)}, e.g. '
            f'{trained_missing[:3]}. It was saved from a different model or config (or is damaged); load it with the '
            'config it was trained with.')
    recorded = frozen.get('detector')
    if recorded and detector_digest(model) not in (None, recorded):
        print_log(f"the prompter's YOLO weights differ from those this checkpoint was trained with "
                  f"({frozen.get('yolo')!r}); boxes (and so predictions) may differ.", logger='current',
                  level=30)
    return checkpoint


def read_checkpoint(path: str, map_location='cpu') -> dict:
    """mmengine's ``_load_checkpoint`` through the torch >= 2.6-safe loader (``checkpoint_loading.py``)."""
    with amsam_checkpoint_loader():
        return _load_checkpoint(path, map_location=map_location)


def load_trained_checkpoint(model: nn.Module, checkpoint: Union[str, dict], map_location='cpu',
                            strict: bool = True, source: Optional[str] = None) -> dict:
    """Load a checkpoint (a path, or one already read from the file ``source``) into ``model``, full or
    trainable-only.

    Trainable-only checkpoints are completed by :func:`restore_frozen_weights` first; the load is strict by
    default (any missing or unexpected key is an error). Returns the checkpoint dict.
    """
    source = checkpoint if isinstance(checkpoint, str) else source
    if isinstance(checkpoint, str):
        checkpoint = read_checkpoint(checkpoint, map_location=map_location)
    if not isinstance(checkpoint, dict):
        raise FrozenWeightsError(f'not a checkpoint: {type(checkpoint).__name__}')
    restore_frozen_weights(model, checkpoint, source)
    _load_checkpoint_to_model(unwrap(model), checkpoint, strict=strict)
    return checkpoint


def droppable_frozen_digests(model_cfg: dict, seed: Optional[int], state: Dict[str, torch.Tensor],
                             trainable: Set[str]) -> Dict[str, str]:
    """Digests of the tensors of ``state`` that do not train and that a model built from ``model_cfg`` under
    ``seed`` reproduces bit for bit: those a checkpoint may leave out. Raises whatever building the model raises."""
    candidates: List[str] = [k for k in state if k not in trainable]
    if not candidates:
        return {}
    reference = build_model(model_cfg, seed).state_dict()
    same = {}
    for key in candidates:
        ref = reference.get(key)
        value = state[key]
        if (ref is not None and ref.dtype == value.dtype and ref.shape == value.shape
                and torch.equal(ref, value.to(ref.device))):
            same[key] = tensor_digest(value)
    return same
