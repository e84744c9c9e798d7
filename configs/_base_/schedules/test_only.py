# Test only: nothing trains (e.g. plain SAM with a YOLO box): no optimizer, schedule or validation loop.
# (The config itself must also set train_dataloader = val_dataloader = val_evaluator = None: mmengine refuses the
# same key in two _base_ files, and the dataset base defines them.)
train_cfg = None
optim_wrapper = None
param_scheduler = None
val_cfg = None
test_cfg = dict(type='TestLoop')
