# SAMed: SAM ViT-B 256 px + encoder LoRA (rank 4, q/v) + fine-tuned decoder + learnable default prompt, no
# calibration, ONE optimizer on all k images (single level).
# ISIC 2018 Task 1, 8 training images (splits/train_8shot.txt), 100 epochs, no validation (no held-out set), the
# last checkpoint is tested.
# Reproduces: no paper cell (Table 3 lists only BLO-SAM / AM-SAM): extra baseline, same protocol; test Dice (%) =
# mDice.
#   python tools/dataset_converters/isic2018.py /path/to/ISIC2018 data/isic2018
#   python tools/dataset_converters/make_fewshot_split.py data/isic2018 --shots 4 8 16
#   python tools/train.py configs/samed_isic_8shot.py
#   python tools/test.py configs/samed_isic_8shot.py $(cat work_dirs/samed_isic_8shot/last_checkpoint)
_base_ = ['./_base_/experiments/samed_isic.py']
custom_imports = dict(imports=['mmseg_amsam'], allow_failed_imports=False)
default_scope = 'mmseg'

shots = 8
train_dataloader = dict(dataset=dict(ann_file='splits/train_8shot.txt'))
