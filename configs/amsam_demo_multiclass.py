# The toy multi-class task: the demo's held-out "scan" style with 1-3 objects per image of two shape families,
# labels 0 background, 1 ellipse, 2 rectangle (16 train / 40 test images, 128 px; all 16 train here, a k-shot split
# with `train_dataloader.dataset.ann_file=splits/train_8shot_seed0.txt` or through tools/run_cells.py).
# Multi-class AM-SAM: each class gets its own prompt -- the toy YOLO's most confident box of that family (class_map:
# detector class -> dataset label) and its own learnable prompt -- and the decoder runs once per class prompt; the
# (background, class) logits of the two prompts form the 3-class map. A class the detector does not find in an image
# gets no box, only its learned prompt (fallback='none': a whole-image box would ask SAM to segment that class
# everywhere). Generate the data and train:
#   python tools/generate_demo_data.py data/demo_shapes_multiclass --multiclass --num-train 16 --num-test 40
#   python tools/train.py configs/amsam_demo_multiclass.py
_base_ = ['./amsam_demo.py']
custom_imports = dict(imports=['mmseg_amsam'], allow_failed_imports=False)
default_scope = 'mmseg'
data_root = 'data/demo_shapes_multiclass'
dataset_type = 'DemoShapesMultiClassDataset'
train_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
val_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
test_dataloader = val_dataloader
model = dict(
    class_prompts=True,
    decode_head=dict(num_classes=3),
    prompter=dict(adapt=None, class_map={'ellipse': 1, 'rectangle': 2}, fallback='none'))
