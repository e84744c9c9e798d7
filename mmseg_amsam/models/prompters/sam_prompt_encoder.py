"""SAM's prompt encoder (frozen): turns one box per image into sparse tokens and gives the dense embedding."""
from typing import Optional, Tuple

import torch
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from segment_anything.modeling import PromptEncoder

from ...utils.freeze import freeze
from ...utils.sam_checkpoint import load_sam_state_dict, load_state_into


@MODELS.register_module()
class SAMPromptEncoder(BaseModule):
    """segment-anything's ``PromptEncoder`` for a square ``img_size`` input, frozen.

    ``forward(boxes, has_box, batch_size)`` returns ``(sparse (B, 2|0, C), dense (B, C, h, w))``; boxes are
    ``(B, 4)`` xyxy in SAM input pixels. Images of a batch without a box (``has_box`` False) get SAM's two
    ``not_a_point`` padding tokens in place of the box corners, so a mixed batch keeps one tensor (``AMSAM.decode_from``
    drops them again: a box-less image is decoded with no sparse token, as alone); a batch where no image has a box
    gets no sparse tokens at all (BLO-SAM's default prompt).
    """

    def __init__(self, embed_dim: int = 256, img_size: int = 256, patch_size: int = 16, mask_in_chans: int = 16,
                 checkpoint: Optional[str] = None, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        grid = img_size // patch_size
        self.prompt_encoder = PromptEncoder(embed_dim=embed_dim, image_embedding_size=(grid, grid),
                                            input_image_size=(img_size, img_size), mask_in_chans=mask_in_chans)
        self.checkpoint = checkpoint
        if checkpoint:
            state = load_sam_state_dict(checkpoint, 'prompt_encoder.')
            load_state_into(self.prompt_encoder, state, checkpoint, 'SAM prompt encoder')
        freeze(self.prompt_encoder)

    def train(self, mode: bool = True):
        super().train(mode)
        self.prompt_encoder.eval()
        return self

    @property
    def no_mask_embed(self) -> torch.Tensor:
        return self.prompt_encoder.no_mask_embed.weight

    def dense_pe(self) -> torch.Tensor:
        """Positional encoding of the image embedding grid, ``(1, C, h, w)``, in the module's dtype (segment-anything
        builds its coordinate grid in float32, so a float64 copy of the model evaluates it in float32)."""
        layer = self.prompt_encoder.pe_layer
        matrix = layer.positional_encoding_gaussian_matrix
        if matrix.dtype == torch.float32:
            return self.prompt_encoder.get_dense_pe()
        layer.positional_encoding_gaussian_matrix = matrix.float()
        try:
            return self.prompt_encoder.get_dense_pe().to(matrix.dtype)
        finally:
            layer.positional_encoding_gaussian_matrix = matrix

    def box_tokens(self, boxes: torch.Tensor) -> torch.Tensor:
        """``(B, 4)`` xyxy boxes -> sparse tokens ``(B, T, C)``, the two box corners first."""
        return self.prompt_encoder(points=None, boxes=boxes, masks=None)[0]  # (B, 2, C): the box corners

    @torch.no_grad()
    def forward(self, boxes: Optional[torch.Tensor], has_box: Optional[torch.Tensor],
                batch_size: int) -> Tuple[torch.Tensor, torch.Tensor]:
        pe = self.prompt_encoder
        dim = pe.embed_dim
        device = pe.no_mask_embed.weight.device
        if boxes is None or has_box is None or not bool(has_box.any()):
            sparse = torch.empty(batch_size, 0, dim, device=device)
        else:
            sparse = self.box_tokens(boxes.to(device).float())
            if not bool(has_box.all()):
                pad = pe.not_a_point_embed.weight.expand(batch_size, sparse.shape[1], dim)
                sparse = torch.where(has_box.to(device).view(-1, 1, 1), sparse, pad)
        h, w = pe.image_embedding_size
        dense = pe.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(batch_size, -1, h, w)
        return sparse, dense
