# Runtime shared by every config (mmseg's default_runtime plus the plugin import).
default_scope = 'mmseg'
custom_imports = dict(imports=['mmseg_amsam'], allow_failed_imports=False)
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)
vis_backends = [dict(type='LocalVisBackend')]
# SegLocalVisualizer with no fixed `name`: a Runner names it after the run (two runs in one process never share one),
# other clients (mmseg's browse_dataset.py) get 'visualizer' (mmseg_amsam/engine/run_visualizer.py)
visualizer = dict(type='RunSegLocalVisualizer', vis_backends=vis_backends)
log_processor = dict(by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)
# Checkpoints keep only the trained weights (frozen SAM / prompt encoder are rebuilt from `model.sam_checkpoint`
# when loading, see mmseg_amsam/engine/trainable_checkpoint.py); num_classes is checked against the
# dataset before the run starts; the embedding cache is switched off for random training pipelines and reported.
custom_hooks = [
    dict(type='TrainableOnlyCheckpointHook'),
    dict(type='NumClassesCheckHook'),
    dict(type='DataCheckHook'),  # every image / mask of the run's datasets decoded before the first iteration
    dict(type='EmbeddingCacheHook'),
    dict(type='PromptTelemetryHook'),  # detection / fallback / prompt-box IoU of the box prompter, every run
]
