"""Swin-Unet's decoder (Cao et al., ECCV-W 2022) as an mmseg decode head: the symmetric Swin decoder with skip
connections, on the four tensors :class:`~.swin_unet_encoder.SwinUnetEncoder` returns.

Decoder (mirror of the encoder, ``depths``/``num_heads`` indexed backwards, as in the official code)::

    bottleneck --PatchExpand--> 4C,H/16 --cat skip2, Linear(8C->4C)--> SwinBlocks --PatchExpand--> 2C,H/8
      --cat skip1, Linear(4C->2C)--> SwinBlocks --PatchExpand--> C,H/4
      --cat skip0, Linear(2C->C)--> SwinBlocks --LN--> FinalPatchExpand_X4 --> C,H --conv_seg(1x1)--> logits
"""
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmseg.models.backbones.swin import SwinBlockSequence
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from torch import Tensor

from .patch_expand import FinalPatchExpand_X4, HWShape, PatchExpand, _nchw_to_tokens, _tokens_to_nchw

@MODELS.register_module()
class SwinUnetHead(BaseDecodeHead):
    """Swin-Unet decoder as an mmseg decode head.

    Consumes ``len(in_channels)`` encoder features ``[skip_0, ..., skip_{n-2}, bottleneck]`` (finest first,
    channels ``C, 2C, 4C, ...``) and produces logits at ``final_upscale`` x the resolution of ``skip_0``,
    i.e. at input resolution for a patch-size-4 encoder.

    Args:
        in_channels (Sequence[int]): Encoder channels, e.g. ``[96, 192, 384, 768]``. Each must be twice the
            previous one (Swin layout).
        channels (int): Channels of the final full-resolution tokens fed to ``conv_seg``; must equal
            ``in_channels[0]`` (= ``embed_dims``), as in the paper.
        depths (Sequence[int]): Encoder depths; decoder stage ``j`` (coarse to fine) uses
            ``depths[n-1-j]`` Swin blocks (``depths[-1]`` is unused: the bottleneck has no decoder blocks),
            as in the official implementation.
        num_heads (Sequence[int]): Encoder heads, indexed like ``depths``.
        window_size (int): Window size of the decoder Swin blocks (same as the encoder).
        mlp_ratio (float): FFN expansion ratio.
        qkv_bias (bool), qk_scale (float | None), drop_rate, attn_drop_rate (float): Swin block options.
        drop_path_rate (float): Stochastic depth; the per-block rates mirror the encoder's linear schedule.
        final_upscale (int): Factor of :class:`FinalPatchExpand_X4` (= encoder patch size, 4).
        swin_norm_cfg (dict): Norm for the transformer parts (LayerNorm). ``norm_cfg`` of
            :class:`BaseDecodeHead` is not used by this head.
        swin_act_cfg (dict): FFN activation (GELU).
        with_cp (bool): Gradient checkpointing in the Swin blocks.
        **kwargs: :class:`BaseDecodeHead` arguments (``num_classes``, ``loss_decode``, ``in_index``, ...).
            ``input_transform`` is forced to ``'multiple_select'``; ``dropout_ratio`` defaults to 0 (the
            paper has no dropout before the classifier).
    """

    def __init__(self,
                 in_channels: Sequence[int] = (96, 192, 384, 768),
                 channels: int = 96,
                 depths: Sequence[int] = (2, 2, 2, 2),
                 num_heads: Sequence[int] = (3, 6, 12, 24),
                 window_size: int = 8,
                 mlp_ratio: float = 4.,
                 qkv_bias: bool = True,
                 qk_scale: Optional[float] = None,
                 drop_rate: float = 0.,
                 attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0.1,
                 final_upscale: int = 4,
                 swin_norm_cfg: dict = dict(type='LN'),
                 swin_act_cfg: dict = dict(type='GELU'),
                 with_cp: bool = False,
                 init_cfg: Optional[Union[dict, List[dict]]] = None,
                 **kwargs):
        kwargs.setdefault('in_index', list(range(len(in_channels))))
        kwargs.setdefault('dropout_ratio', 0.)
        given_transform = kwargs.pop('input_transform', 'multiple_select')
        assert given_transform == 'multiple_select', 'SwinUnetHead needs input_transform="multiple_select"'
        if init_cfg is None:
            # Official Swin-Unet init (trunc-normal Linear, unit LayerNorm) + mmseg's usual conv_seg init.
            init_cfg = [
                dict(type='TruncNormal', layer='Linear', std=.02, bias=0.),
                dict(type='Constant', layer='LayerNorm', val=1., bias=0.),
                dict(type='Normal', std=0.01, override=dict(name='conv_seg')),
            ]
        super().__init__(
            in_channels=list(in_channels),
            channels=channels,
            input_transform='multiple_select',
            init_cfg=init_cfg,
            **kwargs)

        n = len(self.in_channels)
        assert n >= 2, 'SwinUnetHead needs at least one skip and the bottleneck'
        assert len(depths) == n and len(num_heads) == n, 'depths/num_heads must have one entry per input'
        for i in range(1, n):
            assert self.in_channels[i] == 2 * self.in_channels[i - 1], \
                f'in_channels must double per stage (Swin layout), got {self.in_channels}'
        assert channels == self.in_channels[0], \
            f'channels ({channels}) must equal in_channels[0] ({self.in_channels[0]}) for Swin-Unet'
        self.num_layers = n
        self.depths = tuple(depths)

        # Same linear stochastic-depth schedule as the encoder; decoder stage of encoder level k reuses dpr[k].
        total = sum(depths)
        dpr = [x.item() for x in torch.linspace(0, drop_path_rate, total)] if total > 0 else []

        # Level k = n-1-j for decoder stage j (j=0 is the bottleneck expansion).
        self.up_first = PatchExpand(self.in_channels[-1], scale=2, norm_cfg=swin_norm_cfg)
        self.concat_back_dim = nn.ModuleList()
        self.blocks = nn.ModuleList()
        self.upsamples = nn.ModuleList()
        for j in range(1, n):
            k = n - 1 - j
            dim = self.in_channels[k]
            self.concat_back_dim.append(nn.Linear(2 * dim, dim))
            self.blocks.append(
                SwinBlockSequence(
                    embed_dims=dim,
                    num_heads=num_heads[k],
                    feedforward_channels=int(mlp_ratio * dim),
                    depth=depths[k],
                    window_size=window_size,
                    qkv_bias=qkv_bias,
                    qk_scale=qk_scale,
                    drop_rate=drop_rate,
                    attn_drop_rate=attn_drop_rate,
                    drop_path_rate=dpr[sum(depths[:k]):sum(depths[:k + 1])],
                    downsample=None,
                    act_cfg=swin_act_cfg,
                    norm_cfg=swin_norm_cfg,
                    with_cp=with_cp))
            self.upsamples.append(
                PatchExpand(dim, scale=2, norm_cfg=swin_norm_cfg) if k > 0 else nn.Identity())
        self.norm_up = build_norm_layer(swin_norm_cfg, self.in_channels[0])[1]
        self.final_expand = FinalPatchExpand_X4(self.in_channels[0], scale=final_upscale, norm_cfg=swin_norm_cfg)

    @staticmethod
    def _match_skip(x: Tensor, hw_shape: HWShape, skip_hw: HWShape) -> Tuple[Tensor, HWShape]:
        """Crop up-sampled tokens to the skip's size (only needed when the input is not a multiple of 32;
        mmseg's PatchMerging pads odd sizes, so the up-sampled map can be 1 token larger)."""
        if tuple(hw_shape) == tuple(skip_hw):
            return x, hw_shape
        H, W = hw_shape
        h, w = skip_hw
        assert H >= h and W >= w, f'decoder map {hw_shape} smaller than skip {skip_hw}'
        B, _, C = x.shape
        x = x.view(B, H, W, C)[:, :h, :w, :].reshape(B, h * w, C)
        return x, (h, w)

    def forward_features(self, inputs: List[Tensor]) -> Tensor:
        """Decoder up to the full-resolution ``channels``-dim feature map (before ``conv_seg``)."""
        feats = self._transform_inputs(inputs)
        n = self.num_layers
        x, hw_shape = _nchw_to_tokens(feats[-1])
        x, hw_shape = self.up_first(x, hw_shape)
        for j in range(1, n):
            k = n - 1 - j
            skip, skip_hw = _nchw_to_tokens(feats[k])
            x, hw_shape = self._match_skip(x, hw_shape, skip_hw)
            x = self.concat_back_dim[j - 1](torch.cat([x, skip], dim=-1))
            x, hw_shape, _, _ = self.blocks[j - 1](x, hw_shape)
            if k > 0:
                x, hw_shape = self.upsamples[j - 1](x, hw_shape)
        x = self.norm_up(x)
        x, hw_shape = self.final_expand(x, hw_shape)
        return _tokens_to_nchw(x, hw_shape)

    def forward(self, inputs: List[Tensor]) -> Tensor:
        return self.cls_seg(self.forward_features(inputs))
