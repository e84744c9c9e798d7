# BLO-SAM: SAM ViT-B 256 px + learned default prompt (no box) + LoRA decoder, no calibration, bi-level.
# Vikram Shenoy HumanSeg, 8 training images (splits/train_8shot.txt), 100 epochs, best checkpoint by mDice on D2
# (the bi-level split, work_dir/bilevel_split.json).
# Reproduces: Table 2 "BLO-SAM / 8 Examples" (91.3); test Dice (%) = mDice.
#   python tools/dataset_converters/humanseg.py /path/to/Human-Segmentation-Dataset data/humanseg
#   python tools/dataset_converters/make_fewshot_split.py data/humanseg --shots 4 8 16
#   python tools/train.py configs/blosam_humanseg_8shot.py
#   python tools/test.py configs/blosam_humanseg_8shot.py $(ls work_dirs/blosam_humanseg_8shot/best_mDice_*.pth)
_base_ = ['./_base_/experiments/blosam_humanseg.py']
custom_imports = dict(imports=['mmseg_amsam'], allow_failed_imports=False)
default_scope = 'mmseg'

shots = 8
train_dataloader = dict(dataset=dict(ann_file='splits/train_8shot.txt'))
