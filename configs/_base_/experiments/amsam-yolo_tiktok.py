# AM-SAM ablation, YOLO box prompt WITHOUT mask calibration, bi-level, on TikTok Dancing (full body).
# Shared by configs/amsam-yolo_tiktok_*shot.py (they only choose the split file).
_base_ = [
    '../models/amsam-yolo_vit_b.py', '../datasets/tiktok.py', '../default_runtime.py',
    '../schedules/blo_100e.py'
]
# YOLO class filter: COCO class 0 = person; no person detected -> whole-image box (fallback 'image').
model = dict(prompter=dict(classes=[0], fallback='image'))
