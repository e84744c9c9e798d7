# SAMed: SAM ViT-B 256 px + encoder LoRA (rank 4, q/v) + fine-tuned decoder + learnable default prompt, no
# calibration, ONE optimizer on all k images (single level), on ISIC 2018 Task 1.
# Shared by configs/samed_isic_*shot.py (they only choose the split file).
_base_ = [
    '../models/samed_vit_b.py', '../datasets/isic2018.py', '../default_runtime.py',
    '../schedules/single_100e.py'
]
# Single level: all k images train, no held-out set -> no validation during training; the last checkpoint
# is kept and evaluated with tools/test.py (see schedules/single_100e.py).
val_dataloader = None
val_evaluator = None
