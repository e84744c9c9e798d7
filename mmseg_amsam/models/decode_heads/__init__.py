from .calibrated_mask_decoder import CalibratedMaskDecoder
from .lora import LoRALinear, LoRAQKV, add_lora_to_attention, add_lora_to_qkv
from .mask_calibration import CALIBRATIONS, MaskCalibration

__all__ = ['CalibratedMaskDecoder', 'LoRALinear', 'LoRAQKV', 'add_lora_to_attention', 'add_lora_to_qkv',
           'CALIBRATIONS', 'MaskCalibration']
