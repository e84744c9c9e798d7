from .calibrated_mask_decoder import CalibratedMaskDecoder
from .calibrated_sam2_mask_decoder import CalibratedSAM2MaskDecoder
from .lora import LoRALinear, LoRAQKV, add_lora_to_attention, add_lora_to_qkv
from .mask_calibration import CALIBRATIONS, MaskCalibration

__all__ = ['CalibratedMaskDecoder', 'CalibratedSAM2MaskDecoder', 'LoRALinear', 'LoRAQKV', 'add_lora_to_attention',
           'add_lora_to_qkv', 'CALIBRATIONS', 'MaskCalibration']
