# AM-SAM + few-shot detector adaptation (see _base_/experiments/amsam-adapt_isic.py), ISIC2018, 16 training
# images (splits/train_16shot.txt): the detector and the bi-level stage see the same 16 images, never a test one.
#   python tools/dataset_converters/make_fewshot_split.py data/isic2018 --shots 4 8 16
#   python tools/train.py configs/amsam-adapt_isic_16shot.py
#   python tools/test.py configs/amsam-adapt_isic_16shot.py $(ls work_dirs/amsam-adapt_isic_16shot/best_mDice_*.pth)
_base_ = ['./_base_/experiments/amsam-adapt_isic.py']
custom_imports = dict(imports=['mmseg_amsam'], allow_failed_imports=False)
default_scope = 'mmseg'

shots = 16
train_dataloader = dict(dataset=dict(ann_file='splits/train_16shot.txt'))
model = dict(prompter=dict(adapt=dict(ann_file='splits/train_16shot.txt')))
