# DeepLabV3 (mmseg's ResNetV1c-50 + ASPP + FCN aux head, BN), single level on all k images, on ISIC 2018 Task 1.
# Shared by configs/deeplabv3_isic_*shot.py (they only choose the split file).
_base_ = [
    '../models/deeplabv3_r50-d8.py', '../datasets/isic2018.py', '../default_runtime.py',
    '../schedules/single_100e.py'
]
# Single level: all k images train, no held-out set -> no validation during training; the last checkpoint
# is kept and evaluated with tools/test.py (see schedules/single_100e.py).
val_dataloader = None
val_evaluator = None
# Batch size 2: ASPP's image-pooling branch applies BN to a 1x1 map, which fails in training with one image.
train_dataloader = dict(batch_size=2)
