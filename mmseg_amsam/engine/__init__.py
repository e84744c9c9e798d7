"""Training machinery (mmengine components registered in mmseg's registries): bi-level optimisation, hooks,
trainable-only checkpoints, the torch >= 2.6-safe checkpoint loader and the AMP switch. Imports models, never
the other way round."""
from .bilevel import (BiLevelDataLoader, BiLevelDistributedDataParallel, BiLevelEpochBasedTrainLoop,
                      BiLevelIterBasedTrainLoop, BiLevelOptimWrapperConstructor, bilevel_train_step,
                      is_bilevel_batch, select_parameters, split_halves, unrolled_hypergradient, virtual_step)
from .checkpoint_loading import CheckpointFileError, amsam_checkpoint_loader, load_local_checkpoint
from .hooks import DataCheckHook, EmbeddingCacheHook, NumClassesCheckHook, TrainableOnlyCheckpointHook
from .run_visualizer import run_seg_local_visualizer
from .trainable_checkpoint import (FrozenWeightsError, build_model, checkpoint_seed, load_trained_checkpoint,
                                   read_checkpoint, restore_frozen_weights)

__all__ = ['BiLevelDataLoader', 'BiLevelDistributedDataParallel', 'BiLevelEpochBasedTrainLoop',
           'BiLevelIterBasedTrainLoop', 'BiLevelOptimWrapperConstructor', 'bilevel_train_step', 'is_bilevel_batch',
           'select_parameters', 'split_halves', 'unrolled_hypergradient', 'virtual_step', 'CheckpointFileError',
           'amsam_checkpoint_loader', 'load_local_checkpoint', 'DataCheckHook', 'EmbeddingCacheHook',
           'NumClassesCheckHook', 'TrainableOnlyCheckpointHook', 'FrozenWeightsError', 'build_model', 'checkpoint_seed',
           'load_trained_checkpoint', 'read_checkpoint', 'restore_frozen_weights', 'run_seg_local_visualizer']
