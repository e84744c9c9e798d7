"""SAM 2's mask decoder with LoRA on q/v (eq. 2-4) and mask calibration (eq. 9-12), as an mmseg decode head."""
import contextlib
from typing import Optional, Sequence, Tuple

import torch
from mmseg.registry import MODELS
from sam2.modeling.sam.mask_decoder import MaskDecoder
from sam2.modeling.sam.transformer import TwoWayTransformer
from torch.nn.attention import SDPBackend, sdpa_kernel

from ...utils.sam2_checkpoint import load_sam2_state_dict, load_sam2_state_into, strip_prefix
from .calibrated_mask_decoder import CalibratedMaskDecoder
from .lora import add_lora_to_attention
from .mask_calibration import MaskCalibration

# As CalibratedMaskDecoder's, plus SAM 2's object-score token: it attends to the mask tokens in the token
# self-attention, so it receives gradients (its head, pred_obj_score_head, does not: its output is unused).
SAM2_TRAINABLE = ('output_upscaling', 'output_hypernetworks_mlps', 'mask_tokens', 'iou_token', 'obj_score_token')
# Rows per mask token: the first ones come from the checkpoint (SAM 2 has 1 + 3 mask tokens).
SAM2_TOKEN_KEYS = ('mask_tokens.weight', 'iou_prediction_head.layers.2.weight', 'iou_prediction_head.layers.2.bias')
HIGH_RES_CONVS = ('conv_s0.', 'conv_s1.')  # applied to the image features by SAM2ImageEncoder (cached with them)


@MODELS.register_module()
class CalibratedSAM2MaskDecoder(CalibratedMaskDecoder):
    """sam2's ``MaskDecoder`` (two-way transformer, high-resolution features, object-score token) with
    ``CalibratedMaskDecoder``'s training rules: ``num_classes`` softmax outputs taken from SAM's multimask tokens
    (``token_layout``, ``mask_output``), LoRA of rank ``lora_rank`` on ``q_proj`` / ``v_proj`` of every attention
    of the two-way transformer (frozen otherwise), ``trainable`` decoder parts, mask calibration and the loss at
    ``loss_resolution``. With ``lora_B = 0`` and ``calibration='none'`` it computes exactly sam2's
    ``MaskDecoder.predict_masks`` (multimask outputs).

    ``forward(image_embeddings, image_pe, sparse, dense)`` takes ``SAM2ImageEncoder``'s tuple ``(image_embed,
    feat_s0, feat_s1)`` as ``image_embeddings``; the high-resolution features join the upscaling path as in SAM 2
    (``use_high_res_features``). ``conv_s0`` / ``conv_s1``, which SAM 2 keeps in its decoder, live in the encoder.

    Loading an official SAM 2 checkpoint (``sam_mask_decoder.*``): SAM 2 has 4 mask tokens (1 + 3 multimask);
    token ``i < num_classes + 1`` ('sam' layout) and its hypernetwork MLP / IoU row come from the checkpoint; tokens
    beyond 4 keep their random initialisation.
    """

    def __init__(self, num_classes: int = 2, transformer_dim: int = 256, transformer_depth: int = 2,
                 transformer_mlp_dim: int = 2048, transformer_heads: int = 8, img_size: int = 256,
                 lora_rank: int = 4, calibration: str = 'sample', alpha: float = 0.7,
                 trainable: Sequence[str] = SAM2_TRAINABLE, mask_output: str = 'multimask',
                 token_layout: str = 'sam', checkpoint: Optional[str] = None, use_high_res_features: bool = True,
                 pred_obj_scores: bool = True, pred_obj_scores_mlp: bool = True,
                 iou_prediction_use_sigmoid: bool = True, **kwargs):
        # CalibratedMaskDecoder checks the arguments and sets up the mmseg head (losses, calibration); its SAM 1
        # decoder is then replaced by SAM 2's (built without transformer weights worth loading: small, random).
        super().__init__(num_classes=num_classes, transformer_dim=transformer_dim, transformer_depth=1,
                         transformer_mlp_dim=8, transformer_heads=transformer_heads, img_size=img_size, lora_rank=0,
                         calibration=calibration, alpha=alpha, trainable=(), mask_output=mask_output,
                         token_layout=token_layout, checkpoint=None, **kwargs)
        self.mask_output, self.token_layout = mask_output, token_layout
        self.first_output = 1 if token_layout == 'sam' else 0  # index of the first class's mask token
        self.decoder = MaskDecoder(
            num_multimask_outputs=num_classes - 1 + self.first_output,
            transformer_dim=transformer_dim,
            transformer=TwoWayTransformer(depth=transformer_depth, embedding_dim=transformer_dim,
                                          mlp_dim=transformer_mlp_dim, num_heads=transformer_heads),
            iou_head_depth=3, iou_head_hidden_dim=256, use_high_res_features=use_high_res_features,
            iou_prediction_use_sigmoid=iou_prediction_use_sigmoid, pred_obj_scores=pred_obj_scores,
            pred_obj_scores_mlp=pred_obj_scores_mlp)
        if use_high_res_features:
            del self.decoder.conv_s0, self.decoder.conv_s1  # in SAM2ImageEncoder
        self.checkpoint = checkpoint
        if checkpoint:
            self._load_sam2_decoder(checkpoint)
        self.freeze_all_but(trainable, num_classes)
        self.lora_rank = lora_rank
        self.num_lora_layers = add_lora_to_attention(self.decoder.transformer, lora_rank) if lora_rank else 0
        self.calibration = MaskCalibration(transformer_dim // 8, calibration, alpha)

    def _load_sam2_decoder(self, path: str) -> None:
        state = strip_prefix(load_sam2_state_dict(path, ('sam_mask_decoder.', )), 'sam_mask_decoder.')
        adapted, extra = self.fit_to_tokens(state, SAM2_TOKEN_KEYS, skip=HIGH_RES_CONVS)
        load_sam2_state_into(self.decoder, adapted, path, 'SAM 2 mask decoder', ignore=extra)

    @staticmethod
    def _attention_backend():
        """sam2's attention calls ``F.scaled_dot_product_attention``, whose fused kernels (flash / memory-efficient,
        CPU and CUDA) have no double backward; the unrolled hypergradient (exact Hessian-vector product) needs one.
        With autograd on, the math kernel runs (same result up to rounding); without (inference), sam2's choice."""
        return sdpa_kernel(SDPBackend.MATH) if torch.is_grad_enabled() else contextlib.nullcontext()

    def forward(self, image_embeddings, image_pe: torch.Tensor, sparse: torch.Tensor,
                dense: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """One prompt set per image. ``image_embeddings``: ``(embed, feat_s0, feat_s1)`` (or the embedding alone
        without ``use_high_res_features``). Returns low-res class logits ``(B, num_classes, 4h, 4w)`` and IoU
        predictions: ``MaskDecoder.predict_masks`` with each image paired with its own prompt and the dot product
        replaced by the calibration."""
        d = self.decoder
        if isinstance(image_embeddings, (tuple, list)):
            embed, *high_res = image_embeddings
        else:
            embed, high_res = image_embeddings, []
        if d.use_high_res_features and len(high_res) != 2:
            raise ValueError('CalibratedSAM2MaskDecoder: use_high_res_features needs the encoder output (embed, '
                             'feat_s0, feat_s1) of SAM2ImageEncoder')
        s = 1 if d.pred_obj_scores else 0
        weights = ([d.obj_score_token.weight] if s else []) + [d.iou_token.weight, d.mask_tokens.weight]
        output_tokens = torch.cat(weights, dim=0).unsqueeze(0).expand(sparse.size(0), -1, -1)
        tokens = torch.cat((output_tokens, sparse.to(output_tokens.dtype)), dim=1)
        src = embed + dense
        pos_src = image_pe.expand(src.shape[0], -1, -1, -1)
        b, c, h, w = src.shape
        with self._attention_backend():
            hs, src = d.transformer(src, pos_src, tokens)
        iou_token_out = hs[:, s, :]
        mask_tokens_out = hs[:, s + 1:(s + 1 + d.num_mask_tokens), :]
        src = src.transpose(1, 2).reshape(b, c, h, w)
        if d.use_high_res_features:
            dc1, ln1, act1, dc2, act2 = d.output_upscaling
            feat_s0, feat_s1 = high_res
            upscaled = act2(dc2(act1(ln1(dc1(src) + feat_s1))) + feat_s0)
        else:
            upscaled = d.output_upscaling(src)
        return self.calibrated_outputs(upscaled, mask_tokens_out, iou_token_out)
