"""``box+point`` prompts: SAM gets the box and its centre as a positive point (the paper mentions point prompts)."""
from typing import Optional, Tuple

import torch
from mmseg.registry import MODELS

from .sam_prompt_encoder import SAMPromptEncoder


@MODELS.register_module()
class SAMBoxPointPromptEncoder(SAMPromptEncoder):
    """``SAMPromptEncoder`` plus one positive point at the centre of each image's box.

    Sparse tokens ``(B, 3, C)``: the two box corners (as ``SAMPromptEncoder``; the learnable prompt's box residual
    applies to these two) and then the point with label 1 (foreground), both embedded by segment-anything's
    public ``PromptEncoder.forward(points=..., boxes=...)`` (which puts the point first; we move it last). Images
    without a box get SAM's ``not_a_point`` token there too; a batch where no image has a box gets no sparse tokens.
    Use: ``model.prompt_encoder=dict(type='SAMBoxPointPromptEncoder')``.
    """

    @torch.no_grad()
    def forward(self, boxes: Optional[torch.Tensor], has_box: Optional[torch.Tensor],
                batch_size: int) -> Tuple[torch.Tensor, torch.Tensor]:
        sparse, dense = super().forward(boxes, has_box, batch_size)
        if sparse.shape[1] == 0:
            return sparse, dense
        pe = self.prompt_encoder
        boxes = boxes.to(sparse.device).float()
        centres = ((boxes[:, :2] + boxes[:, 2:]) / 2).unsqueeze(1)  # (B, 1, 2) xy
        labels = torch.ones(batch_size, 1, device=sparse.device)
        point = pe(points=(centres, labels), boxes=boxes, masks=None)[0][:, :1]  # (B, 1, C): point, then box
        if has_box is not None and not bool(has_box.all()):
            pad = pe.not_a_point_embed.weight.expand(batch_size, 1, sparse.shape[-1])
            point = torch.where(has_box.to(sparse.device).view(-1, 1, 1), point, pad)
        return torch.cat([sparse, point], dim=1), dense
