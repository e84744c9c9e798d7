# AM-SAM ablation, YOLO box prompt WITHOUT mask calibration, bi-level.
# ISIC 2018 Task 1, 8 training images (splits/train_8shot.txt), 100 epochs, best checkpoint by mDice on D2 (the
# bi-level split, work_dir/bilevel_split.json).
# Reproduces: Table 4 "AM-SAM, YOLO ✓ Calib ✗ / ISIC 8" (71.8); test Dice (%) = mDice.
#   python tools/dataset_converters/isic2018.py /path/to/ISIC2018 data/isic2018
#   python tools/dataset_converters/make_fewshot_split.py data/isic2018 --shots 4 8 16
#   python tools/train.py configs/amsam-yolo_isic_8shot.py
#   python tools/test.py configs/amsam-yolo_isic_8shot.py $(ls work_dirs/amsam-yolo_isic_8shot/best_mDice_*.pth)
_base_ = ['./_base_/experiments/amsam-yolo_isic.py']
custom_imports = dict(imports=['mmseg_amsam'], allow_failed_imports=False)
default_scope = 'mmseg'

shots = 8
train_dataloader = dict(dataset=dict(ann_file='splits/train_8shot.txt'))
