# Segmentation Full Body TikTok Dancing Dataset (background / person); the last 2000 frames are the test set.
# Prepare the data (Kaggle tapakah68/segmentation-full-body-tiktok-dancing-dataset, the folder with images/ masks/):
#   python tools/dataset_converters/tiktok.py /path/to/tiktok_raw data/tiktok
#   python tools/dataset_converters/make_fewshot_split.py data/tiktok --shots 4 8 16
# A config that changes `shots` must also set train_dataloader.dataset.ann_file (it is a plain string here).
_base_ = ['./binary_256.py']
dataset_type = 'TikTokBodyDataset'
data_root = 'data/tiktok'
train_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
val_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
test_dataloader = val_dataloader
