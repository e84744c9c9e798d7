from .sam2_image_encoder import SAM2_ARCHS, SAM2ImageEncoder
from .sam_image_encoder import SAM_ARCHS, SAMImageEncoder

__all__ = ['SAM2_ARCHS', 'SAM2ImageEncoder', 'SAM_ARCHS', 'SAMImageEncoder']
