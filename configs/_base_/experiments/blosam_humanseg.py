# BLO-SAM: SAM ViT-B 256 px + learned default prompt (no box) + LoRA decoder, no calibration, bi-level, on Vikram
# Shenoy HumanSeg.
# Shared by configs/blosam_humanseg_*shot.py (they only choose the split file).
_base_ = [
    '../models/blosam_vit_b.py', '../datasets/humanseg.py', '../default_runtime.py',
    '../schedules/blo_100e.py'
]
