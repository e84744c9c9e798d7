from .num_classes_check_hook import NumClassesCheckHook
from .trainable_only_checkpoint_hook import (FrozenWeightsError, TrainableOnlyCheckpointHook, load_trained_checkpoint,
                                             restore_frozen_weights)

__all__ = ['NumClassesCheckHook', 'TrainableOnlyCheckpointHook', 'FrozenWeightsError', 'load_trained_checkpoint',
           'restore_frozen_weights']
