"""The paper's poly learning rate through a real Runner run, for both levels (issue 10, point 9):
lr_i = lr_0 (1 - i / (N - 1))^0.9 for iteration i = 0 .. N-1, N = epochs x |D1|. mmengine's PolyLR (as in every mmseg
config) decays over end - begin - 1 steps, so the last iteration runs at eta_min = 0."""
import json

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner

from cfg_helpers import demo_cfg

EPOCHS = 2


class LrRecorder(Hook):

    def __init__(self):
        self.lrs = []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        ow = runner.optim_wrapper
        self.lrs.append(tuple(ow[level].optimizer.param_groups[0]['lr'] for level in ('lower', 'upper')))


def test_poly_lr_of_both_levels_per_iteration(demo_root, tmp_path):
    cfg = demo_cfg(demo_root, tmp_path, max_epochs=EPOCHS, val_interval=100)
    for level in ('lower', 'upper'):  # the shipped schedule (blo_100e.py), its length set to the run's
        (poly, ) = cfg.param_scheduler[level]
        assert (poly.type, poly.power, poly.eta_min, poly.by_epoch, poly.convert_to_iter_based) == (
            'PolyLR', 0.9, 0.0, True, True)
        poly.end = EPOCHS
    lr0 = {level: cfg.optim_wrapper[level].optimizer.lr for level in ('lower', 'upper')}
    assert lr0 == dict(lower=2e-4, upper=1e-3)  # the demo's (configs/amsam_demo.py); the paper's: test_configs.py
    runner = Runner.from_cfg(cfg)
    recorder = LrRecorder()
    runner.register_hook(recorder)
    runner.train()
    d1 = len(json.load(open(tmp_path / 'bilevel_split.json'))['d1'])
    assert d1 == 2  # 4 demo training images, half in D1
    n = EPOCHS * d1
    assert len(recorder.lrs) == n
    for i, (lower, upper) in enumerate(recorder.lrs):
        assert lower == pytest.approx(lr0['lower'] * (1 - i / (n - 1))**0.9, rel=1e-9, abs=1e-15), i
        assert upper == pytest.approx(lr0['upper'] * (1 - i / (n - 1))**0.9, rel=1e-9, abs=1e-15), i
    assert recorder.lrs[-1] == (0.0, 0.0)


def test_resume_from_a_kept_checkpoint_of_the_shipped_schedule_is_bit_identical(demo_root, tmp_path):
    """Issue 19: stopped after the checkpoint of epoch 2 (the schedule's SafeCheckpointHook, its interval set to 2
    for speed), resumed, the run ends exactly where an uninterrupted 3-epoch run ends: parameters and both levels'
    AdamW state equal bit for bit (not within a tolerance: a 6e-8 drift was reported)."""

    def run(work, epochs, resume=False):
        cfg = demo_cfg(demo_root, tmp_path / work, max_epochs=epochs, val_interval=1)
        for level in ('lower', 'upper'):
            cfg.param_scheduler[level][0].end = 3
        assert cfg.default_hooks.checkpoint.type == 'SafeCheckpointHook'  # blo_100e.py's
        cfg.default_hooks.checkpoint.interval = 2
        cfg.resume = resume
        runner = Runner.from_cfg(cfg)
        runner.train()
        return runner

    full = run('full', 3)
    run('part', 2)
    resumed = run('part', 3, resume=True)
    assert resumed.train_loop.iter == full.train_loop.iter == 3 * 2
    for (name, p), (_, q) in zip(full.model.named_parameters(), resumed.model.named_parameters()):
        assert torch.equal(p, q), name
    sa, sb = full.optim_wrapper.state_dict(), resumed.optim_wrapper.state_dict()
    for level in ('lower', 'upper'):
        for k, state in sa[level]['state'].items():
            for key, value in state.items():
                assert torch.equal(value, sb[level]['state'][k][key]), (level, k, key)
