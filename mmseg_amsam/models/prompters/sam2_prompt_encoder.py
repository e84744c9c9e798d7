"""SAM 2's prompt encoder (frozen), with the interface of ``SAMPromptEncoder``: one box per image -> sparse tokens."""
from typing import Optional

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

    def box_tokens(self, boxes: torch.Tensor) -> torch.Tensor:
        """As ``SAM2ImagePredictor``: the corners as points labelled 2 and 3, then a padding point: ``(B, 3, C)``."""
        coords = boxes.reshape(-1, 2, 2)
        labels = torch.tensor([[2, 3]], dtype=torch.int, device=boxes.device).repeat(coords.shape[0], 1)
        return self.prompt_encoder(points=(coords, labels), boxes=None, masks=None)[0]
