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
"""
from typing import List

from mmseg.models.backbones.swin import SwinTransformer
from mmseg.registry import MODELS
from torch import Tensor

from .patch_expand import _tokens_to_nchw

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
