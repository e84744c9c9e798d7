# BLO-SAM: SAM ViT-B 256 px + learned default prompt (no box) + LoRA decoder, no calibration, bi-level, on ISIC 2018
# Task 1.
# Shared by configs/blosam_isic_*shot.py (they only choose the split file).
_base_ = [
    '../models/blosam_vit_b.py', '../datasets/isic2018.py', '../default_runtime.py',
    '../schedules/blo_100e.py'
]
