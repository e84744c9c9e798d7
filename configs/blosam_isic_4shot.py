# BLO-SAM: SAM ViT-B 256 px + learned default prompt (no box) + LoRA decoder, no calibration, bi-level.
# ISIC 2018 Task 1, 4 training images (splits/train_4shot.txt), 100 epochs, best checkpoint by mDice on D2 (the
# bi-level split, work_dir/bilevel_split.json).
# Reproduces: Table 3 "BLO-SAM / 4 Examples" (65.1) and Table 4 "BLO-SAM / ISIC 4" (65.1); test Dice (%) = mDice.
#   python tools/dataset_converters/isic2018.py /path/to/ISIC2018 data/isic2018
#   python tools/dataset_converters/make_fewshot_split.py data/isic2018 --shots 4 8 16
#   python tools/train.py configs/blosam_isic_4shot.py
#   python tools/test.py configs/blosam_isic_4shot.py $(ls work_dirs/blosam_isic_4shot/best_mDice_*.pth)
_base_ = ['./_base_/experiments/blosam_isic.py']
custom_imports = dict(imports=['mmseg_amsam'], allow_failed_imports=False)
default_scope = 'mmseg'

shots = 4
train_dataloader = dict(dataset=dict(ann_file='splits/train_4shot.txt'))
