# The embedded demo: few-shot transfer of the toy AM-SAM (SAM + YOLOv8 pretrained on the generated "shapes world",
# toy_world/weights) to a held-out domain of that world (objects in a muted grey-blue "scan" style, never seen in
# pretraining, like natural images -> a medical modality): k = 4 shots (the 4 generated training images; 8: generate
# with --num-train 8, point data_root at it and set adapt.ann_file='splits/train_8shot.txt'), two stages:
#   1. few-shot detector adaptation: the toy YOLO is fine-tuned on the 4 images' mask boxes (keeping its classes and
#      head, boxes labelled as its class 0), cached under work_dirs/adapted_detectors, report in the log;
#   2. AM-SAM bi-level (D1 / D2 = 2 / 2 images), YOLO prompts, mask calibration, 128 px SAM input.
# `make demo` generates the data (`python tools/generate_demo_data.py data/demo_shapes`), tests the untrained plain
# SAM + the toy YOLO's box (zero-shot), trains, tests, and prints both test Dice and the D2 curve.
_base_ = [
    './_base_/models/amsam_toy.py',
    './_base_/datasets/demo_shapes.py',
    './_base_/default_runtime.py',
    './_base_/schedules/blo_100e.py',
]
custom_imports = dict(imports=['mmseg_amsam'], allow_failed_imports=False)
default_scope = 'mmseg'

img_scale = (128, 128)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='Resize', scale=img_scale, keep_ratio=False),
    dict(type='PackSegInputs'),
]
test_pipeline = [  # LoadAnnotations after Resize: the Dice is computed at the original size
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=False),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

max_epochs = 30
train_cfg = dict(max_epochs=max_epochs, val_interval=1)
param_scheduler = dict(
    lower=[dict(type='PolyLR', power=0.9, eta_min=0.0, begin=0, end=max_epochs, by_epoch=True,
                convert_to_iter_based=True)],
    upper=[dict(type='PolyLR', power=0.9, eta_min=0.0, begin=0, end=max_epochs, by_epoch=True,
                convert_to_iter_based=True)])
# Lower level at lr 2e-4 (BLO-SAM's code trains at 2e-4 in effect, docs/reproduce.md), not the paper's 5e-3: on the
# toy decoder 5e-3 first wrecks the pretrained decoder (D2 Dice 82.8 untrained -> 45.8 after epoch 1, back to 83.8 at
# epoch 9), 2e-4 rises from epoch 1 (85.5 -> 93.6 at epoch 28). Measured with `make demo` on 2 CPU cores.
optim_wrapper = dict(lower=dict(optimizer=dict(lr=2e-4)))
# Stage 1 (measured on the demo's 20 test images, 2 CPU cores, 44 s): prompt-box IoU 0.728 -> 0.797, detection
# 75 -> 95 %. ultralytics' defaults are too short for 4 images at 128 px (see docs/users_guide.md).
model = dict(prompter=dict(adapt=dict(
    data_root='data/demo_shapes', ann_file='splits/train_4shot.txt', epochs=150, imgsz=128, lr0=0.004, mosaic=0.0,
    keep_class=0, report_split='test', cache_dir='work_dirs/adapted_detectors')))
default_hooks = dict(logger=dict(interval=4))
