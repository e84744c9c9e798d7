# Ablation (paper Table 4, row "YOLO Detector ✗, Mask Calibration ✓"): NO box prompt (BLO-SAM's learned default
# prompt alone) with AM-SAM's mask calibration ('sample', alpha 0.7). Train bi-level (schedules/blo_100e.py).
_base_ = ['./amsam_vit_b.py']
model = dict(prompter=None, decode_head=dict(calibration='sample', alpha=0.7))
