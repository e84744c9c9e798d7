# SAMed: SAM ViT-B 256 px + encoder LoRA (rank 4, q/v) + fine-tuned decoder + learnable default prompt, no
# calibration, ONE optimizer on all k images (single level), on TikTok Dancing (full body).
# Shared by configs/samed_tiktok_*shot.py (they only choose the split file).
_base_ = [
    '../models/samed_vit_b.py', '../datasets/tiktok.py', '../default_runtime.py',
    '../schedules/single_100e.py'
]
# Single level: all k images train, no held-out set -> no validation during training; the last checkpoint
# is kept and evaluated with tools/test.py (see schedules/single_100e.py).
val_dataloader = None
val_evaluator = None
