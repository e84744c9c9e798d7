"""Re-implemented comparison baselines that mmsegmentation does not ship (registered in ``mmseg.registry.MODELS``)."""
from .swin_unet import FinalPatchExpand_X4, PatchExpand, SwinUnetEncoder, SwinUnetHead

__all__ = ['SwinUnetEncoder', 'SwinUnetHead', 'PatchExpand', 'FinalPatchExpand_X4']
