from .calibrated_mask_decoder import CalibratedMaskDecoder
from .lora import LoRALinear, add_lora_to_attention
from .mask_calibration import CALIBRATIONS, MaskCalibration

__all__ = ['CalibratedMaskDecoder', 'LoRALinear', 'add_lora_to_attention', 'CALIBRATIONS', 'MaskCalibration']
