# ISIC 2018 Task 1 skin lesion segmentation (background / lesion) with the official train / test splits.
# Prepare the data (the official ISIC2018_Task1-2_*_Input and ISIC2018_Task1_*_GroundTruth folders):
#   python tools/dataset_converters/isic2018.py /path/to/ISIC2018 data/isic2018
#   python tools/dataset_converters/make_fewshot_split.py data/isic2018 --shots 4 8 16
# A config that changes `shots` must also set train_dataloader.dataset.ann_file (it is a plain string here).
_base_ = ['./binary_256.py']
dataset_type = 'ISIC2018Dataset'
data_root = 'data/isic2018'
train_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
val_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
test_dataloader = val_dataloader
