# AM-SAM ablation, YOLO box prompt WITHOUT mask calibration, bi-level, on TikTok Dancing (full body).
# Shared by configs/amsam-yolo_tiktok_*shot.py (they only choose the split file).
_base_ = [
    '../models/amsam-yolo_vit_b.py', '../datasets/tiktok.py', '../default_runtime.py',
    '../schedules/blo_100e.py'
]
# YOLO class filter by name: 'person' (COCO id 0; checked against the detector's classes at build: a detector
# without a 'person' class is refused with its class list). No person detected -> whole-image box (fallback 'image').
# Those fallbacks are counted and logged (PromptTelemetryHook).
model = dict(prompter=dict(classes=['person'], fallback='image'))
