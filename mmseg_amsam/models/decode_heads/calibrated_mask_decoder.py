"""SAM's mask decoder with LoRA on q/v (eq. 2-4) and mask calibration (eq. 9-12), as an mmseg decode head."""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from segment_anything.modeling import MaskDecoder, TwoWayTransformer

from ...utils.sam_checkpoint import load_sam_state_dict, load_state_into
from .lora import add_lora_to_attention
from .mask_calibration import MaskCalibration

# Decoder parts that train besides LoRA: the paper's "MLPs and transposed [convolutions]" and SAM's output tokens
# (as BLO-SAM). The IoU token trains too: the loss does not use its output, but it attends to the mask tokens in the
# transformer's token self-attention, so it does receive gradients.
DEFAULT_TRAINABLE = ('output_upscaling', 'output_hypernetworks_mlps', 'mask_tokens', 'iou_token')
# Decoder parts that receive gradients and still stay frozen, by design (every other one with a gradient trains):
FROZEN_BY_DESIGN = {
    'decoder.transformer.': 'the two-way transformer is adapted by LoRA on q/v only (paper eq. 2-4)',
}
# Where the classes' masks come from (see the class doc): SAM's layout keeps its single-mask token 0 unused.
TOKEN_LAYOUTS = ('sam', 'blosam')
TOKEN_KEYS = ('mask_tokens.weight', 'iou_prediction_head.layers.2.weight', 'iou_prediction_head.layers.2.bias')


@MODELS.register_module()
class CalibratedMaskDecoder(BaseDecodeHead):
    """segment-anything's ``MaskDecoder`` with ``num_multimask_outputs = num_classes`` outputs, softmax across them.

    For a binary task ``num_classes=2`` (background, foreground) as in BLO-SAM. The decoder's two-way transformer
    is frozen and gets LoRA of rank ``lora_rank`` on ``q_proj`` and ``v_proj`` of every attention (both self-attn
    layers, both cross-attns per block, final token->image attn); ``trainable`` names the other decoder parts that
    train. With ``lora_B = 0`` and ``calibration='none'`` the head computes exactly SAM's decoder.

    Loss resolution: ``loss_resolution='low_res'`` (default, as BLO-SAM) compares the decoder's low-resolution
    logits (``img_size / 4``, 64x64 at 256 px) with the ground truth resized to that grid by nearest neighbour;
    ``'input'`` upsamples the logits bilinearly to the input size (mmseg's usual behaviour).

    ``mask_output='single'`` (with ``num_classes=1``) returns SAM's single-mask token 0 instead -- what SAM itself
    outputs for one box prompt; used by the untrained plain-SAM baseline.

    ``token_layout``: ``'sam'`` (default) keeps SAM's layout, ``num_classes + 1`` mask tokens whose multimask
    outputs ``1..num_classes`` are the classes (token 0, SAM's single-mask output, is unused and frozen);
    ``'blosam'`` is BLO-SAM's code: ``num_classes`` mask tokens, outputs ``0..num_classes-1`` are the classes. The
    same weights give different logits in the two layouts (docs/reproduce.md, "Differences from BLO-SAM's code").

    ``class_prompts=True`` (multi-class AM-SAM, set by ``AMSAM(class_prompts=True)``): the decoder is the binary
    one (background / foreground outputs per prompt) and runs once per *class prompt*; :meth:`merge_class_prompts`
    turns the ``C = num_classes - 1`` prompts' outputs of an image into its ``num_classes`` semantic logits.

    Loading an official checkpoint: SAM has 4 mask tokens (1 + 3 multimask); token ``i < num_classes + 1`` and its
    hypernetwork MLP / IoU row come from the checkpoint; tokens beyond 4 keep their random initialisation.
    """

    def __init__(self, num_classes: int = 2, transformer_dim: int = 256, transformer_depth: int = 2,
                 transformer_mlp_dim: int = 2048, transformer_heads: int = 8, img_size: int = 256,
                 lora_rank: int = 4, calibration: str = 'sample', alpha: float = 0.7,
                 trainable: Sequence[str] = DEFAULT_TRAINABLE, loss_resolution: str = 'low_res',
                 mask_output: str = 'multimask', token_layout: str = 'sam', class_prompts: bool = False,
                 checkpoint: Optional[str] = None,
                 loss_decode=(dict(type='CrossEntropyLoss', use_sigmoid=False, avg_non_ignore=True,
                                   loss_weight=0.2), dict(type='ClassAveragedDiceLoss', loss_weight=0.8)),
                 init_cfg=None, **kwargs):
        super().__init__(in_channels=transformer_dim, channels=transformer_dim // 8, num_classes=num_classes,
                         loss_decode=list(loss_decode) if isinstance(loss_decode, tuple) else loss_decode,
                         init_cfg=init_cfg, **kwargs)
        del self.conv_seg  # the hypernetwork tokens are the classifier
        if self.out_channels != num_classes:
            raise ValueError('CalibratedMaskDecoder predicts one softmax channel per class (background included); '
                             f'use num_classes >= 2 and no out_channels (got out_channels={self.out_channels}).')
        if mask_output not in ('multimask', 'single') or (mask_output == 'single' and num_classes != 1):
            raise ValueError("mask_output is 'multimask' (one SAM multimask token per class) or 'single' (SAM's "
                             f"single-mask token 0, only with num_classes=1); got {mask_output!r}, "
                             f'num_classes={num_classes}')
        if token_layout not in TOKEN_LAYOUTS or (token_layout == 'blosam' and mask_output != 'multimask'):
            raise ValueError(f"CalibratedMaskDecoder: token_layout must be one of {TOKEN_LAYOUTS} ('blosam' only with "
                             f"mask_output='multimask'); got {token_layout!r} with mask_output={mask_output!r}")
        self.mask_output, self.token_layout = mask_output, token_layout
        self.first_output = 1 if token_layout == 'sam' else 0  # index of the first class's mask token
        if class_prompts and (num_classes < 2 or mask_output != 'multimask'):
            raise ValueError('CalibratedMaskDecoder: class_prompts needs num_classes >= 2 (background + classes) and '
                             f"mask_output='multimask'; got num_classes={num_classes}, mask_output={mask_output!r}")
        self.class_prompts = class_prompts
        self.outputs_per_prompt = 2 if class_prompts else num_classes  # class prompts: background / that class
        if loss_resolution not in ('low_res', 'input'):
            raise ValueError(f"loss_resolution must be 'low_res' or 'input', got {loss_resolution!r}")
        self.loss_resolution = loss_resolution
        self.low_res_size = (img_size // 16 * 4, img_size // 16 * 4)
        self.decoder = MaskDecoder(
            num_multimask_outputs=self.outputs_per_prompt - 1 + self.first_output, transformer_dim=transformer_dim,
            transformer=TwoWayTransformer(depth=transformer_depth, embedding_dim=transformer_dim,
                                          mlp_dim=transformer_mlp_dim, num_heads=transformer_heads),
            iou_head_depth=3, iou_head_hidden_dim=256)
        self.checkpoint = checkpoint
        if checkpoint:
            self._load_sam_decoder(checkpoint)
        self.freeze_all_but(trainable, self.outputs_per_prompt)
        self.num_lora_layers = add_lora_to_attention(self.decoder.transformer, lora_rank) if lora_rank else 0
        self.calibration = MaskCalibration(transformer_dim // 8, calibration, alpha)

    def freeze_all_but(self, trainable: Sequence[str], outputs: int) -> None:
        """Freeze the decoder except the ``trainable`` parts; the hypernetwork MLPs of masks that are never output
        (e.g. SAM's single-mask token 0) stay frozen too: they would get no gradient."""
        for name, p in self.decoder.named_parameters():
            p.requires_grad_(name.startswith(tuple(trainable)))
        used = range(1) if self.mask_output == 'single' else range(self.first_output, self.first_output + outputs)
        for i, mlp in enumerate(self.decoder.output_hypernetworks_mlps):
            if i not in used:
                mlp.requires_grad_(False)

    def fit_to_tokens(self, state: dict, token_keys: Sequence[str], skip: tuple = ()) -> Tuple[dict, tuple]:
        """An official decoder state fitted to this decoder's mask tokens (see the class doc): tokens (and their IoU
        rows) the checkpoint has are copied, hypernetwork MLPs beyond ours dropped, keys starting with ``skip``
        dropped. Returns ``(state, prefixes of our MLPs the checkpoint cannot fill)``."""
        own, n_own = self.decoder.state_dict(), self.decoder.num_mask_tokens
        adapted = {}
        for key, value in state.items():
            if key.startswith(skip) or (key.startswith('output_hypernetworks_mlps.') and
                                        int(key.split('.')[1]) >= n_own):
                continue  # more tokens in the checkpoint than classes here
            if key in token_keys and key in own and value.shape[0] != own[key].shape[0]:
                fill = own[key].clone()
                k = min(value.shape[0], fill.shape[0])
                fill[:k] = value[:k]
                value = fill
            adapted[key] = value
        return adapted, tuple(f'output_hypernetworks_mlps.{i}.' for i in range(4, n_own))

    def _load_sam_decoder(self, path: str) -> None:
        adapted, extra = self.fit_to_tokens(load_sam_state_dict(path, 'mask_decoder.'), TOKEN_KEYS)
        load_state_into(self.decoder, adapted, path, 'SAM mask decoder', ignore=extra)

    def forward(self, image_embeddings: torch.Tensor, image_pe: torch.Tensor, sparse: torch.Tensor,
                dense: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """One prompt set per image. Returns low-res class logits ``(B, num_classes, 4h, 4w)`` and IoU predictions.

        Same computation as ``MaskDecoder.predict_masks`` except that each image is paired with its own prompt
        (SAM's code repeats one image's embedding for many prompts), and the dot product is the calibration.
        """
        d = self.decoder
        output_tokens = torch.cat([d.iou_token.weight, d.mask_tokens.weight], dim=0)
        output_tokens = output_tokens.unsqueeze(0).expand(sparse.size(0), -1, -1)
        tokens = torch.cat((output_tokens, sparse.to(output_tokens.dtype)), dim=1)
        src = image_embeddings + dense
        pos_src = image_pe.expand(src.shape[0], -1, -1, -1)
        b, c, h, w = src.shape
        hs, src = d.transformer(src, pos_src, tokens)
        iou_token_out = hs[:, 0, :]
        mask_tokens_out = hs[:, 1:(1 + d.num_mask_tokens), :]
        src = src.transpose(1, 2).reshape(b, c, h, w)
        return self.calibrated_outputs(d.output_upscaling(src), mask_tokens_out, iou_token_out)

    def calibrated_outputs(self, upscaled: torch.Tensor, mask_tokens_out: torch.Tensor,
                           iou_token_out: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Hypernetwork tokens x upscaled embedding through the calibration (eq. 9-12), and the IoU head; the
        outputs this head returns (the classes, or SAM's single-mask token)."""
        d = self.decoder
        hyper_in = torch.stack(
            [d.output_hypernetworks_mlps[i](mask_tokens_out[:, i, :]) for i in range(d.num_mask_tokens)], dim=1)
        masks = self.calibration(upscaled, hyper_in)
        iou_pred = d.iou_prediction_head(iou_token_out)
        if self.mask_output == 'single':  # SAM's own choice for a single unambiguous prompt (plain SAM baseline)
            return masks[:, :1], iou_pred[:, :1]
        k, n = self.first_output, self.outputs_per_prompt  # 'sam': multimask outputs 1..n; 'blosam': 0..n-1
        return masks[:, k:k + n], iou_pred[:, k:k + n]

    def merge_class_prompts(self, logits: torch.Tensor) -> torch.Tensor:
        """``(B * C, 2, h, w)`` per-class-prompt (background, class) logits, image by image and class by class ->
        ``(B, C + 1, h, w)`` semantic logits ``[0, s_1, ..., s_C]`` with ``s_c = fg_c - bg_c``: each prompt's own
        softmax is ``sigmoid(s_c)``, and the semantic softmax picks background where every ``s_c < 0``, else the
        class with the largest ``s_c``. With one class it is the binary softmax exactly (a shift of both logits).
        """
        c = self.num_classes - 1
        pairs = logits.reshape(-1, c, 2, *logits.shape[-2:])
        scores = pairs[:, :, 1] - pairs[:, :, 0]
        return torch.cat([torch.zeros_like(scores[:, :1]), scores], dim=1)

    def _stack_batch_gt(self, batch_data_samples) -> torch.Tensor:
        gt = super()._stack_batch_gt(batch_data_samples)
        if self.loss_resolution == 'low_res' and gt.shape[-2:] != self.low_res_size:
            gt = F.interpolate(gt.float(), size=self.low_res_size, mode='nearest').long()
        return gt

