# AM-SAM + few-shot detector adaptation (see _base_/experiments/amsam-adapt_tiktok.py), TikTok, 4 training
# images (splits/train_4shot.txt): the detector and the bi-level stage see the same 4 images, never a test one.
#   python tools/dataset_converters/make_fewshot_split.py data/tiktok --shots 4 8 16
#   python tools/train.py configs/amsam-adapt_tiktok_4shot.py
#   python tools/test.py configs/amsam-adapt_tiktok_4shot.py $(ls work_dirs/amsam-adapt_tiktok_4shot/best_mDice_*.pth)
_base_ = ['./_base_/experiments/amsam-adapt_tiktok.py']
custom_imports = dict(imports=['mmseg_amsam'], allow_failed_imports=False)
default_scope = 'mmseg'

shots = 4
train_dataloader = dict(dataset=dict(ann_file='splits/train_4shot.txt'))
model = dict(prompter=dict(adapt=dict(ann_file='splits/train_4shot.txt')))
