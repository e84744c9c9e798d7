# Synthetic demo dataset (background / shape): textured shapes on textured backgrounds, 8 train / 4 test
# images of 128x128. No download; all train images are used (no split file). Generate it with:
#   python tools/generate_demo_data.py data/demo_shapes
_base_ = ['./binary_256.py']
dataset_type = 'DemoShapesDataset'
data_root = 'data/demo_shapes'
train_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root, ann_file=''))
val_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
test_dataloader = val_dataloader
