# Swin-Unet (Swin-T widths, depths 2-2-2-2, window 8, 256 px), single level on all k images.
# TikTok Dancing (full body), 4 training images (splits/train_4shot.txt), 100 epochs, no validation (no held-out
# set), the last checkpoint is tested.
# Reproduces: Table 1 "SwinUnet / 4 Examples" (30.9); test Dice (%) = mDice.
#   python tools/dataset_converters/tiktok.py /path/to/tiktok_raw data/tiktok
#   python tools/dataset_converters/make_fewshot_split.py data/tiktok --shots 4 8 16
#   python tools/train.py configs/swinunet_tiktok_4shot.py
#   python tools/test.py configs/swinunet_tiktok_4shot.py $(cat work_dirs/swinunet_tiktok_4shot/last_checkpoint)
_base_ = ['./_base_/experiments/swinunet_tiktok.py']
custom_imports = dict(imports=['mmseg_amsam'], allow_failed_imports=False)
default_scope = 'mmseg'

shots = 4
train_dataloader = dict(dataset=dict(ann_file='splits/train_4shot.txt'))
