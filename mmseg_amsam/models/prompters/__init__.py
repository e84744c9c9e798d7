from .box_point_prompt_encoder import SAMBoxPointPromptEncoder
from .box_prompter import BoxPrompter
from .detector_box_prompter import DetectorBoxPrompter
from .learnable_prompt import LearnablePrompt
from .mask_box_prompter import MaskBoxPrompter
from .mmdet_box_prompter import MMDetBoxPrompter
from .prompt_telemetry import PromptTelemetry
from .sam2_prompt_encoder import SAM2PromptEncoder
from .sam_prompt_encoder import SAMPromptEncoder
from .yolo_box_prompter import YOLOBoxPrompter

__all__ = ['BoxPrompter', 'DetectorBoxPrompter', 'LearnablePrompt', 'MaskBoxPrompter', 'MMDetBoxPrompter',
           'PromptTelemetry', 'SAM2PromptEncoder', 'SAMBoxPointPromptEncoder', 'SAMPromptEncoder', 'YOLOBoxPrompter']
