from .box_prompter import BoxPrompter
from .learnable_prompt import LearnablePrompt
from .mask_box_prompter import MaskBoxPrompter
from .sam_prompt_encoder import SAMPromptEncoder
from .yolo_box_prompter import YOLOBoxPrompter

__all__ = ['BoxPrompter', 'LearnablePrompt', 'MaskBoxPrompter', 'SAMPromptEncoder', 'YOLOBoxPrompter']
