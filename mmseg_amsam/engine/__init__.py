from . import checkpoint_loading  # noqa: F401  (safe local checkpoint loader)
from .bilevel_dataloader import BiLevelDataLoader
from .bilevel_loops import BiLevelEpochBasedTrainLoop, BiLevelIterBasedTrainLoop
from .bilevel_optim_wrapper_constructor import BiLevelOptimWrapperConstructor, select_parameters
from .bilevel_split import split_halves
from .bilevel_step import bilevel_train_step
from .hypergradient import unrolled_hypergradient, virtual_step

__all__ = ['BiLevelDataLoader', 'BiLevelEpochBasedTrainLoop', 'BiLevelIterBasedTrainLoop',
           'BiLevelOptimWrapperConstructor', 'select_parameters', 'split_halves', 'bilevel_train_step',
           'unrolled_hypergradient', 'virtual_step']
