"""AM-SAM (paper Fig. 2): frozen SAM encoder + frozen box prompter -> prompt encoder + learnable prompt ->
LoRA mask decoder with mask calibration."""
import copy
from typing import Dict, List, Optional

import torch

from mmengine.logging import print_log
from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import add_prefix
from torch import Tensor

from ..backbones.embedding_cache import EmbeddingCache
from ..prompters.prompt_checks import require_prompts


@MODELS.register_module()
class AMSAM(BaseSegmentor):
    """AM-SAM segmentor.

    Args:
        backbone: the frozen image encoder (``SAMImageEncoder``; SAM 2: ``SAM2ImageEncoder``, whose output is a
            tuple with the high-resolution features, with ``SAM2PromptEncoder`` and ``CalibratedSAM2MaskDecoder``).
        decode_head: ``CalibratedMaskDecoder`` (LoRA + calibration; holds the loss ``loss_decode``: by default
            ``0.2 * CE + 0.8 * Dice``, i.e. eq. 5 with lambda = 0.8, on the low-resolution logits).
        prompt_encoder: SAM's frozen prompt encoder (``SAMPromptEncoder``).
        prompter: a frozen box prompter (``YOLOBoxPrompter``, ``MaskBoxPrompter``) or None for BLO-SAM's purely
            learned default prompt.
        learnable_prompt: the upper-level parameters (``LearnablePrompt``), initialised from SAM's
            ``no_mask_embed``; None freezes the prompt (plain SAM / SAMed-style baselines keep it, single level).
        sam_checkpoint: an official SAM checkpoint given to every SAM part that does not name its own.
        embedding_cache: ``dict(max_gb=4.0, disk_dir=None)`` caches the frozen encoder's output per distinct input
            (see ``EmbeddingCache``); None computes it every time. Off (with a log line) when the encoder trains
            (``backbone.lora_rank > 0`` or ``frozen=False``, e.g. SAMed).
        class_prompts: multi-class AM-SAM: each of the ``C = num_classes - 1`` foreground classes gets its own
            prompt -- the prompter's box for that class (``prompter.class_map``; a class not found takes the
            fallback) and its own learnable prompt -- and the decoder runs once per class prompt in one batched
            pass, the image embedding shared by its ``C`` prompts (as SAM decodes several prompts per image); the
            per-class (background, class) logits form the semantic map (``merge_class_prompts``). False (default):
            one prompt per image, the decoder's ``num_classes`` outputs are the classes (the binary tasks).
        img_size: SAM input size (default 256 as BLO-SAM), the one source of truth: given to every SAM part; a part
            or ``data_preprocessor.size`` that names another size is refused at build, and an input of another
            size (the pipelines' ``Resize`` scale) at its first forward, with a message naming the fields.
        pretrained: accepted as mmseg's ``EncoderDecoder`` accepts it (``mmseg.apis.init_model`` and mmseg's tools
            set ``model.pretrained = None``); AM-SAM's pretrained weights are ``sam_checkpoint``, so any other value
            is refused with a message saying so.

    ``predict`` returns ``SegDataSample`` s with ``seg_logits`` (softmax-able class logits) and ``pred_sem_seg`` at
    the original image size (mmseg's ``postprocess_result``); with a prompter, each sample's metainfo also holds
    ``prompt_box`` (the detected xyxy box in network-input pixels, or None where the prompter fell back),
    ``prompt_fallback`` and ``prompt_iou`` (see ``BoxPrompter``).
    """

    def __init__(self, backbone: dict, decode_head: dict, prompt_encoder: dict = dict(type='SAMPromptEncoder'),
                 prompter: Optional[dict] = None, learnable_prompt: Optional[dict] = dict(type='LearnablePrompt'),
                 sam_checkpoint: Optional[str] = None, img_size: int = 256, class_prompts: bool = False,
                 embedding_cache: Optional[dict] = dict(max_gb=4.0, disk_dir=None), data_preprocessor=None,
                 train_cfg=None, test_cfg=None, init_cfg=None, pretrained: Optional[str] = None):
        if pretrained is not None:
            raise ValueError(f'AMSAM: model.pretrained={pretrained!r} is not used by AM-SAM: its pretrained weights '
                             'are an official SAM checkpoint, given as model.sam_checkpoint (every SAM part loads '
                             f'it). Set model.sam_checkpoint={pretrained!r} if that file is a SAM checkpoint, and '
                             'model.pretrained=None.')
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        parts = [copy.deepcopy(c) for c in (backbone, prompt_encoder, decode_head)]
        check_img_size(img_size, data_preprocessor, dict(zip(('backbone', 'prompt_encoder', 'decode_head'), parts)))
        self.img_size = img_size
        for cfg in parts:
            cfg.setdefault('img_size', img_size)
            if sam_checkpoint and not cfg.get('checkpoint'):
                cfg['checkpoint'] = sam_checkpoint
        if class_prompts:
            parts[2]['class_prompts'] = True
        self.backbone = MODELS.build(parts[0])
        self.prompt_encoder = MODELS.build(parts[1])
        self.decode_head = MODELS.build(parts[2])
        self.num_classes = self.decode_head.num_classes
        self.out_channels = self.decode_head.out_channels
        self.align_corners = self.decode_head.align_corners
        self.class_prompts = class_prompts
        self.prompts_per_image = self.num_classes - 1 if class_prompts else 1
        self.prompter = MODELS.build(prompter) if prompter else None
        if self.prompter is not None and class_prompts:
            self.prompter.set_prompt_labels(range(1, self.num_classes))
        self.learnable_prompt = None
        if learnable_prompt:
            learnable_prompt = dict(learnable_prompt)
            if self.prompter is None:  # no box: a box residual would be a parameter that never gets a gradient
                learnable_prompt['learn_box_residual'] = False
            if class_prompts:
                learnable_prompt['num_prompts'] = self.prompts_per_image
            self.learnable_prompt = MODELS.build(learnable_prompt)
            self.learnable_prompt.init_from(self.prompt_encoder.no_mask_embed)
        self.train_cfg, self.test_cfg = train_cfg or {}, test_cfg or {}
        self.embedding_cache = None
        if embedding_cache is not None and self.encoder_trains:
            print_log('AMSAM: embedding cache off: the image encoder trains (encoder LoRA / frozen=False), its output '
                      'changes with every step', logger='current')
        elif embedding_cache is not None:
            cache_cfg = dict(embedding_cache)
            self.embedding_cache = EmbeddingCache(self.backbone.cache_key,
                                                  max_bytes=int(cache_cfg.get('max_gb', 4.0) * 2**30),
                                                  disk_dir=cache_cfg.get('disk_dir'))
        self.cache_in_training = True  # switched off by EmbeddingCacheHook when training augmentation is random

    @property
    def encoder_trains(self) -> bool:
        """True when the image encoder has trainable parameters (SAMed's encoder LoRA): no cache, no shared features."""
        return not getattr(self.backbone, 'is_frozen', True)

    # ---- the forward path of Fig. 2 -------------------------------------------------------------------------
    def extract_feat(self, inputs: Tensor) -> Tensor:
        """Image embeddings ``(B, 256, img_size/16, img_size/16)`` from the frozen encoder (cached)."""
        if self.embedding_cache is None or (self.training and not self.cache_in_training) or torch.jit.is_tracing():
            return self.backbone(inputs)  # traced (FLOP count, export): the encoder itself, never a cache hit
        return self.embedding_cache(inputs, self.backbone)

    def frozen_features(self, inputs: Tensor, data_samples: List[SegDataSample]) -> Dict[str, Tensor]:
        """Everything the frozen parts give for a batch: image embeddings, box tokens, dense embedding.

        With a frozen encoder nothing here depends on trained parameters (the parts run without autograd), so a
        training step computes it once per batch and reuses it for every pass (both levels, the unrolled virtual
        step, the Hessian-vector product). When the encoder trains (``encoder_trains``), the embeddings carry its
        graph.
        """
        return dict(self.prompt_features(inputs, data_samples), feats=self.extract_feat(inputs))

    def prompt_features(self, inputs: Tensor, data_samples: List[SegDataSample],
                        detect: bool = True) -> Dict[str, Tensor]:
        """The prompt part of ``frozen_features``: boxes (prompter) and SAM's sparse / dense prompt embeddings. A
        step whose encoder trains computes it once per batch and only the image embeddings per pass. ``detect=False``
        does not run the prompter: every image (and class) is prompted as one where nothing was found."""
        check_input_size(inputs, self.img_size)
        boxes = has_box = None
        if self.prompter is not None:
            if detect:
                boxes, has_box = self.prompter(inputs, data_samples)  # has_box: found (False: fell back)
            else:  # the prompter's whole-image box, marked not found: (B, 4) / (B,); class prompts (B, C, ...)
                shape = (len(data_samples), self.prompts_per_image)[:2 if self.class_prompts else 1]
                boxes = torch.tensor([self.prompter.whole_image_box(s, inputs) for s in data_samples],
                                     device=inputs.device).reshape(shape[0], *[1] * (len(shape) - 1), 4)
                boxes, has_box = boxes.expand(*shape, 4), torch.zeros(shape, dtype=torch.bool, device=inputs.device)
            require_prompts(self, has_box, data_samples)  # fallback='none' without a learned prompt
            has_box = self.prompter.prompted(has_box)  # from here: SAM gets a box (found or whole-image fallback)
            if self.class_prompts:  # (B, C, 4) -> one prompt per image and class, image by image
                boxes, has_box = boxes.reshape(-1, 4), has_box.reshape(-1)
        sparse, dense = self.prompt_encoder(boxes, has_box, inputs.shape[0] * self.prompts_per_image)
        return dict(sparse=sparse, dense=dense, has_box=has_box, boxes=boxes)

    def decode_from(self, frozen: Dict[str, Tensor]) -> Tensor:
        """Learnable prompt + calibrated decoder: low-res class logits ``(B, num_classes, img_size/4, img_size/4)``.

        With ``class_prompts`` every (image, class) prompt is decoded, then merged per image. An image's logits do
        not depend on the other images of its batch (except with ``calibration='batch'``,
        eq. 11 taken over the batch): in a batch mixing images with and without a box, the two groups are decoded
        apart, so a box-less image gets no sparse token, as when it is alone (not SAM's two padding tokens).
        """
        sparse, dense, has_box = frozen['sparse'], frozen['dense'], frozen['has_box']
        if self.learnable_prompt is not None:
            sparse, dense = self.learnable_prompt(sparse, dense, has_box)
        pe, feats = self.prompt_encoder.dense_pe(), frozen['feats']
        if self.class_prompts:  # each image's embedding once per class prompt (prompt p is image p // C)
            image_of = torch.arange(sparse.shape[0], device=sparse.device) // self.prompts_per_image
            feats = select_images(feats, image_of)
        if has_box is None or sparse.shape[1] == 0 or bool(has_box.all()):
            logits = self.decode_head(feats, pe, sparse, dense)[0]
        else:
            with_box, without = has_box.nonzero().flatten(), (~has_box).nonzero().flatten()
            boxed = self.decode_head(select_images(feats, with_box), pe, sparse[with_box], dense[with_box])[0]
            boxless = self.decode_head(select_images(feats, without), pe, sparse[without, :0], dense[without])[0]
            logits = torch.cat([boxed, boxless])[torch.argsort(torch.cat([with_box, without]))]
        return self.decode_head.merge_class_prompts(logits) if self.class_prompts else logits

    def decode(self, inputs: Tensor, data_samples: List[SegDataSample]) -> Tensor:
        return self.decode_from(self.frozen_features(inputs, data_samples))

    def loss_from(self, frozen: Dict[str, Tensor], data_samples: List[SegDataSample]) -> dict:
        """Eq. 5 on the low-resolution logits (see ``CalibratedMaskDecoder.loss_resolution``)."""
        return add_prefix(self.decode_head.loss_by_feat(self.decode_from(frozen), data_samples), 'decode')

    def train_step(self, data, optim_wrapper):
        """mmengine's single-optimizer step. A bi-level batch (``{'lower': D1, 'upper': D2}``) is stepped by the
        engine (``mmseg_amsam.engine.bilevel.bilevel_train_step``, called by the ``BiLevel*TrainLoop`` s), which
        uses ``frozen_features`` and ``loss_from`` above."""
        if isinstance(data, dict) and 'lower' in data and 'upper' in data:
            raise TypeError('AMSAM.train_step got a bi-level batch {lower: D1, upper: D2}: bi-level steps are run by '
                            "the engine's bilevel_train_step (train_cfg type='BiLevelEpochBasedTrainLoop' or "
                            "'BiLevelIterBasedTrainLoop' call it).")
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
        return self.postprocess_result(seg_logits, data_samples)  # metainfo: prompt_box etc. (BoxPrompter)

    def _forward(self, inputs: Tensor, data_samples: Optional[List[SegDataSample]] = None) -> Tensor:
        """Tensor mode: low-resolution logits. Without ``data_samples`` (mmseg's ``get_flops.py``, tracing) the
        detector (outside the module tree; its Python post-processing cannot be traced) does not run: every image is
        prompted as one where it found nothing (``prompter.fallback``), at a detected box's cost, detector excluded."""
        if data_samples is None:
            samples = [SegDataSample(metainfo=dict(img_shape=tuple(inputs.shape[-2:])))
                       for _ in range(inputs.shape[0])]
            return self.decode_from(dict(self.prompt_features(inputs, samples, detect=False),
                                         feats=self.extract_feat(inputs)))
        return self.decode(inputs, data_samples)


def select_images(feats, index: Tensor):
    """Images ``index`` of the encoder output: a tensor ``(B, ...)`` or a tuple of them (SAM 2: the image embedding
    and its high-resolution features), each indexed on its batch dimension."""
    if isinstance(feats, (tuple, list)):
        return type(feats)(f[index] for f in feats)
    return feats[index]


def check_img_size(img_size: int, data_preprocessor, parts: Dict[str, dict]) -> None:
    """One image size: ``model.img_size``; a part or the preprocessor naming another one is a config error."""
    for name, cfg in parts.items():
        if cfg.get('img_size', img_size) != img_size:
            raise ValueError(f'AMSAM: model.{name}.img_size={cfg["img_size"]} but model.img_size={img_size}: SAM has '
                             f'one input size; remove model.{name}.img_size (model.img_size is given to every part).')
    size = (data_preprocessor or {}).get('size') if isinstance(data_preprocessor, dict) else None
    if size is not None and tuple(size) != (img_size, img_size):
        raise ValueError(f'AMSAM: model.data_preprocessor.size={tuple(size)} but model.img_size={img_size}: SAM '
                         f'takes square {img_size}x{img_size} inputs; set data_preprocessor.size=({img_size}, '
                         f'{img_size}) and the Resize scale of the train/val/test pipelines to the same size.')


def check_input_size(inputs: Tensor, img_size: int) -> None:
    if tuple(inputs.shape[-2:]) != (img_size, img_size):
        raise ValueError(f'AMSAM: got a {inputs.shape[-2]}x{inputs.shape[-1]} input batch but model.img_size='
                         f'{img_size}: SAM takes square {img_size}x{img_size} inputs. Set the Resize scale of the '
                         f'train/val/test pipelines to ({img_size}, {img_size}) (keep_ratio=False) and '
                         f'data_preprocessor.size to ({img_size}, {img_size}), or change model.img_size.')
