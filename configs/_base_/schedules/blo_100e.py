# Bi-level optimisation with the paper's hyper-parameters ("Hyper-parameters" section):
# lower level (LoRA + trainable decoder parts) AdamW lr 5e-3, upper level (learnable prompt) AdamW lr 1e-3, both
# betas (0.9, 0.999), weight decay 0.1, poly decay lr_i = lr_0 (1 - i/iter_max)^0.9, 100 epochs, batch size 1,
# best checkpoint by Dice on D2. Set model.train_cfg.unrolled=True for the second-order hypergradient.
# Checkpoints (SafeCheckpointHook: mmengine's CheckpointHook that writes a new file before removing the old one):
# best_mDice_epoch_N.pth (weights only) and, for --resume, the latest epoch_N.pth (every 5 epochs, at the last
# epoch, and at each new best once one exists; one kept, named in work_dir/last_checkpoint).
max_epochs = 100
optim_wrapper = dict(
    constructor='BiLevelOptimWrapperConstructor',
    lower=dict(
        type='OptimWrapper',
        params=[r'^decode_head\.'],
        optimizer=dict(type='AdamW', lr=5e-3, betas=(0.9, 0.999), weight_decay=0.1)),
    upper=dict(
        type='OptimWrapper',
        params=[r'^learnable_prompt\.'],
        optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.1)))
poly = dict(type='PolyLR', power=0.9, eta_min=0.0, begin=0, end=max_epochs, by_epoch=True,
            convert_to_iter_based=True)
param_scheduler = dict(lower=[poly], upper=[poly])
train_cfg = dict(type='BiLevelEpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1, split_seed=0,
                 val_on='d2')
# Distributed runs (tools/dist_train.sh, tools/slurm_train.sh): keep the engine's bilevel_train_step and
# all-reduce both levels' explicit gradients (plain MMDistributedDataParallel would bypass the bi-level step).
# (scoped name: the Runner looks wrappers up in mmengine's root registry)
model_wrapper_cfg = dict(type='mmseg.BiLevelDistributedDataParallel')
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10, log_metric_by_epoch=True),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='SafeCheckpointHook', by_epoch=True, interval=5, max_keep_ckpts=1, save_best='mDice',
                    rule='greater', save_last=True),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
