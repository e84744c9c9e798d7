# AM-SAM: SAM ViT-B 256 px + YOLOv8 box prompt + learnable prompt + LoRA decoder + mask calibration ('sample', alpha
# 0.7), bi-level.
# TikTok Dancing (full body), 4 training images (splits/train_4shot.txt), 100 epochs, best checkpoint by mDice on D2
# (the bi-level split, work_dir/bilevel_split.json).
# Reproduces: Table 1 "AM-SAM / 4 Examples" (81.3) and Table 4 "YOLO ✓ Calib ✓ / TikTok 4" (83.4; the paper reports
# both); test Dice (%) = mDice.
#   python tools/dataset_converters/tiktok.py /path/to/tiktok_raw data/tiktok
#   python tools/dataset_converters/make_fewshot_split.py data/tiktok --shots 4 8 16
#   python tools/train.py configs/amsam_tiktok_4shot.py
#   python tools/test.py configs/amsam_tiktok_4shot.py $(ls work_dirs/amsam_tiktok_4shot/best_mDice_*.pth)
_base_ = ['./_base_/experiments/amsam_tiktok.py']
custom_imports = dict(imports=['mmseg_amsam'], allow_failed_imports=False)
default_scope = 'mmseg'

shots = 4
train_dataloader = dict(dataset=dict(ann_file='splits/train_4shot.txt'))
