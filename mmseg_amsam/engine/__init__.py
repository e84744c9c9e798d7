from . import checkpoint_loading  # noqa: F401  (safe local checkpoint loader)
from . import hooks  # noqa: F401  (TrainableOnlyCheckpointHook, NumClassesCheckHook)
from .bilevel_dataloader import BiLevelDataLoader
from .bilevel_ddp import BiLevelDistributedDataParallel
from .bilevel_loops import BiLevelEpochBasedTrainLoop, BiLevelIterBasedTrainLoop
from .bilevel_optim_wrapper_constructor import BiLevelOptimWrapperConstructor, select_parameters
from .bilevel_split import split_halves
from .bilevel_step import bilevel_train_step
from .embedding_cache_hook import EmbeddingCacheHook
from .hypergradient import unrolled_hypergradient, virtual_step

__all__ = ['BiLevelDataLoader', 'BiLevelEpochBasedTrainLoop', 'BiLevelIterBasedTrainLoop',
           'BiLevelOptimWrapperConstructor', 'select_parameters', 'split_halves', 'bilevel_train_step',
           'unrolled_hypergradient', 'virtual_step', 'EmbeddingCacheHook',
           'BiLevelDistributedDataParallel']
