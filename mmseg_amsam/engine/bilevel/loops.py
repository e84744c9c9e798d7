"""Training loops for bi-level optimisation: mmengine's loops fed with ``{'lower': D1, 'upper': D2}`` batches.

The loops own the iteration and the step (:func:`~.step.bilevel_train_step`); the model owns the computation
(``frozen_features`` / ``loss_from``), as mmengine's loops and models divide the work.
"""
import copy
import json
import os.path as osp
from typing import Dict, List, Optional, Union

from mmengine.dataset import Compose
from mmengine.dist import is_main_process
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop
from mmseg.registry import LOOPS
from torch.utils.data import DataLoader

from .dataloader import BiLevelDataLoader
from .split import split_halves
from .step import bilevel_train_step

SPLIT_FILE = 'bilevel_split.json'


class _BiLevelSetup:
    """Splits the training set into D1/D2 (seeded, recorded in the work dir) and points validation at D2."""

    def _setup_bilevel(self, loader_cfg: Union[Dict, DataLoader], split_seed: int, val_on: str,
                       lower_batch_size: Optional[int] = None, upper_batch_size: Optional[int] = None) -> None:
        if val_on not in ('d2', 'val'):
            raise ValueError(f"val_on must be 'd2' (paper: select the checkpoint on D2) or 'val', got {val_on!r}")
        self.val_on = val_on
        dataset = self.dataloader.dataset
        self.d1_indices, self.d2_indices = split_halves(len(dataset), split_seed)
        names = [self._name(dataset, i) for i in range(len(dataset))]
        self.split = dict(seed=split_seed, d1=[names[i] for i in self.d1_indices],
                          d2=[names[i] for i in self.d2_indices])
        if is_main_process():
            with open(osp.join(self.runner.work_dir, SPLIT_FILE), 'w') as f:
                json.dump(self.split, f, indent=1)
        print_log(f'bi-level split (seed {split_seed}): D1 = {len(self.d1_indices)} images, '
                  f'D2 = {len(self.d2_indices)} images; recorded in {SPLIT_FILE}', logger='current')
        lower = self._subset_loader(loader_cfg, self.d1_indices, lower_batch_size)
        upper = self._subset_loader(loader_cfg, self.d2_indices, upper_batch_size)
        if lower_batch_size or upper_batch_size:
            print_log(f'bi-level batch sizes: D1 {lower.batch_size}, D2 {upper.batch_size}', logger='current')
        self.dataloader = BiLevelDataLoader(lower, upper)

    @staticmethod
    def _name(dataset, index: int) -> str:
        info = dataset.get_data_info(index) if hasattr(dataset, 'get_data_info') else {}
        return osp.basename(info.get('img_path', str(index)))

    def _subset_loader(self, loader_cfg, indices: List[int], batch_size: Optional[int] = None) -> DataLoader:
        subset = self.dataloader.dataset.get_subset(indices)
        if batch_size is not None and batch_size < 1:
            raise ValueError(f'bi-level batch sizes must be >= 1, got {batch_size}')
        if isinstance(loader_cfg, DataLoader):
            return DataLoader(subset, batch_size=batch_size or loader_cfg.batch_size, shuffle=True,
                              collate_fn=loader_cfg.collate_fn, num_workers=loader_cfg.num_workers)
        cfg = copy.deepcopy(loader_cfg)
        cfg['dataset'] = subset
        if batch_size:
            cfg['batch_size'] = batch_size
        return self.runner.build_dataloader(cfg, seed=self.runner.seed,
                                            diff_rank_seed=self.runner._randomness_cfg.get('diff_rank_seed', False))

    def _run_bilevel_iter(self, batch_idx: int, data_batch: dict) -> None:
        """mmengine's ``run_iter`` with the bi-level step in place of ``model.train_step``. A model wrapper (DDP) is
        unwrapped: the step all-reduces both levels' gradients itself."""
        self.runner.call_hook('before_train_iter', batch_idx=batch_idx, data_batch=data_batch)
        model = self.runner.model.module if is_model_wrapper(self.runner.model) else self.runner.model
        outputs = bilevel_train_step(model, data_batch, self.runner.optim_wrapper)
        self.runner.call_hook('after_train_iter', batch_idx=batch_idx, data_batch=data_batch, outputs=outputs)
        self._iter += 1

    def _validate_on_d2(self) -> None:
        """Replace the validation set by D2 (with the validation pipeline), as the paper selects checkpoints."""
        val_loop = self.runner.val_loop
        if self.val_on != 'd2' or val_loop is None:
            return
        val_cfg = self.runner.cfg.get('val_dataloader')
        d2 = self.dataloader.upper.dataset.get_subset(list(range(len(self.d2_indices))))
        d2.pipeline = Compose(copy.deepcopy(val_cfg['dataset']['pipeline']))
        cfg = copy.deepcopy(val_cfg)
        cfg['dataset'] = d2
        cfg.pop('sampler', None)
        cfg['sampler'] = dict(type='DefaultSampler', shuffle=False)
        val_loop.dataloader = self.runner.build_dataloader(cfg, seed=self.runner.seed)
        print_log(f'validating on D2 ({len(d2)} images) to select the best checkpoint', logger='current')


@LOOPS.register_module()
class BiLevelEpochBasedTrainLoop(_BiLevelSetup, EpochBasedTrainLoop):
    """Epoch-based bi-level loop: an epoch is one pass over D1 (with D2 alongside), as in BLO-SAM.

    Args (besides ``EpochBasedTrainLoop``'s):
        split_seed: seed of the D1/D2 split (recorded in ``work_dir/bilevel_split.json``).
        val_on: ``'d2'`` validates on D2 (the paper's model selection) or ``'val'`` on ``val_dataloader`` (e.g. a
            held-out validation subset, ``tools/run_cells.py --select-on val``).
        lower_batch_size, upper_batch_size: batch sizes of the D1 and D2 loaders (default: the train_dataloader's;
            the paper's is 1). Each sample keeps its own prompt; an epoch is one pass over D1.
    """

    def __init__(self, runner, dataloader, max_epochs: int, val_begin: int = 1, val_interval: int = 1,
                 dynamic_intervals=None, split_seed: int = 0, val_on: str = 'd2',
                 lower_batch_size: Optional[int] = None, upper_batch_size: Optional[int] = None) -> None:
        loader_cfg = copy.deepcopy(dataloader) if isinstance(dataloader, dict) else dataloader
        super().__init__(runner, dataloader, max_epochs, val_begin, val_interval, dynamic_intervals)
        self._setup_bilevel(loader_cfg, split_seed, val_on, lower_batch_size, upper_batch_size)
        self._max_iters = self._max_epochs * len(self.dataloader)

    def run(self):
        self._validate_on_d2()
        return super().run()

    def run_iter(self, idx, data_batch: dict) -> None:
        self._run_bilevel_iter(idx, data_batch)


@LOOPS.register_module()
class BiLevelIterBasedTrainLoop(_BiLevelSetup, IterBasedTrainLoop):
    """Iteration-based bi-level loop: each iteration takes one D1 batch and one D2 batch (arguments as above)."""

    def __init__(self, runner, dataloader, max_iters: int, val_begin: int = 1, val_interval: int = 1000,
                 dynamic_intervals=None, split_seed: int = 0, val_on: str = 'd2',
                 lower_batch_size: Optional[int] = None, upper_batch_size: Optional[int] = None) -> None:
        loader_cfg = copy.deepcopy(dataloader) if isinstance(dataloader, dict) else dataloader
        super().__init__(runner, dataloader, max_iters, val_begin, val_interval, dynamic_intervals)
        self._setup_bilevel(loader_cfg, split_seed, val_on, lower_batch_size, upper_batch_size)
        self.dataloader_iterator = self.dataloader.infinite()

    def run(self):
        self._validate_on_d2()
        return super().run()

    def run_iter(self, data_batch: dict) -> None:
        self._run_bilevel_iter(self._iter, data_batch)
