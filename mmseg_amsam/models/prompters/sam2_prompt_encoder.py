"""SAM 2's prompt encoder (frozen), with the interface of ``SAMPromptEncoder``: one box per image -> sparse tokens."""
from typing import Optional, Tuple

import torch
from mmseg.registry import MODELS
from sam2.modeling.sam.prompt_encoder import PromptEncoder

from ...utils.freeze import freeze
from ...utils.sam2_checkpoint import load_sam2_state_dict, load_sam2_state_into, strip_prefix
from .sam_prompt_encoder import SAMPromptEncoder


@MODELS.register_module()
class SAM2PromptEncoder(SAMPromptEncoder):
    """sam2's ``PromptEncoder`` for a square ``img_size`` input, frozen; loads ``sam_prompt_encoder.*``.

    A box is encoded as ``SAM2ImagePredictor`` does it: its two corners as points labelled 2 and 3, followed by
    one padding point (label -1, ``not_a_point_embed``), so ``sparse`` is ``(B, 3, C)`` (box corners first, as
    ``LearnablePrompt`` expects), ``(B, 0, C)`` when no image of the batch has a box. In a mixed batch the box-less
    images get three ``not_a_point`` tokens (``AMSAM.decode_from`` drops them again). ``dense_pe``,
    ``no_mask_embed`` and the frozen eval mode are ``SAMPromptEncoder``'s.
    """

    def __init__(self, embed_dim: int = 256, img_size: int = 256, patch_size: int = 16, mask_in_chans: int = 16,
                 checkpoint: Optional[str] = None, init_cfg=None):
        super(SAMPromptEncoder, self).__init__(init_cfg=init_cfg)  # not SAMPromptEncoder's: it builds SAM 1's
        grid = img_size // patch_size
        self.prompt_encoder = PromptEncoder(embed_dim=embed_dim, image_embedding_size=(grid, grid),
                                            input_image_size=(img_size, img_size), mask_in_chans=mask_in_chans)
        self.checkpoint = checkpoint
        if checkpoint:
            state = strip_prefix(load_sam2_state_dict(checkpoint, ('sam_prompt_encoder.', )), 'sam_prompt_encoder.')
            load_sam2_state_into(self.prompt_encoder, state, checkpoint, 'SAM 2 prompt encoder')
        freeze(self.prompt_encoder)

    @torch.no_grad()
    def forward(self, boxes: Optional[torch.Tensor], has_box: Optional[torch.Tensor],
                batch_size: int) -> Tuple[torch.Tensor, torch.Tensor]:
        pe = self.prompt_encoder
        dim = pe.embed_dim
        device = pe.no_mask_embed.weight.device
        if boxes is None or has_box is None or not bool(has_box.any()):
            sparse = torch.empty(batch_size, 0, dim, device=device)
        else:
            coords = boxes.to(device).float().reshape(-1, 2, 2)
            labels = torch.tensor([[2, 3]], dtype=torch.int, device=device).repeat(coords.shape[0], 1)
            sparse, _ = pe(points=(coords, labels), boxes=None, masks=None)  # (B, 3, C): corners + padding point
            if not bool(has_box.all()):
                pad = pe.not_a_point_embed.weight.expand(batch_size, sparse.shape[1], dim)
                sparse = torch.where(has_box.to(device).view(-1, 1, 1), sparse, pad)
        h, w = pe.image_embedding_size
        dense = pe.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(batch_size, -1, h, w)
        return sparse, dense
