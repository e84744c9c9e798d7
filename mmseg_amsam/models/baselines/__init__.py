"""Re-implemented comparison baselines that mmsegmentation does not ship (registered in ``mmseg.registry.MODELS``).

Swin-Unet (Cao et al., ECCV-W 2022) runs as mmseg's stock ``EncoderDecoder`` with :class:`SwinUnetEncoder` (mmseg's
``SwinTransformer`` returning the decoder's skip tensors) and :class:`SwinUnetHead` (the symmetric Swin decoder);
see ``configs/_base_/models/swin_unet.py``.
"""
from .patch_expand import FinalPatchExpand_X4, PatchExpand
from .swin_unet_encoder import SwinUnetEncoder
from .swin_unet_head import SwinUnetHead

__all__ = ['SwinUnetEncoder', 'SwinUnetHead', 'PatchExpand', 'FinalPatchExpand_X4']
