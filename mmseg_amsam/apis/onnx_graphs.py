"""The deployable graphs of a trained AM-SAM (what ``onnx_export`` traces): LoRA merged, calibration folded, the
learnable prompt baked in, logits upsampled to the SAM input size. Each graph works on a deep copy of the model's
parts; the model itself is left as it was.

* :class:`EncoderGraph`: normalised ``(N, 3, S, S)`` image -> image embedding ``(N, C, S/16, S/16)`` (SAM) or
  ``SAM2ImageEncoder``'s three features ``(image_embeddings, high_res_feat_s0, high_res_feat_s1)`` (SAM 2:
  ``(N, C, S/16, S/16)``, ``(N, C/8, S/4, S/4)``, ``(N, C/4, S/8, S/8)``; :func:`feature_names`).
* :class:`BoxDecoderGraph`: the features + one xyxy box per image (SAM input pixels) -> class logits
  ``(N, K, S, S)``; inputs ``(*features, boxes)``.
* :class:`BoxlessDecoderGraph`: the features alone -> class logits: the images ``AMSAM.decode_from`` decodes with no
  sparse token (box-less images: ``fallback='none'`` or no prompter). A batch mixing the two is split between the
  graphs by the runtime exactly as ``decode_from`` splits it, so every image gets what it gets in PyTorch.

The logits are what ``decode_head.predict_by_feat`` gives (bilinear to ``S x S``); cropping the padding, undoing a
flip and resizing to the original image stay outside (``BaseSegmentor.postprocess_result``, as in PyTorch).
"""
import copy

import torch
import torch.nn.functional as F
from torch import nn

from ..models.decode_heads.lora import merge_lora

# The encoder graph's outputs (the decoder graphs' first inputs), per image-encoder type.
FEATURE_NAMES = dict(SAMImageEncoder=('image_embeddings', ),
                     SAM2ImageEncoder=('image_embeddings', 'high_res_feat_s0', 'high_res_feat_s1'))


def feature_names(model: nn.Module) -> tuple:
    """Names of the encoder graph's outputs for ``model`` (``FEATURE_NAMES`` of its backbone's type)."""
    return FEATURE_NAMES[type(model.backbone).__name__]


def _features(tensors: tuple):
    """The decoder's ``image_embeddings`` argument: the tensor (SAM) or the tuple (SAM 2)."""
    return tensors[0] if len(tensors) == 1 else tuple(tensors)


class FoldedCalibration(nn.Module):
    """``calibration='sample'`` as the fixed map it is: ``(alpha + (1 - alpha) / c) * M_orig`` (mask_calibration)."""

    def __init__(self, scale: float):
        super().__init__()
        self.scale = float(scale)

    def forward(self, upscaled: torch.Tensor, hyper: torch.Tensor) -> torch.Tensor:
        b, c, h, w = upscaled.shape
        return (hyper @ upscaled.reshape(b, c, h * w)).reshape(b, -1, h, w) * self.scale


def deployable_head(decode_head: nn.Module) -> nn.Module:
    """A deep copy of a ``CalibratedMaskDecoder`` (or ``CalibratedSAM2MaskDecoder``) with LoRA merged and a fixed
    calibration folded ('batch', which mixes the images of a batch, is refused before:
    ``onnx_export.check_exportable``)."""
    head = copy.deepcopy(decode_head).eval()
    merge_lora(head)
    calibration = head.calibration
    if calibration.mode == 'sample':
        head.calibration = FoldedCalibration(calibration.alpha + (1.0 - calibration.alpha) / calibration.channels)
    elif calibration.mode == 'batch':
        raise ValueError("calibration='batch' mixes the images of a batch and has no per-image graph")
    return head


class EncoderGraph(nn.Module):
    """The image encoder: SAM's ViT (SAMed's encoder LoRA, if any, merged) or the whole ``SAM2ImageEncoder`` (Hiera +
    FPN + ``conv_s0`` / ``conv_s1`` + ``no_mem_embed``: a tuple of three tensors)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        backbone = model.backbone
        self.encoder = copy.deepcopy(backbone.encoder if len(feature_names(model)) == 1 else backbone).eval()
        merge_lora(self.encoder)

    def forward(self, image: torch.Tensor):
        return self.encoder(image)


class _DecoderGraph(nn.Module):

    def __init__(self, model: nn.Module):
        super().__init__()
        self.prompt_encoder = copy.deepcopy(model.prompt_encoder).eval()
        self.learnable_prompt = copy.deepcopy(model.learnable_prompt)
        if self.learnable_prompt is not None:
            self.learnable_prompt.eval()
        self.head = deployable_head(model.decode_head)
        with torch.no_grad():
            self.register_buffer('image_pe', model.prompt_encoder.dense_pe().detach().clone())
        self.size, self.align_corners = int(model.img_size), bool(model.decode_head.align_corners)

    def decode(self, image_embeddings, sparse: torch.Tensor, dense: torch.Tensor,
               has_box) -> torch.Tensor:
        if self.learnable_prompt is not None:
            sparse, dense = self.learnable_prompt(sparse, dense, has_box)
        low_res = self.head(image_embeddings, self.image_pe, sparse, dense)[0]
        return F.interpolate(low_res, size=(self.size, self.size), mode='bilinear', align_corners=self.align_corners)


class BoxDecoderGraph(_DecoderGraph):
    """Every image has a box: SAM's box tokens (+ the learned box residual), the learned dense prompt."""

    def forward(self, image_embeddings: torch.Tensor, *inputs: torch.Tensor) -> torch.Tensor:
        """``inputs``: SAM 2's two high-resolution features (none for SAM), then the boxes."""
        *high_res, boxes = inputs
        has_box = torch.ones_like(boxes[:, 0], dtype=torch.bool)
        sparse, dense = self.prompt_encoder(boxes, has_box, image_embeddings.shape[0])
        return self.decode(_features((image_embeddings, *high_res)), sparse, dense, has_box)


class BoxlessDecoderGraph(_DecoderGraph):
    """No image has a box: no sparse token, the learned dense prompt (BLO-SAM's default prompt)."""

    def forward(self, image_embeddings: torch.Tensor, *high_res: torch.Tensor) -> torch.Tensor:
        sparse, dense = self.prompt_encoder(None, None, image_embeddings.shape[0])
        return self.decode(_features((image_embeddings, *high_res)), sparse, dense, None)
