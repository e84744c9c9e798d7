# The embedded demo: tiny random-weight AM-SAM (SAM-style ViT + YOLOv8n from yaml) trained bi-level on the generated
# shapes dataset (`python tools/generate_demo_data.py data/demo_shapes`). `make demo` runs it end to end on 2 CPU
# cores in a few minutes. Dice is not meaningful for the paper (no pretrained weights), it shows the pipeline works.
_base_ = [
    './_base_/models/amsam_tiny.py',
    './_base_/datasets/demo_shapes.py',
    './_base_/default_runtime.py',
    './_base_/schedules/blo_100e.py',
]
custom_imports = dict(imports=['mmseg_amsam'], allow_failed_imports=False)
default_scope = 'mmseg'

max_epochs = 50
train_cfg = dict(max_epochs=max_epochs, val_interval=10)
param_scheduler = dict(
    lower=[dict(type='PolyLR', power=0.9, eta_min=0.0, begin=0, end=max_epochs, by_epoch=True,
                convert_to_iter_based=True)],
    upper=[dict(type='PolyLR', power=0.9, eta_min=0.0, begin=0, end=max_epochs, by_epoch=True,
                convert_to_iter_based=True)])
default_hooks = dict(logger=dict(interval=4))
