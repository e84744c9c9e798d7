"""Bi-level optimisation: hypergradient, isolation of the levels, first-order step, D1/D2 split, resume."""
import copy
import json
import os.path as osp

import pytest
import torch
from mmengine.optim import OptimWrapperDict
from mmengine.runner import Runner
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from cfg_helpers import demo_cfg, model_cfg
from mmseg_amsam.engine import (BiLevelOptimWrapperConstructor, bilevel_train_step, split_halves,
                                unrolled_hypergradient, virtual_step)
from mmseg_amsam.engine.bilevel import computed_in, decoder_modules

# ---------------------------------------------------------------- hypergradient on a problem with an exact answer


def toy_problem(seed=0):
    g = torch.Generator().manual_seed(seed)
    x1, x2 = torch.randn(12, 5, generator=g, dtype=torch.float64), torch.randn(10, 5, generator=g,
                                                                                dtype=torch.float64)
    m1, m2 = torch.randn(12, 3, generator=g, dtype=torch.float64), torch.randn(10, 3, generator=g,
                                                                                dtype=torch.float64)
    y1, y2 = torch.randn(12, generator=g, dtype=torch.float64), torch.randn(10, generator=g, dtype=torch.float64)
    w = torch.nn.Parameter(torch.randn(5, generator=g, dtype=torch.float64))
    a = torch.nn.Parameter(torch.randn(3, generator=g, dtype=torch.float64))

    def l1(w_=None):
        w_ = w if w_ is None else w_
        return ((x1 @ w_ + m1 @ torch.tanh(a) - y1)**2).mean() + 2.0 * (torch.sin(w_[:3]) * a).sum()

    def l2(w_=None):
        w_ = w if w_ is None else w_
        return ((x2 @ torch.tanh(w_) + m2 @ a - y2)**2).mean()

    return w, a, l1, l2


def adamw_step_differentiable(w, g, state, lr, betas, eps, wd):
    """torch.optim.AdamW's update, written with autograd-friendly ops (reference for the exact hypergradient)."""
    step = state['step'] + 1
    m = betas[0] * state['exp_avg'] + (1 - betas[0]) * g
    v = betas[1] * state['exp_avg_sq'] + (1 - betas[1]) * g * g
    denom = (v.sqrt() / (1 - betas[1]**step)**0.5) + eps
    return w * (1 - lr * wd) - lr / (1 - betas[0]**step) * m / denom


def warmed_adamw(w, l1, steps=3):
    opt = torch.optim.AdamW([w], lr=0.5, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1)
    for _ in range(steps):
        opt.zero_grad()
        l1().backward()
        opt.step()
    opt.zero_grad(set_to_none=True)
    return opt


def test_virtual_step_is_the_optimizer_step():
    w, a, l1, _ = toy_problem()
    for opt in (warmed_adamw(w, l1), torch.optim.SGD([w], lr=0.1, momentum=0.9, weight_decay=0.01)):
        if isinstance(opt, torch.optim.SGD):
            for _ in range(2):
                opt.zero_grad()
                l1().backward()
                opt.step()
        g = torch.autograd.grad(l1(), [w])[0]
        before = copy.deepcopy(opt.state_dict())
        new, _ = virtual_step(opt, [w], [g])
        assert str(opt.state_dict()) == str(before)  # state only read
        real, real_opt = copy.deepcopy((w, opt))  # the optimizer state follows its copied parameter
        real.grad = g.clone()
        real_opt.step()
        torch.testing.assert_close(new[0], real.detach(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize('hvp', ['exact', 'finite_difference'])
def test_unrolled_hypergradient_matches_exact_double_backward(hvp):
    w, a, l1, l2 = toy_problem()
    opt = warmed_adamw(w, l1)
    a.grad = None  # the warm-up's backward also reached A
    st = opt.state[w]
    state = dict(step=float(st['step']), exp_avg=st['exp_avg'], exp_avg_sq=st['exp_avg_sq'])
    w_before = w.detach().clone()
    # exact: differentiate L2(w'(A), A) through the AdamW virtual step (double backward)
    g1 = torch.autograd.grad(l1(), [w], create_graph=True)[0]
    w_virtual = adamw_step_differentiable(w, g1, state, lr=0.5, betas=(0.9, 0.999), eps=1e-8, wd=0.1)
    exact = torch.autograd.grad(l2(w_virtual), [a])[0]
    first_order = torch.autograd.grad(l2(w_virtual.detach()), [a])[0]
    ours, _ = unrolled_hypergradient(l1, l2, [w], [a], opt, fd_eps=1e-5, hvp=hvp)
    # double backward: exact; central finite differences: error O(eps^2) -> tight agreement in float64
    torch.testing.assert_close(ours[0], exact, rtol=1e-6, atol=1e-9)
    assert (exact - first_order).norm() > 1e-3 * exact.norm()  # the implicit term matters here
    assert torch.equal(w.detach(), w_before)  # weights restored bit for bit
    assert w.grad is None and a.grad is None  # nothing read from / left in .grad


# ---------------------------------------------------------------- the step on the tiny AM-SAM


def tiny_model_and_wrappers(unrolled=False, seed=0):
    torch.manual_seed(seed)
    cfg = model_cfg(train_cfg=dict(unrolled=unrolled))
    model = MODELS.build(cfg)
    ow_cfg = dict(lower=dict(type='OptimWrapper', params=[r'^decode_head\.'],
                             optimizer=dict(type='AdamW', lr=5e-3, betas=(0.9, 0.999), weight_decay=0.1)),
                  upper=dict(type='OptimWrapper', params=[r'^learnable_prompt\.'],
                             optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.1)))
    return model, BiLevelOptimWrapperConstructor(ow_cfg)(model)


def data_batch(seed, n=1, size=128):
    g = torch.Generator().manual_seed(seed)
    imgs, samples = [], []
    for i in range(n):
        imgs.append((torch.rand(3, size, size, generator=g) * 255).to(torch.uint8))
        s = SegDataSample(metainfo=dict(ori_shape=(size, size), img_shape=(size, size), pad_shape=(size, size)))
        gt = torch.zeros(1, size, size, dtype=torch.long)
        gt[0, 10 + 7 * seed:90, 20:100] = 1
        s.gt_sem_seg = PixelData(data=gt)
        samples.append(s)
    return dict(inputs=imgs, data_samples=samples)


def named(model, prefix):
    return {n: p for n, p in model.named_parameters() if n.startswith(prefix)}


def test_constructor_selects_disjoint_levels_and_freezes_the_rest():
    model, ow = tiny_model_and_wrappers()
    assert isinstance(ow, OptimWrapperDict) and set(ow.keys()) == {'lower', 'upper'}
    lower = {id(p) for g in ow['lower'].optimizer.param_groups for p in g['params']}
    upper = {id(p) for g in ow['upper'].optimizer.param_groups for p in g['params']}
    assert lower and upper and not lower & upper
    assert {id(p) for p in named(model, 'learnable_prompt.').values()} == upper
    assert ow['lower'].optimizer.defaults['lr'] == 5e-3 and ow['upper'].optimizer.defaults['lr'] == 1e-3
    with pytest.raises(ValueError, match='both levels'):
        BiLevelOptimWrapperConstructor(dict(lower=dict(params=['prompt'], optimizer=dict(type='SGD', lr=1)),
                                            upper=dict(params=['prompt'], optimizer=dict(type='SGD', lr=1))))(model)
    with pytest.raises(ValueError, match='no trainable parameter'):
        BiLevelOptimWrapperConstructor(dict(lower=dict(params=['^backbone'], optimizer=dict(type='SGD', lr=1)),
                                            upper=dict(optimizer=dict(type='SGD', lr=1))))(model)


@pytest.mark.parametrize('unrolled', [False, True])
def test_levels_are_isolated(unrolled):
    model, ow = tiny_model_and_wrappers(unrolled)
    lower, upper = named(model, 'decode_head.'), named(model, 'learnable_prompt.')
    seen = {}

    def spy(level, own, other, step):

        def wrapped(*args, **kwargs):
            seen[level] = dict(
                other_grads=[p.grad for p in other.values() if p.requires_grad],
                own_has_grad=all(p.grad is not None for p in own.values() if p.requires_grad),
                other_values={n: p.detach().clone() for n, p in other.items()})
            return step(*args, **kwargs)

        return wrapped

    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    ow['lower'].step = spy('lower', lower, upper, ow['lower'].step)
    ow['upper'].step = spy('upper', upper, lower, ow['upper'].step)
    log = bilevel_train_step(model, dict(lower=data_batch(0), upper=data_batch(1)), ow)
    assert {'lower.loss', 'upper.loss', 'lower.decode.loss_dice'} <= set(log)
    for level in ('lower', 'upper'):
        assert seen[level]['own_has_grad']
        assert all(g is None for g in seen[level]['other_grads'])  # no gradient of one level on the other
    # the lower step left the prompt untouched; the upper step left the decoder as the lower step made it
    for n, v in seen['lower']['other_values'].items():
        assert torch.equal(v, before[n])
    for n, v in seen['upper']['other_values'].items():
        assert torch.equal(v, dict(model.named_parameters())[n].detach())
    assert not torch.equal(before['learnable_prompt.dense_embed'], model.learnable_prompt.dense_embed)
    assert all(p.grad is None for p in model.parameters())  # nothing left behind


def test_first_order_equals_lower_then_upper_by_hand():
    model, ow = tiny_model_and_wrappers()
    ref, ref_ow = tiny_model_and_wrappers()
    d1, d2 = data_batch(0), data_batch(1)
    bilevel_train_step(model, dict(lower=d1, upper=d2), ow)
    # by hand: train the lower level on D1, then the upper level on D2
    for data, level in ((d1, 'lower'), (d2, 'upper')):
        batch = ref.data_preprocessor(copy.deepcopy(data), True)
        loss, _ = ref.parse_losses(ref.loss(batch['inputs'], batch['data_samples']))
        ref.zero_grad(set_to_none=True)
        loss.backward()
        other = 'upper' if level == 'lower' else 'lower'
        for g in ref_ow[other].optimizer.param_groups:
            for p in g['params']:
                p.grad = None
        ref_ow[level].optimizer.step()
    for (n, p), (_, q) in zip(model.named_parameters(), ref.named_parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=n)


def test_split_is_disjoint_covering_stable_and_handles_odd_sizes():
    for n in (2, 7, 8, 16):
        d1, d2 = split_halves(n, seed=3)
        assert sorted(d1 + d2) == list(range(n)) and not set(d1) & set(d2)
        assert len(d1) == (n + 1) // 2 and len(d2) == n // 2
        assert (d1, d2) == split_halves(n, seed=3)
    assert split_halves(16, seed=0) != split_halves(16, seed=1)
    with pytest.raises(ValueError, match='at least 2'):
        split_halves(1)


# ---------------------------------------------------------------- through the Runner


def iter_cfg(demo_root, work_dir, max_iters, resume=False):
    cfg = demo_cfg(demo_root, work_dir)
    cfg.train_cfg = dict(type='BiLevelIterBasedTrainLoop', max_iters=max_iters, val_interval=1000, split_seed=0)
    cfg.param_scheduler = dict(lower=[dict(type='PolyLR', power=0.9, eta_min=0.0, begin=0, end=4, by_epoch=False)],
                               upper=[dict(type='PolyLR', power=0.9, eta_min=0.0, begin=0, end=4, by_epoch=False)])
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=False, interval=2)
    cfg.log_processor = dict(by_epoch=False)
    cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None
    cfg.resume = resume
    return cfg


def count_steps(runner):
    """Record the global iteration of every training step the runner runs."""
    from mmengine.hooks import Hook
    seen = []

    class Counter(Hook):

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            seen.append(runner.iter)  # 0-based index of the step just run (the loop counts it up afterwards)

    runner.register_hook(Counter())
    return seen


def test_resume_gives_the_same_parameters_and_optimizer_state(demo_root, tmp_path):
    full = Runner.from_cfg(iter_cfg(demo_root, tmp_path / 'full', 4))
    full.train()
    split = json.load(open(tmp_path / 'full' / 'bilevel_split.json'))
    assert len(split['d1']) == 2 and len(split['d2']) == 2 and not set(split['d1']) & set(split['d2'])
    first = Runner.from_cfg(iter_cfg(demo_root, tmp_path / 'part', 2))
    first.train()
    assert osp.exists(tmp_path / 'part' / 'iter_2.pth')
    resumed = Runner.from_cfg(iter_cfg(demo_root, tmp_path / 'part', 4, resume=True))
    steps = count_steps(resumed)
    resumed.train()
    assert steps == [2, 3]  # it really resumed: only iterations 3 and 4 ran
    for (n, p), (_, q) in zip(full.model.named_parameters(), resumed.model.named_parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-6, msg=n)
    sa, sb = full.optim_wrapper.state_dict(), resumed.optim_wrapper.state_dict()
    for level in ('lower', 'upper'):
        for k, st in sa[level]['state'].items():
            torch.testing.assert_close(st['exp_avg'], sb[level]['state'][k]['exp_avg'], rtol=0, atol=1e-7)
        assert sa[level]['param_groups'][0]['lr'] == pytest.approx(sb[level]['param_groups'][0]['lr'])


def test_unrolled_training_step_uses_the_unrolled_hypergradient():
    """In training the virtual step is the real lower step; the prompt's gradient equals the virtual-step
    hypergradient computed independently on a copy taken before the step."""
    model, ow = tiny_model_and_wrappers(unrolled=True)
    d1, d2 = data_batch(0), data_batch(1)
    for _ in range(2):  # give AdamW some moment estimates first
        bilevel_train_step(model, dict(lower=copy.deepcopy(d1), upper=copy.deepcopy(d2)), ow)
    twin, twin_ow = copy.deepcopy((model, ow))
    b1 = twin.data_preprocessor(copy.deepcopy(d1), True)
    b2 = twin.data_preprocessor(copy.deepcopy(d2), True)
    f1 = twin.frozen_features(b1['inputs'], b1['data_samples'])
    f2 = twin.frozen_features(b2['inputs'], b2['data_samples'])
    f1, f2 = ({k: v.double() if torch.is_tensor(v) and v.is_floating_point() else v for k, v in f.items()}
              for f in (f1, f2))
    lower_p = [p for g in twin_ow['lower'].optimizer.param_groups for p in g['params']]
    upper_p = [p for g in twin_ow['upper'].optimizer.param_groups for p in g['params']]
    with computed_in(decoder_modules(twin), torch.float64):  # as the step's default hypergrad_dtype
        expected, _ = unrolled_hypergradient(
            lambda: twin.parse_losses(twin.loss_from(f1, b1['data_samples']))[0],
            lambda: twin.parse_losses(twin.loss_from(f2, b2['data_samples']))[0], lower_p, upper_p,
            twin_ow['lower'].optimizer)
    got = {}
    step = ow['upper'].step

    def spy(*a, **k):
        got['grads'] = [p.grad.clone() for g in ow['upper'].optimizer.param_groups for p in g['params']]
        return step(*a, **k)

    ow['upper'].step = spy
    bilevel_train_step(model, dict(lower=copy.deepcopy(d1), upper=copy.deepcopy(d2)), ow)
    # both in float64 on the same float32 inputs; the training step's w' is float32 AdamW arithmetic, the virtual
    # step's float64: the same ~6 float32 roundings per weight as in test_training_fidelity_hypergradient's bound
    # (relative to the whole gradient's norm: single entries near 0 carry the absolute error of the large ones)
    diff = sum(((g.double() - e)**2).sum() for g, e in zip(got['grads'], expected)).sqrt()
    assert float(diff / sum((e**2).sum() for e in expected).sqrt()) <= 64 * 2.0**-24


def test_epoch_based_resume_matches_an_uninterrupted_run(demo_root, tmp_path):
    """The demo's epoch-based bi-level loop, stopped after epoch 1 and resumed, ends where a 2-epoch run ends."""

    def cfg(work, epochs, resume=False):
        c = demo_cfg(demo_root, tmp_path / work, max_epochs=epochs, val_interval=100)
        c.param_scheduler = dict(
            lower=[dict(type='PolyLR', power=0.9, eta_min=0.0, begin=0, end=2, by_epoch=True,
                        convert_to_iter_based=True)],
            upper=[dict(type='PolyLR', power=0.9, eta_min=0.0, begin=0, end=2, by_epoch=True,
                        convert_to_iter_based=True)])
        c.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=True, interval=1)
        c.resume = resume
        return c

    full = Runner.from_cfg(cfg('full', 2))
    full.train()
    Runner.from_cfg(cfg('part', 1)).train()
    resumed = Runner.from_cfg(cfg('part', 2, resume=True))
    steps = count_steps(resumed)
    resumed.train()
    assert resumed.train_loop.epoch == 2 and steps == [2, 3]  # resumed: only epoch 2's two iterations ran
    for (n, p), (_, q) in zip(full.model.named_parameters(), resumed.model.named_parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-6, msg=n)
