# AM-SAM ablation, mask calibration ('sample', alpha 0.7) WITHOUT the YOLO box, bi-level, on TikTok Dancing (full
# body).
# Shared by configs/amsam-calib_tiktok_*shot.py (they only choose the split file).
_base_ = [
    '../models/amsam-calib_vit_b.py', '../datasets/tiktok.py', '../default_runtime.py',
    '../schedules/blo_100e.py'
]
