# Ablation (paper Table 4, row "YOLO Detector ✓, Mask Calibration ✗"): AM-SAM's YOLOv8 box prompt, NO mask
# calibration (SAM's dot product). Otherwise identical to amsam_vit_b.py; train bi-level (schedules/blo_100e.py).
_base_ = ['./amsam_vit_b.py']
model = dict(decode_head=dict(calibration='none'))
