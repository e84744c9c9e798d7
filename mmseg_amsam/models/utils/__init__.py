from .freeze import freeze
from .sam_checkpoint import load_sam_state_dict, load_state_into
from .sam_input import denormalize_to_uint8

__all__ = ['freeze', 'load_sam_state_dict', 'load_state_into', 'denormalize_to_uint8']
