"""--amp: which levels switch to AmpOptimWrapper, and loss scaling through the explicit-gradient bi-level step."""
import copy
from contextlib import contextmanager

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper, OptimWrapperDict

from cfg_helpers import ROOT
from mmseg_amsam.engine import bilevel_train_step
from mmseg_amsam.engine.amp import enable_amp
from test_bilevel import data_batch, tiny_model_and_wrappers


def test_enable_amp_keeps_the_unrolled_hypergradient_in_fp32():
    cfg = Config.fromfile(f'{ROOT}/configs/amsam_demo.py')
    first_order = copy.deepcopy(cfg)
    enable_amp(first_order, dtype='bfloat16')
    assert first_order.optim_wrapper.lower.type == first_order.optim_wrapper.upper.type == 'AmpOptimWrapper'
    assert first_order.optim_wrapper.lower.dtype == 'bfloat16'
    unrolled = copy.deepcopy(cfg)
    unrolled.model.train_cfg.unrolled = True
    enable_amp(unrolled)
    assert unrolled.optim_wrapper.lower.type == 'AmpOptimWrapper'
    assert unrolled.optim_wrapper.upper.type == 'OptimWrapper'  # hypergradient stays fp32


class ScaledWrapper(OptimWrapper):
    """What AmpOptimWrapper does with gradients (a GradScaler), runnable on CPU."""

    def __init__(self, optimizer):
        super().__init__(optimizer)
        self.loss_scaler = torch.amp.GradScaler('cpu', init_scale=2.0**12)

    def step(self, **kwargs):
        self.loss_scaler.unscale_(self.optimizer)
        self.loss_scaler.step(self.optimizer)
        self.loss_scaler.update()


def sgd_levels(model):
    # SGD, not AdamW: Adam's update is invariant to the gradient's scale, so a missing unscale would go unseen
    lower = torch.optim.SGD([p for n, p in model.named_parameters() if n.startswith('decode_head.')
                             and p.requires_grad], lr=0.1)
    upper = torch.optim.SGD([p for n, p in model.named_parameters() if n.startswith('learnable_prompt.')], lr=0.1)
    return lower, upper


def test_scaled_losses_give_the_same_step():
    model, _ = tiny_model_and_wrappers()
    ref, _ = tiny_model_and_wrappers()
    lower, upper = sgd_levels(model)
    scaled = OptimWrapperDict(lower=ScaledWrapper(lower), upper=ScaledWrapper(upper))
    ref_ow = OptimWrapperDict(**dict(zip(('lower', 'upper'), map(OptimWrapper, sgd_levels(ref)))))
    data = dict(lower=data_batch(0), upper=data_batch(1))
    bilevel_train_step(model, copy.deepcopy(data), scaled)
    bilevel_train_step(ref, copy.deepcopy(data), ref_ow)
    for (n, p), (_, q) in zip(model.named_parameters(), ref.named_parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=n)
    assert scaled['lower'].loss_scaler.get_scale() == 2.0**12  # no inf/nan found, scale kept


class AutocastWrapper(OptimWrapper):
    """An optim wrapper whose ``optim_context`` is a CPU bfloat16 autocast (what AmpOptimWrapper does on CUDA)."""

    @contextmanager
    def optim_context(self, model):
        with torch.autocast('cpu', dtype=torch.bfloat16):
            yield


@pytest.mark.parametrize('unrolled', [False, True])
def test_frozen_parts_run_under_the_lower_levels_autocast_and_the_hypergradient_in_fp32(unrolled):
    model, ow = tiny_model_and_wrappers(unrolled=unrolled)
    amp = OptimWrapperDict(lower=AutocastWrapper(ow['lower'].optimizer),
                           upper=(OptimWrapper if unrolled else AutocastWrapper)(ow['upper'].optimizer))
    seen = {'backbone': [], 'prompter': [], 'decode_head': []}
    for name in seen:
        getattr(model, name).register_forward_pre_hook(
            lambda m, args, name=name: seen[name].append(torch.is_autocast_enabled('cpu')))
    got = {}
    step = amp['upper'].step

    def spy(*a, **k):
        got['dtypes'] = {p.grad.dtype for g in amp['upper'].optimizer.param_groups for p in g['params']}
        return step(*a, **k)

    amp['upper'].step = spy
    bilevel_train_step(model, dict(lower=data_batch(0), upper=data_batch(1)), amp)
    assert seen['backbone'] == [True, True] and seen['prompter'] == [True, True]  # D1 and D2 batches
    # lower pass under autocast; unrolled: upper loss + exact Hessian-vector product in fp32
    assert seen['decode_head'] == ([True, False, False] if unrolled else [True, True])
    assert got['dtypes'] == {torch.float32}
