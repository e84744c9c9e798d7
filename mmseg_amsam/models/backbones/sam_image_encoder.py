"""SAM's ViT image encoder (frozen), at BLO-SAM's 256 px input, loadable from official 1024 px checkpoints."""
from functools import partial
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from segment_anything.modeling import ImageEncoderViT
from torch import nn

from ...utils.file_stamp import file_stamp
from ...utils.tensor_digest import module_digest
from ...utils.freeze import freeze
from ...utils.sam_checkpoint import load_sam_state_dict, load_state_into
from ..decode_heads.lora import add_lora_to_qkv
from .encoder_batches import check_max_batch, in_micro_batches

# (embed_dim, depth, num_heads, global_attn_indexes, window_size) as in segment_anything.build_sam;
# 'tiny' is ours: random weights only, for CPU tests and the demo.
SAM_ARCHS = {
    'vit_b': (768, 12, 12, (2, 5, 8, 11), 14),
    'vit_l': (1024, 24, 16, (5, 11, 17, 23), 14),
    'vit_h': (1280, 32, 16, (7, 15, 23, 31), 14),
    'tiny': (64, 2, 2, (1, ), 4),
}


def resize_encoder_state(state: dict, model_state: dict) -> dict:
    """Interpolate ``pos_embed`` (bicubic, 2-D) and relative-position tables (linear, 1-D) to the model's shapes.

    Official checkpoints are trained at 1024 px (64x64 tokens); at 256 px the grid is 16x16, so ``pos_embed``
    goes 64x64 -> 16x16 and the global-attention blocks' ``rel_pos_{h,w}`` go 127 -> 31 rows (as SAMed/BLO-SAM do;
    windowed blocks keep their 27 rows).
    """
    out = dict(state)
    for key, value in state.items():
        target = model_state.get(key)
        if target is None or target.shape == value.shape:
            continue
        if key == 'pos_embed':  # (1, H, W, C)
            grid = value.permute(0, 3, 1, 2).float()
            grid = F.interpolate(grid, size=target.shape[1:3], mode='bicubic', align_corners=False)
            out[key] = grid.permute(0, 2, 3, 1).to(value.dtype)
        elif key.endswith(('rel_pos_h', 'rel_pos_w')) and value.shape[1] == target.shape[1]:  # (2S-1, head_dim)
            table = value.t().unsqueeze(0).float()
            table = F.interpolate(table, size=target.shape[0], mode='linear', align_corners=False)
            out[key] = table.squeeze(0).t().to(value.dtype)
    return out


@MODELS.register_module()
class SAMImageEncoder(BaseModule):
    """segment-anything's ``ImageEncoderViT``, frozen (no grads, always eval mode), or adapted by SAMed's LoRA.

    Args:
        arch: ``vit_b`` / ``vit_l`` / ``vit_h`` (official) or ``tiny`` (depth 2, dim 64; tests and demo).
        img_size: square input size; 256 as in BLO-SAM. The output is ``(B, 256, img_size/16, img_size/16)``.
        checkpoint: an official SAM checkpoint (keys ``image_encoder.*``), interpolated to ``img_size``.
        frozen: keep True for AM-SAM; False only for experiments that fine-tune the encoder.
        lora_rank: > 0 adds SAMed's LoRA of this rank to the q and v parts of every block's fused ``qkv`` (SAMed:
            rank 4); the encoder's own weights stay frozen and only the LoRA matrices train (``is_frozen`` is then
            False: gradients flow, no embedding cache).
        max_batch: images per encoder pass (``encoder_batches``): 1 (default) keeps peak memory at batch 1's and
            each image's embedding independent of its batch companions; None encodes the whole batch at once.
    """

    def __init__(self, arch: str = 'vit_b', img_size: int = 256, out_chans: int = 256,
                 checkpoint: Optional[str] = None, frozen: bool = True, lora_rank: int = 0,
                 global_attn_indexes: Optional[Sequence[int]] = None, max_batch: Optional[int] = 1,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.max_batch = check_max_batch(max_batch, 'SAMImageEncoder')
        if arch not in SAM_ARCHS:
            raise ValueError(f'SAMImageEncoder: unknown arch {arch!r}; choose one of {sorted(SAM_ARCHS)}')
        dim, depth, heads, global_idx, window = SAM_ARCHS[arch]
        self.arch, self.img_size, self.checkpoint = arch, img_size, checkpoint
        self.encoder = ImageEncoderViT(
            img_size=img_size, patch_size=16, embed_dim=dim, depth=depth, num_heads=heads, mlp_ratio=4,
            out_chans=out_chans, qkv_bias=True, norm_layer=partial(nn.LayerNorm, eps=1e-6), use_rel_pos=True,
            global_attn_indexes=tuple(global_attn_indexes or global_idx), window_size=window)
        if checkpoint:
            state = load_sam_state_dict(checkpoint, 'image_encoder.')
            state = resize_encoder_state(state, self.encoder.state_dict())
            load_state_into(self.encoder, state, checkpoint, f'SAM image encoder ({arch}, {img_size} px)')
        self.is_frozen = frozen and not lora_rank
        self.lora_rank = lora_rank
        if frozen or lora_rank:
            freeze(self.encoder)
        self.num_lora_layers = add_lora_to_qkv(self.encoder, lora_rank) if lora_rank else 0

    @property
    def cache_key(self) -> tuple:
        """What determines this encoder's output for a given input (used by the embedding cache)."""
        return ('SAMImageEncoder', self.arch, self.img_size, self.weights_id(), self.is_frozen, self.max_batch)

    def weights_id(self) -> tuple:
        """The checkpoint file's stamp, or, for weights from no file (random), a digest of the weights themselves."""
        return file_stamp(self.checkpoint) if self.checkpoint else ('weights', module_digest(self))

    def train(self, mode: bool = True):
        super().train(mode)
        if self.is_frozen:
            self.encoder.eval()
        return self

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if self.is_frozen:
            with torch.no_grad():
                return in_micro_batches(self.encoder, inputs, self.max_batch)
        return in_micro_batches(self.encoder, inputs, self.max_batch)
