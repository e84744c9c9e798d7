# AM-SAM: SAM ViT-B 256 px + YOLOv8 box prompt + learnable prompt + LoRA decoder + mask calibration ('sample', alpha
# 0.7), bi-level.
# TikTok Dancing (full body), 8 training images (splits/train_8shot.txt), 100 epochs, best checkpoint by mDice on D2
# (the bi-level split, work_dir/bilevel_split.json).
# Reproduces: Table 1 "AM-SAM / 8 Examples" (86.7) and Table 4 "YOLO ✓ Calib ✓ / TikTok 8" (86.7); test Dice (%) =
# mDice.
#   python tools/dataset_converters/tiktok.py /path/to/tiktok_raw data/tiktok
#   python tools/dataset_converters/make_fewshot_split.py data/tiktok --shots 4 8 16
#   python tools/train.py configs/amsam_tiktok_8shot.py
#   python tools/test.py configs/amsam_tiktok_8shot.py $(ls work_dirs/amsam_tiktok_8shot/best_mDice_*.pth)
_base_ = ['./_base_/experiments/amsam_tiktok.py']
custom_imports = dict(imports=['mmseg_amsam'], allow_failed_imports=False)
default_scope = 'mmseg'

shots = 8
train_dataloader = dict(dataset=dict(ann_file='splits/train_8shot.txt'))
