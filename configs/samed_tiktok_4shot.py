# SAMed: SAM ViT-B 256 px + encoder LoRA (rank 4, q/v) + fine-tuned decoder + learnable default prompt, no
# calibration, ONE optimizer on all k images (single level).
# TikTok Dancing (full body), 4 training images (splits/train_4shot.txt), 100 epochs, no validation (no held-out
# set), the last checkpoint is tested.
# Reproduces: Table 1 "SAMed / 4 Examples" (63.8); test Dice (%) = mDice.
#   python tools/dataset_converters/tiktok.py /path/to/tiktok_raw data/tiktok
#   python tools/dataset_converters/make_fewshot_split.py data/tiktok --shots 4 8 16
#   python tools/train.py configs/samed_tiktok_4shot.py
#   python tools/test.py configs/samed_tiktok_4shot.py $(cat work_dirs/samed_tiktok_4shot/last_checkpoint)
_base_ = ['./_base_/experiments/samed_tiktok.py']
custom_imports = dict(imports=['mmseg_amsam'], allow_failed_imports=False)
default_scope = 'mmseg'

shots = 4
train_dataloader = dict(dataset=dict(ann_file='splits/train_4shot.txt'))
