# Demo dataset (background / shape): the shapes world's held-out domain (one object per image, muted "scan" style),
# 4 train (k = 4 shots) / 20 test images of 128x128. No download; all train images are used (splits/train_4shot.txt
# lists them too, for the detector adaptation).
# 8 shots: `python tools/generate_demo_data.py data/demo_shapes_8 --num-train 8` and point data_root at it. Generate:
#   python tools/generate_demo_data.py data/demo_shapes
_base_ = ['./binary_256.py']
dataset_type = 'DemoShapesDataset'
data_root = 'data/demo_shapes'
train_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root, ann_file=''))
val_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
test_dataloader = val_dataloader
