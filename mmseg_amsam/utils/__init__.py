"""Small shared utilities (no registered components): every other sub-package may import them, they import none."""
from .file_checks import UnreadableFilesError, check_readable, unreadable_files
from .file_stamp import file_stamp
from .freeze import freeze
from .model_wrapper import unwrap_model
from .sam_checkpoint import CheckpointError, load_sam_state_dict, load_state_into
from .sam_input import denormalize_to_uint8
from .seeding import seeded
from .tensor_digest import tensor_digest

__all__ = ['UnreadableFilesError', 'check_readable', 'unreadable_files',
           'file_stamp', 'freeze', 'CheckpointError', 'load_sam_state_dict', 'load_state_into',
           'denormalize_to_uint8', 'seeded', 'tensor_digest', 'unwrap_model']
