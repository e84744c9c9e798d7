"""Swin-Unet's "patch expanding" layers (Cao et al., ECCV-W 2022): linear channel expansion + pixel rearrangement,
i.e. a learned pixel shuffle on token sequences; and the token <-> NCHW conversions the encoder and head share."""
from typing import Optional, Tuple

import torch.nn as nn
from mmcv.cnn import build_norm_layer
from torch import Tensor

HWShape = Tuple[int, int]


def _tokens_to_nchw(x: Tensor, hw_shape: HWShape) -> Tensor:
    """(B, H*W, C) tokens -> (B, C, H, W) feature map."""
    B, L, C = x.shape
    H, W = hw_shape
    assert L == H * W, f'token count {L} does not match hw_shape {hw_shape}'
    return x.transpose(1, 2).reshape(B, C, H, W).contiguous()


def _nchw_to_tokens(x: Tensor) -> Tuple[Tensor, HWShape]:
    """(B, C, H, W) feature map -> (B, H*W, C) tokens and (H, W)."""
    B, C, H, W = x.shape
    return x.flatten(2).transpose(1, 2).contiguous(), (H, W)


def _pixel_rearrange(x: Tensor, hw_shape: HWShape, scale: int) -> Tuple[Tensor, HWShape]:
    """``rearrange(x, 'b (h w) (p1 p2 c) -> b (h p1 w p2) c', p1=scale, p2=scale)`` without einops."""
    B, L, C = x.shape
    H, W = hw_shape
    assert L == H * W, f'token count {L} does not match hw_shape {hw_shape}'
    assert C % (scale * scale) == 0, f'{C} channels cannot be rearranged by a factor {scale}'
    c = C // (scale * scale)
    x = x.view(B, H, W, scale, scale, c).permute(0, 1, 3, 2, 4, 5)  # b h p1 w p2 c
    return x.reshape(B, H * scale * W * scale, c), (H * scale, W * scale)


class PatchExpand(nn.Module):
    """Swin-Unet patch expanding layer: 2x up-sampling of a token map, halving the channels.

    ``Linear(C, 2C)`` then each token's ``2C`` channels are rearranged into a ``2 x 2`` block of ``C/2``-channel
    tokens, followed by LayerNorm (as in the official ``PatchExpand``).

    Args:
        in_channels (int): Channels ``C`` of the input tokens (must be divisible by 2).
        scale (int): Up-sampling factor. The paper (and the default) uses 2.
        norm_cfg (dict): Norm applied to the output tokens. Default LayerNorm.

    Forward: ``(B, H*W, C), (H, W) -> (B, 4*H*W, C/2), (2H, 2W)``.
    """

    def __init__(self, in_channels: int, scale: int = 2, norm_cfg: Optional[dict] = dict(type='LN')):
        super().__init__()
        assert in_channels % scale == 0, f'in_channels {in_channels} not divisible by scale {scale}'
        self.in_channels = in_channels
        self.out_channels = in_channels // scale
        self.scale = scale
        # C -> scale^2 * C/scale = scale*C (2C for scale 2, as in the paper); bias-free like the original.
        self.expand = nn.Linear(in_channels, scale * in_channels, bias=False)
        self.norm = build_norm_layer(norm_cfg, self.out_channels)[1] if norm_cfg is not None else nn.Identity()

    def forward(self, x: Tensor, hw_shape: HWShape) -> Tuple[Tensor, HWShape]:
        x = self.expand(x)
        x, hw_shape = _pixel_rearrange(x, hw_shape, self.scale)
        return self.norm(x), hw_shape


class FinalPatchExpand_X4(nn.Module):  # noqa: N801 (name from the paper / official code)
    """Swin-Unet final patch expanding layer: 4x up-sampling back to input resolution, keeping the channels.

    ``Linear(C, 16C)`` (bias-free), rearranged into ``4 x 4`` blocks of ``C``-channel tokens, then LayerNorm.
    ``scale`` must equal the encoder's patch size (4 in the paper).

    Forward: ``(B, H*W, C), (H, W) -> (B, 16*H*W, C), (4H, 4W)``.
    """

    def __init__(self, in_channels: int, scale: int = 4, norm_cfg: Optional[dict] = dict(type='LN')):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = in_channels
        self.scale = scale
        self.expand = nn.Linear(in_channels, scale * scale * in_channels, bias=False)
        self.norm = build_norm_layer(norm_cfg, in_channels)[1] if norm_cfg is not None else nn.Identity()

    def forward(self, x: Tensor, hw_shape: HWShape) -> Tuple[Tensor, HWShape]:
        x = self.expand(x)
        x, hw_shape = _pixel_rearrange(x, hw_shape, self.scale)
        return self.norm(x), hw_shape
