"""Save only the trained tensors in checkpoints; complete them from the config on load.

The rules (what is left out, what is recorded, what loading checks) live in ``engine/trainable_checkpoint.py``;
this hook applies them at mmengine's save/load points. For the duration of the run it also reads checkpoint files
with the torch >= 2.6-safe loader (``engine/checkpoint_loading.py``).
"""
from contextlib import ExitStack
from typing import Dict, Optional

from mmengine.hooks import Hook
from mmseg.registry import HOOKS
from torch import nn

from ...utils.model_wrapper import unwrap_model as unwrap
from ...utils.tensor_digest import tensor_digest
from ..checkpoint_loading import amsam_checkpoint_loader
from ..trainable_checkpoint import (FORMAT, META_KEY, detector_digest, droppable_frozen_digests, frozen_sources,
                                    restore_frozen_weights)


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
        self._scope = ExitStack()

    def before_run(self, runner) -> None:
        # the seed the runner built its model with (a resume may later switch runner.seed to the checkpoint's)
        self._build_seed = runner.seed
        self._scope.enter_context(amsam_checkpoint_loader())  # load_from / --resume / tools/test.py read through it

    def after_run(self, runner) -> None:
        # mmengine skips after_run when the run raises; the loader then stays ours until the process ends (it only
        # reads mmengine's own checkpoints more safely, see checkpoint_loading)
        self._scope.close()

    def _reference_digests(self, runner, model: nn.Module, state: dict, trainable: set) -> Dict[str, str]:
        model_cfg = runner.cfg.get('model') if runner.cfg else None
        if not isinstance(model_cfg, dict):
            runner.logger.warning('TrainableOnlyCheckpointHook: the runner has no model config to rebuild the frozen '
                                  'weights from; saving full checkpoints.')
            return {}
        try:
            return droppable_frozen_digests(model_cfg, self._build_seed, state, trainable)
        except Exception as exc:  # never lose a checkpoint over this: keep it full
            runner.logger.warning(f'TrainableOnlyCheckpointHook: cannot rebuild the model from its config '
                                  f'({type(exc).__name__}: {exc}); saving full checkpoints.')
            return {}

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
        restore_frozen_weights(runner.model, checkpoint, getattr(runner, '_load_from', None))
