"""Any mmdet 3.x detector as the automated prompter (config + checkpoint through ``mmdet.apis``)."""
import os.path as osp
import pickle
from typing import Dict, Optional

import numpy as np
import torch
from mmseg.registry import MODELS

from ...utils.error_text import error_summary
from ...utils.file_stamp import file_stamp
from .detector_box_prompter import DetectorBoxPrompter
from .yolo_weights import DetectorWeightsError


def _unreadable_checkpoint(exc: BaseException) -> bool:
    """torch.load's errors for a damaged or code-carrying file (not a bug elsewhere in building the detector)."""
    text = str(exc)
    return not isinstance(exc, RuntimeError) or 'PytorchStreamReader' in text or 'Weights only load failed' in text


@MODELS.register_module()
class MMDetBoxPrompter(DetectorBoxPrompter):
    """Box prompts from an mmdet detector: ``mmdet.apis.init_detector(config, checkpoint)`` and
    ``inference_detector`` on each image alone (its own test pipeline resizes it; boxes come back in the image's
    pixels). Same guarantees, class-name filter, box choice and telemetry as ``YOLOBoxPrompter``
    (``DetectorBoxPrompter``).

    Args:
        config: an mmdet config file (its ``test_dataloader`` pipeline is used for inference).
        checkpoint: its weights; None keeps the random initialisation (tests).
        classes: names (the checkpoint's ``dataset_meta['classes']``, else the config's ``metainfo``, else COCO's
            when the head has 80 classes) or ids.
        Other arguments: ``DetectorBoxPrompter``.

    mmdet builds in its own registry scope; the scope is switched only around its calls
    (``DefaultScope.overwrite_default_scope`` restores the scopes as they were, also those mmdet created), so
    mmseg's default scope is unchanged for the rest of the process.
    """

    def __init__(self, config: str, checkpoint: Optional[str] = None, conf: float = 0.3, classes=None,
                 fallback: str = 'image', **kwargs):
        super().__init__(classes=classes, conf=conf, fallback=fallback, **kwargs)
        if not osp.isfile(config):
            raise FileNotFoundError(f'MMDetBoxPrompter: mmdet config {config!r} not found (model.prompter.config)')
        if checkpoint is not None and not osp.isfile(checkpoint):
            raise FileNotFoundError(f'MMDetBoxPrompter: checkpoint {checkpoint!r} not found '
                                    '(model.prompter.checkpoint)')
        from mmdet.apis import init_detector
        from mmdet.utils import register_all_modules
        from mmengine.registry import DefaultScope
        register_all_modules(init_default_scope=False)
        with DefaultScope.overwrite_default_scope('mmdet'):
            # palette='random': mmdet would otherwise build the config's test dataset only to read its palette
            try:  # mmengine reads the checkpoint with torch.load's default: weights-only since torch 2.6
                detector = init_detector(config, checkpoint, device='cpu', palette='random')
            except (pickle.UnpicklingError, EOFError, RuntimeError) as exc:
                if checkpoint is None or not _unreadable_checkpoint(exc):
                    raise
                raise DetectorWeightsError(
                    f'MMDetBoxPrompter: cannot read checkpoint {checkpoint!r} ({error_summary(exc)}): it is '
                    'truncated, corrupt, not a PyTorch checkpoint or names objects that loading would have to run '
                    '(nothing in it was run). Use the checkpoint your mmdet training wrote or download it again '
                    '(model.prompter.checkpoint).') from exc
        for p in detector.parameters():
            p.requires_grad_(False)
        detector.eval()
        object.__setattr__(self, 'detector', detector)  # frozen and not part of the checkpoint (as the YOLO one)
        self.config, self.checkpoint = config, checkpoint
        self.stamps = (file_stamp(config), file_stamp(checkpoint) if checkpoint else None)
        self.resolve_classes()

    @property
    def class_names(self) -> Dict[int, str]:
        # with checkpoint=None mmdet's init_detector sets COCO's names whatever the head: the config's come first then
        names = (self.detector.cfg.get('metainfo') or {}).get('classes')
        if self.checkpoint is not None or not names:
            names = (getattr(self.detector, 'dataset_meta', None) or {}).get('classes') or names
        if names:
            return {i: str(n) for i, n in enumerate(names)}
        from .detector_classes import coco_names
        num = self.detector.cfg.model.get('bbox_head', {}).get('num_classes')
        return coco_names() if num == 80 else {i: str(i) for i in range(int(num or 0))}

    def settings(self) -> tuple:
        return super().settings() + self.stamps

    def detector_module(self) -> torch.nn.Module:
        """The detector's network (frozen, outside the state dict): what a trained checkpoint records a digest of."""
        return self.detector

    def detect(self, image: np.ndarray, device: str) -> np.ndarray:
        from mmdet.apis import inference_detector
        from mmengine.registry import DefaultScope
        if next(self.detector.parameters()).device.type != torch.device(device).type:
            self.detector.to(device)
        with DefaultScope.overwrite_default_scope('mmdet'):
            result = inference_detector(self.detector, image)
        inst = result.pred_instances
        bboxes, scores, labels = inst.bboxes.cpu().numpy(), inst.scores.cpu().numpy(), inst.labels.cpu().numpy()
        keep = scores >= self.conf
        if self.class_ids is not None:
            keep &= np.isin(labels, self.class_ids)
        return np.concatenate([bboxes[keep], scores[keep, None], labels[keep, None]], axis=1)

