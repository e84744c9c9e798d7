"""AM-SAM (paper Fig. 2): frozen SAM encoder + frozen box prompter -> prompt encoder + learnable prompt ->
LoRA mask decoder with mask calibration."""
import copy
from typing import Dict, List, Optional

import torch
from mmengine.optim import OptimWrapperDict

from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import add_prefix
from torch import Tensor

from ...engine.bilevel_step import bilevel_train_step
from ..utils.embedding_cache import EmbeddingCache
from ..prompters.prompt_checks import require_prompts


@MODELS.register_module()
class AMSAM(BaseSegmentor):
    """AM-SAM segmentor.

    Args:
        backbone: the frozen image encoder (``SAMImageEncoder``).
        decode_head: ``CalibratedMaskDecoder`` (LoRA + calibration; holds the loss ``loss_decode``: by default
            ``0.2 * CE + 0.8 * Dice``, i.e. eq. 5 with lambda = 0.8, on the low-resolution logits).
        prompt_encoder: SAM's frozen prompt encoder (``SAMPromptEncoder``).
        prompter: a frozen box prompter (``YOLOBoxPrompter``, ``MaskBoxPrompter``) or None for BLO-SAM's purely
            learned default prompt.
        learnable_prompt: the upper-level parameters (``LearnablePrompt``), initialised from SAM's
            ``no_mask_embed``; None freezes the prompt (plain SAM / SAMed-style baselines keep it, single level).
        sam_checkpoint: an official SAM checkpoint given to every SAM part that does not name its own.
        embedding_cache: ``dict(max_gb=4.0, disk_dir=None)`` caches the frozen encoder's output per distinct input
            (see ``EmbeddingCache``); None computes it every time. Ignored when the encoder is not frozen.
        img_size: SAM input size (default 256 as BLO-SAM), given to every SAM part that does not name its own.

    ``predict`` returns ``SegDataSample`` s with ``seg_logits`` (softmax-able class logits) and ``pred_sem_seg`` at
    the original image size (mmseg's ``postprocess_result``); with a prompter, each sample's metainfo also holds
    ``prompt_box``: the xyxy box the prediction used, in network-input pixels (``img_shape``), or None.
    """

    def __init__(self, backbone: dict, decode_head: dict, prompt_encoder: dict = dict(type='SAMPromptEncoder'),
                 prompter: Optional[dict] = None, learnable_prompt: Optional[dict] = dict(type='LearnablePrompt'),
                 sam_checkpoint: Optional[str] = None, img_size: int = 256,
                 embedding_cache: Optional[dict] = dict(max_gb=4.0, disk_dir=None), data_preprocessor=None,
                 train_cfg=None, test_cfg=None, init_cfg=None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        parts = [copy.deepcopy(c) for c in (backbone, prompt_encoder, decode_head)]
        for cfg in parts:
            cfg.setdefault('img_size', img_size)
            if sam_checkpoint and not cfg.get('checkpoint'):
                cfg['checkpoint'] = sam_checkpoint
        self.backbone = MODELS.build(parts[0])
        self.prompt_encoder = MODELS.build(parts[1])
        self.decode_head = MODELS.build(parts[2])
        self.num_classes = self.decode_head.num_classes
        self.out_channels = self.decode_head.out_channels
        self.align_corners = self.decode_head.align_corners
        self.prompter = MODELS.build(prompter) if prompter else None
        self.learnable_prompt = None
        if learnable_prompt:
            self.learnable_prompt = MODELS.build(learnable_prompt)
            self.learnable_prompt.init_from(self.prompt_encoder.no_mask_embed)
        self.train_cfg, self.test_cfg = train_cfg or {}, test_cfg or {}
        self.embedding_cache = None
        if embedding_cache is not None and getattr(self.backbone, 'is_frozen', False):
            cache_cfg = dict(embedding_cache)
            self.embedding_cache = EmbeddingCache(self.backbone.cache_key,
                                                  max_bytes=int(cache_cfg.get('max_gb', 4.0) * 2**30),
                                                  disk_dir=cache_cfg.get('disk_dir'))
        self.cache_in_training = True  # switched off by EmbeddingCacheHook when training augmentation is random

    # ---- the forward path of Fig. 2 -------------------------------------------------------------------------
    def extract_feat(self, inputs: Tensor) -> Tensor:
        """Image embeddings ``(B, 256, img_size/16, img_size/16)`` from the frozen encoder (cached)."""
        if self.embedding_cache is None or (self.training and not self.cache_in_training):
            return self.backbone(inputs)
        return self.embedding_cache(inputs, self.backbone)

    @torch.no_grad()
    def frozen_features(self, inputs: Tensor, data_samples: List[SegDataSample]) -> Dict[str, Tensor]:
        """Everything the frozen parts give for a batch: image embeddings, box tokens, dense embedding.

        Nothing here depends on trained parameters, so a training step computes it once per batch and reuses it
        for every pass (both levels, the unrolled virtual step, the finite differences).
        """
        boxes = has_box = None
        if self.prompter is not None:
            boxes, has_box = self.prompter(inputs, data_samples)
            require_prompts(self, has_box, data_samples)  # fallback='none' without a learned prompt
        sparse, dense = self.prompt_encoder(boxes, has_box, inputs.shape[0])
        return dict(feats=self.extract_feat(inputs), sparse=sparse, dense=dense, has_box=has_box, boxes=boxes)

    def decode_from(self, frozen: Dict[str, Tensor]) -> Tensor:
        """Learnable prompt + calibrated decoder: low-res class logits ``(B, num_classes, img_size/4, img_size/4)``."""
        sparse, dense = frozen['sparse'], frozen['dense']
        if self.learnable_prompt is not None:
            sparse, dense = self.learnable_prompt(sparse, dense, frozen['has_box'])
        logits, _ = self.decode_head(frozen['feats'], self.prompt_encoder.dense_pe(), sparse, dense)
        return logits

    def decode(self, inputs: Tensor, data_samples: List[SegDataSample]) -> Tensor:
        return self.decode_from(self.frozen_features(inputs, data_samples))

    def loss_from(self, frozen: Dict[str, Tensor], data_samples: List[SegDataSample]) -> dict:
        """Eq. 5 on the low-resolution logits (see ``CalibratedMaskDecoder.loss_resolution``)."""
        return add_prefix(self.decode_head.loss_by_feat(self.decode_from(frozen), data_samples), 'decode')

    def train_step(self, data, optim_wrapper):
        """Bi-level step when given ``{'lower': D1 batch, 'upper': D2 batch}`` and an ``OptimWrapperDict`` with
        ``lower``/``upper`` (see ``BiLevelIterBasedTrainLoop``); otherwise mmengine's single-optimizer step.
        ``train_cfg=dict(unrolled=True)`` switches the upper level to the second-order hypergradient."""
        if isinstance(optim_wrapper, OptimWrapperDict) and isinstance(data, dict) and 'lower' in data:
            return bilevel_train_step(self, data, optim_wrapper, unrolled=self.train_cfg.get('unrolled', False),
                                      fd_eps=self.train_cfg.get('fd_eps', 0.01))
        return super().train_step(data, optim_wrapper)

    # ---- mmseg BaseSegmentor API ----------------------------------------------------------------------------
    def encode_decode(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        samples = [SegDataSample(metainfo=meta) for meta in batch_img_metas]
        return self.decode_head.predict_by_feat(self.decode(inputs, samples), batch_img_metas)

    def loss(self, inputs: Tensor, data_samples: List[SegDataSample]) -> dict:
        return self.loss_from(self.frozen_features(inputs, data_samples), data_samples)

    def predict(self, inputs: Tensor, data_samples: Optional[List[SegDataSample]] = None) -> List[SegDataSample]:
        if data_samples is None:
            h, w = inputs.shape[-2:]
            data_samples = [SegDataSample(metainfo=dict(ori_shape=(h, w), img_shape=(h, w), pad_shape=(h, w),
                                                        padding_size=[0, 0, 0, 0]))
                            for _ in range(inputs.shape[0])]
        metas = [s.metainfo for s in data_samples]
        frozen = self.frozen_features(inputs, data_samples)
        seg_logits = self.decode_head.predict_by_feat(self.decode_from(frozen), metas)
        results = self.postprocess_result(seg_logits, data_samples)
        if frozen['boxes'] is not None:  # the prompt each prediction used (network-input pixels, see img_shape)
            for sample, box, found in zip(results, frozen['boxes'].tolist(), frozen['has_box'].tolist()):
                sample.set_metainfo(dict(prompt_box=tuple(box) if found else None))
        return results

    def _forward(self, inputs: Tensor, data_samples: Optional[List[SegDataSample]] = None) -> Tensor:
        if data_samples is None:
            data_samples = [SegDataSample(metainfo=dict(img_shape=tuple(inputs.shape[-2:])))
                            for _ in range(inputs.shape[0])]
        return self.decode(inputs, data_samples)
