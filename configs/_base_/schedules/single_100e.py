# Single-level training for the baselines (DeepLabV3, SwinUnet, SAMed-style): ONE optimizer over every trainable
# parameter, the paper's lower-level hyper-parameters ("Hyper-parameters" section): AdamW lr 5e-3, betas
# (0.9, 0.999), weight decay 0.1, poly decay lr_i = lr_0 (1 - i/iter_max)^0.9 per iteration, 100 epochs.
#
# No held-out set: a single-level method trains on all k images (there is no D1/D2 split), so nothing is left to
# select a checkpoint on. Hence NO validation during training (the experiment bases set val_dataloader,
# val_evaluator and val_cfg to None) and the LAST checkpoint is kept (work_dir/epoch_100.pth, also named in
# work_dir/last_checkpoint; during the run the latest of every 5 epochs, for --resume; SafeCheckpointHook writes
# the new file before removing the old one); evaluate it on the test split with
#   python tools/test.py CONFIG $(cat work_dirs/CONFIG_NAME/last_checkpoint)
# (Choosing the best epoch on the test split would leak the test set.)
max_epochs = 100
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=5e-3, betas=(0.9, 0.999), weight_decay=0.1))
param_scheduler = [
    dict(type='PolyLR', power=0.9, eta_min=0.0, begin=0, end=max_epochs, by_epoch=True, convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs + 1)
val_cfg = None
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10, log_metric_by_epoch=True),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='SafeCheckpointHook', by_epoch=True, interval=5, max_keep_ckpts=1, save_last=True),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
