# AM-SAM on SAM 2.1 Hiera-T (256 px) + YOLOv8 box prompt + learnable prompt + LoRA decoder + mask calibration
# ('sample', alpha 0.7), bi-level, on TikTok Dancing (full body).
# Shared by configs/amsam-sam2_tiktok_*shot.py (they only choose the split file); the model is
# ../models/amsam_sam2_hiera_t.py, the rest as ./amsam_tiktok.py.
_base_ = [
    '../models/amsam_sam2_hiera_t.py', '../datasets/tiktok.py', '../default_runtime.py',
    '../schedules/blo_100e.py'
]
# YOLO class filter by name: 'person' (COCO id 0; checked against the detector's classes at build: a detector
# without a 'person' class is refused with its class list). No person detected -> whole-image box (fallback 'image').
# Those fallbacks are counted and logged (PromptTelemetryHook).
model = dict(prompter=dict(classes=['person'], fallback='image'))
