"""Swin-Unet baseline (Cao et al., ECCV-W 2022, "Swin-Unet: Unet-like Pure Transformer for Medical Image
Segmentation") as mmsegmentation modules.

The window attention, Swin blocks, patch embedding and patch merging are mmseg's own
(:class:`mmseg.models.backbones.SwinTransformer`, :class:`mmseg.models.backbones.swin.SwinBlockSequence`);
only the parts that mmseg lacks are written here:

* :class:`SwinUnetEncoder` -- a thin subclass of mmseg's ``SwinTransformer`` that returns the four tensors
  the Swin-Unet decoder consumes (see below);
* :class:`PatchExpand` / :class:`FinalPatchExpand_X4` -- the paper's "patch expanding" layers
  (linear channel expansion + pixel rearrangement, i.e. a learned pixel shuffle);
* :class:`SwinUnetHead` -- the symmetric Swin decoder with skip connections, used as an mmseg decode head.

The model runs as mmseg's stock ``EncoderDecoder`` (see ``configs/_base_/models/swin_unet.py``).

Encoder taps (``out_mode='swin_unet'``, the default), for an ``H x W`` image and ``C = embed_dims``::

    0: patch-embedding tokens             C  x H/4  x W/4   (skip for the last decoder stage)
    1: stage-1 output after PatchMerging  2C x H/8  x W/8   (skip)
    2: stage-2 output after PatchMerging  4C x H/16 x W/16  (skip)
    3: stage-4 output (bottleneck), + LN  8C x H/32 x W/32

These are exactly the tensors of the official implementation (``x_downsample[0..2]`` and the normed
bottleneck ``x``).  With ``out_mode='stages'`` the encoder behaves like plain mmseg ``SwinTransformer``
(normed per-stage outputs before merging); the shapes are the same, so :class:`SwinUnetHead` also accepts a
plain ``SwinTransformer`` backbone.

Decoder (mirror of the encoder, ``depths``/``num_heads`` indexed backwards, as in the official code)::

    bottleneck --PatchExpand--> 4C,H/16 --cat skip2, Linear(8C->4C)--> SwinBlocks --PatchExpand--> 2C,H/8
      --cat skip1, Linear(4C->2C)--> SwinBlocks --PatchExpand--> C,H/4
      --cat skip0, Linear(2C->C)--> SwinBlocks --LN--> FinalPatchExpand_X4 --> C,H --conv_seg(1x1)--> logits
"""
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmseg.models.backbones.swin import SwinBlockSequence, SwinTransformer
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
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


@MODELS.register_module()
class SwinUnetEncoder(SwinTransformer):
    """Swin-Unet encoder: mmseg's :class:`SwinTransformer` returning the Swin-Unet skip/bottleneck taps.

    All other constructor arguments are those of mmseg's ``SwinTransformer`` (``embed_dims``, ``depths``,
    ``num_heads``, ``window_size``, ``patch_size``, ``strides``, ``drop_path_rate``, ``pretrained`` /
    ``init_cfg``, ``frozen_stages``, ...), so checkpoints in mmseg's Swin format load unchanged.  Swin-Unet
    uses ``depths=(2, 2, 2, 2)``; ``window_size`` must divide the feature sizes reasonably (mmseg pads
    otherwise): 7 for 224x224 inputs, 8 for 256x256.

    Defaults differ from ``SwinTransformer`` (Swin-Unet's): ``embed_dims=96, depths=(2, 2, 2, 2),
    num_heads=(3, 6, 12, 24), window_size=8, patch_size=4, pretrain_img_size=256``.

    Args:
        out_mode (str): ``'swin_unet'`` (default) returns the taps of the official Swin-Unet (patch-embedding
            tokens, merged outputs of stages 1-2, LayerNorm-ed bottleneck; see the module docstring).
            ``'stages'`` returns mmseg ``SwinTransformer``'s usual outputs for ``out_indices``.
        **kwargs: forwarded to ``SwinTransformer``.  In ``'swin_unet'`` mode ``out_indices`` is ignored
            (only the bottleneck norm is built, so no parameter is left unused during training).
    """

    def __init__(self, out_mode: str = 'swin_unet', **kwargs):
        assert out_mode in ('swin_unet', 'stages'), f'unknown out_mode {out_mode!r}'
        # Swin-Unet defaults (Swin-T widths, 2 blocks per stage, 256x256 inputs with window 8).
        kwargs.setdefault('pretrain_img_size', 256)
        kwargs.setdefault('embed_dims', 96)
        kwargs.setdefault('patch_size', 4)
        kwargs.setdefault('window_size', 8)
        kwargs.setdefault('depths', (2, 2, 2, 2))
        kwargs.setdefault('num_heads', (3, 6, 12, 24))
        depths = kwargs['depths']
        if out_mode == 'swin_unet':
            # Only the last stage's output norm is used (= the official ``self.norm`` on the bottleneck).
            kwargs['out_indices'] = (len(depths) - 1, )
        super().__init__(**kwargs)
        self.out_mode = out_mode
        self.num_stages = len(depths)

    def train(self, mode: bool = True):
        """Keep frozen stages frozen (mmseg behaviour) and return ``self`` like ``nn.Module.train``
        (mmseg's ``SwinTransformer.train`` returns None, which breaks ``model.eval()`` chaining)."""
        super().train(mode)
        return self

    def forward(self, x: Tensor) -> List[Tensor]:
        if self.out_mode == 'stages':
            return super().forward(x)
        x, hw_shape = self.patch_embed(x)
        if self.use_abs_pos_embed:
            x = x + self.absolute_pos_embed
        x = self.drop_after_pos(x)

        outs = [_tokens_to_nchw(x, hw_shape)]  # official x_downsample[0]: tokens entering stage 1
        for i, stage in enumerate(self.stages):
            # x/hw_shape: after PatchMerging (input of the next stage); out: before merging.
            x, hw_shape, out, out_hw_shape = stage(x, hw_shape)
            if i < self.num_stages - 2:
                outs.append(_tokens_to_nchw(x, hw_shape))  # x_downsample[i + 1]
        last = self.num_stages - 1
        out = getattr(self, f'norm{last}')(out)  # official ``self.norm`` on the bottleneck
        outs.append(_tokens_to_nchw(out, out_hw_shape))
        return outs


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
