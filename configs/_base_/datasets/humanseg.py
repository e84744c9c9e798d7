# Vikram Shenoy Human Segmentation Dataset (background / person); the last 100 images are the test set.
# Prepare the data (raw copy of https://github.com/VikramShenoy97/Human-Segmentation-Dataset):
#   python tools/dataset_converters/humanseg.py /path/to/Human-Segmentation-Dataset data/humanseg
#   python tools/dataset_converters/make_fewshot_split.py data/humanseg --shots 4 8 16
# A config that changes `shots` must also set train_dataloader.dataset.ann_file (it is a plain string here).
_base_ = ['./binary_256.py']
dataset_type = 'HumanSegDataset'
data_root = 'data/humanseg'
train_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
val_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
test_dataloader = val_dataloader
