"""SAM 2 / 2.1's Hiera image encoder (frozen), built from the official ``sam2`` package's own modules, returning what
SAM 2's image predictor feeds its mask decoder."""
from typing import Optional, Tuple

import torch
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from sam2.modeling.backbones.hieradet import Hiera
from sam2.modeling.backbones.image_encoder import FpnNeck, ImageEncoder
from sam2.modeling.position_encoding import PositionEmbeddingSine
from torch import nn

from ...utils.file_stamp import file_stamp
from ...utils.tensor_digest import module_digest
from ...utils.freeze import freeze
from ...utils.sam2_checkpoint import load_sam2_state_dict, load_sam2_state_into, strip_prefix
from .encoder_batches import check_max_batch, in_micro_batches

# Hiera trunk arguments as in sam2/configs/sam2.1/sam2.1_hiera_{t,s,b+,l}.yaml (SAM 2.0's yaml files have the same
# trunks); 'tiny' is ours: random weights only, for CPU tests.
SAM2_ARCHS = {
    'hiera_t': dict(embed_dim=96, num_heads=1, stages=(1, 2, 7, 2), global_att_blocks=(5, 7, 9),
                    window_pos_embed_bkg_spatial_size=(7, 7)),
    'hiera_s': dict(embed_dim=96, num_heads=1, stages=(1, 2, 11, 2), global_att_blocks=(7, 10, 13),
                    window_pos_embed_bkg_spatial_size=(7, 7)),
    'hiera_b+': dict(embed_dim=112, num_heads=2),  # Hiera's defaults: stages (2, 3, 16, 3), global (12, 16, 20)
    'hiera_l': dict(embed_dim=144, num_heads=2, stages=(2, 6, 36, 4), global_att_blocks=(23, 33, 43),
                    window_pos_embed_bkg_spatial_size=(7, 7), window_spec=(8, 4, 16, 8)),
    'tiny': dict(embed_dim=16, num_heads=1, stages=(1, 1, 2, 1), global_att_blocks=(3, ),
                 window_pos_embed_bkg_spatial_size=(4, 4), window_spec=(4, 4, 4, 2)),
}


def build_sam2_image_encoder(arch: str, d_model: int = 256) -> ImageEncoder:
    """sam2's ``ImageEncoder(Hiera, FpnNeck, scalp=1)`` with the official neck settings."""
    trunk = Hiera(**SAM2_ARCHS[arch])
    neck = FpnNeck(position_encoding=PositionEmbeddingSine(num_pos_feats=d_model, normalize=True, scale=None,
                                                           temperature=10000),
                   d_model=d_model, backbone_channel_list=list(trunk.channel_list), fpn_top_down_levels=[2, 3],
                   fpn_interp_model='nearest')
    return ImageEncoder(trunk=trunk, neck=neck, scalp=1)


@MODELS.register_module()
class SAM2ImageEncoder(BaseModule):
    """sam2's Hiera trunk + FPN neck, frozen (no grads, always eval mode), plus the frozen parts of SAM 2's image path.

    ``forward`` returns the tuple SAM 2's ``SAM2ImagePredictor.set_image`` prepares for the mask decoder, batch
    first: ``(image_embed (B, d, S/16, S/16), high_res_feat_s0 (B, d/8, S/4, S/4), high_res_feat_s1 (B, d/4, S/8,
    S/8))``. As in ``SAM2Base.forward_image`` the two high-resolution FPN levels go through the mask decoder's 1x1
    ``conv_s0`` / ``conv_s1`` (held here, frozen, loaded from ``sam_mask_decoder.conv_s{0,1}.*``: they only
    depend on the image, so they are cached with it), and as in the image predictor ``no_mem_embed`` (a single
    image has no memory) is added to the image embedding (``add_no_mem_embed``; every official config sets
    ``directly_add_no_mem_embed``).

    Args:
        arch: ``hiera_t`` / ``hiera_s`` / ``hiera_b+`` / ``hiera_l`` (official) or ``tiny`` (ours, tests).
        img_size: square input size, a multiple of 32 (256 default, 1024 as SAM 2). Hiera interpolates its
            position embedding to any size, so official weights load as they are.
        checkpoint: an official SAM 2 / 2.1 checkpoint (keys ``image_encoder.*``, ``sam_mask_decoder.conv_s*``,
            ``no_mem_embed``).
        max_batch: images per encoder pass (``encoder_batches``; 1 by default, None: the whole batch at once).
    """

    is_frozen = True  # nothing here trains: the embedding cache may keep the output
    lora_rank = 0

    def __init__(self, arch: str = 'hiera_t', img_size: int = 256, d_model: int = 256,
                 checkpoint: Optional[str] = None, add_no_mem_embed: bool = True, max_batch: Optional[int] = 1,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.max_batch = check_max_batch(max_batch, 'SAM2ImageEncoder')
        if arch not in SAM2_ARCHS:
            raise ValueError(f'SAM2ImageEncoder: unknown arch {arch!r}; choose one of {sorted(SAM2_ARCHS)}')
        if img_size % 32:
            raise ValueError(f'SAM2ImageEncoder: img_size must be a multiple of 32 (Hiera downsamples 32x), got '
                             f'{img_size}')
        self.arch, self.img_size, self.checkpoint = arch, img_size, checkpoint
        self.add_no_mem_embed = add_no_mem_embed
        self.image_encoder = build_sam2_image_encoder(arch, d_model)
        self.conv_s0 = nn.Conv2d(d_model, d_model // 8, kernel_size=1, stride=1)
        self.conv_s1 = nn.Conv2d(d_model, d_model // 4, kernel_size=1, stride=1)
        self.no_mem_embed = nn.Parameter(torch.zeros(1, 1, d_model))
        nn.init.trunc_normal_(self.no_mem_embed, std=0.02)  # as SAM2Base
        if checkpoint:
            self._load(checkpoint)
        freeze(self)

    def _load(self, path: str) -> None:
        state = load_sam2_state_dict(path, ('image_encoder.', 'sam_mask_decoder.conv_s', 'no_mem_embed'),
                                     arch=None if self.arch == 'tiny' else self.arch)
        own = {k: v for k, v in state.items() if k.startswith(('image_encoder.', 'no_mem_embed'))}
        own.update(strip_prefix(state, 'sam_mask_decoder.conv_s', 'conv_s'))
        load_sam2_state_into(self, own, path, f'SAM 2 image encoder ({self.arch}, {self.img_size} px)')

    @property
    def cache_key(self) -> tuple:
        """What determines this encoder's output for a given input (used by the embedding cache)."""
        weights = file_stamp(self.checkpoint) if self.checkpoint else ('weights', module_digest(self))
        return ('SAM2ImageEncoder', self.arch, self.img_size, weights, self.is_frozen, self.add_no_mem_embed,
                self.max_batch)

    def train(self, mode: bool = True):
        return super().train(False)  # frozen: always eval mode

    @torch.no_grad()
    def forward(self, inputs: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return in_micro_batches(self._encode, inputs, self.max_batch)

    def _encode(self, inputs: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        fpn = self.image_encoder(inputs)['backbone_fpn']  # strides 4, 8, 16 (scalp=1 drops 32)
        feat_s0, feat_s1, embed = self.conv_s0(fpn[0]), self.conv_s1(fpn[1]), fpn[-1]
        if self.add_no_mem_embed:
            embed = embed + self.no_mem_embed.reshape(1, -1, 1, 1)
        return embed, feat_s0, feat_s1
