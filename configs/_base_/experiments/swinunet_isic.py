# Swin-Unet (Swin-T widths, depths 2-2-2-2, window 8, 256 px), single level on all k images, on ISIC 2018 Task 1.
# Shared by configs/swinunet_isic_*shot.py (they only choose the split file).
_base_ = [
    '../models/swin_unet.py', '../datasets/isic2018.py', '../default_runtime.py',
    '../schedules/single_100e.py'
]
# Single level: all k images train, no held-out set -> no validation during training; the last checkpoint
# is kept and evaluated with tools/test.py (see schedules/single_100e.py).
val_dataloader = None
val_evaluator = None
