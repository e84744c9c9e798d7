# BLO-SAM: SAM ViT-B 256 px + learned default prompt (no box) + LoRA decoder, no calibration, bi-level, on TikTok
# Dancing (full body).
# Shared by configs/blosam_tiktok_*shot.py (they only choose the split file).
_base_ = [
    '../models/blosam_vit_b.py', '../datasets/tiktok.py', '../default_runtime.py',
    '../schedules/blo_100e.py'
]
