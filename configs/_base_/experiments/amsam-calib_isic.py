# AM-SAM ablation, mask calibration ('sample', alpha 0.7) WITHOUT the YOLO box, bi-level, on ISIC 2018 Task 1.
# Shared by configs/amsam-calib_isic_*shot.py (they only choose the split file).
_base_ = [
    '../models/amsam-calib_vit_b.py', '../datasets/isic2018.py', '../default_runtime.py',
    '../schedules/blo_100e.py'
]
