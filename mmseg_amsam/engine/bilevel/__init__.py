"""Bi-level optimisation (paper eq. 6-8, BLO-SAM): D1/D2 split, paired loader, two optimizers, loops, the step,
the unrolled hypergradient and the DDP wrapper."""
from .dataloader import BiLevelDataLoader
from .ddp import BiLevelDistributedDataParallel
from .hypergradient import unrolled_hypergradient, virtual_step
from .loops import BiLevelEpochBasedTrainLoop, BiLevelIterBasedTrainLoop
from .optim_wrapper_constructor import BiLevelOptimWrapperConstructor, select_parameters
from .split import split_halves
from .step import bilevel_train_step, computed_in, decoder_modules, is_bilevel_batch

__all__ = ['BiLevelDataLoader', 'BiLevelDistributedDataParallel', 'unrolled_hypergradient', 'virtual_step',
           'BiLevelEpochBasedTrainLoop', 'BiLevelIterBasedTrainLoop', 'BiLevelOptimWrapperConstructor',
           'select_parameters', 'split_halves', 'bilevel_train_step', 'computed_in', 'decoder_modules',
           'is_bilevel_batch']
