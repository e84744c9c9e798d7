"""The unrolled hypergradient of fp32 training on the real-size (ViT-B) SAM mask decoder, against an exact float64
reference that differentiates through AdamW's step with autograd (issue 10, point 2; issue 19, point 1)."""
import copy

import pytest
import torch
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from torch.func import functional_call

from cfg_helpers import model_cfg
from mmseg_amsam.engine import BiLevelOptimWrapperConstructor, bilevel_train_step

SIZE = 256  # BLO-SAM's input; the decoder has ViT-B's dims (transformer_dim 256, depth 2), the encoder is tiny
BETAS, EPS, WD = (0.9, 0.999), 1e-8, 0.1


def build(lower_lr, hvp='exact'):
    torch.manual_seed(0)
    cfg = model_cfg(img_size=SIZE, embedding_cache=None, prompter=dict(type='MaskBoxPrompter', fallback='image'),
                    train_cfg=dict(unrolled=True, hvp=hvp))
    cfg.data_preprocessor.size = (SIZE, SIZE)
    model = MODELS.build(cfg)
    head = model.decode_head
    assert (head.decoder.transformer_dim, len(head.decoder.transformer.layers)) == (256, 2)
    ow = BiLevelOptimWrapperConstructor(dict(
        lower=dict(params=[r'^decode_head\.'], optimizer=dict(type='AdamW', lr=lower_lr, betas=BETAS, eps=EPS,
                                                              weight_decay=WD)),
        upper=dict(params=[r'^learnable_prompt\.'], optimizer=dict(type='AdamW', lr=1e-3, betas=BETAS, eps=EPS,
                                                                   weight_decay=WD))))(model)
    return model, ow


def batch(seed):
    g = torch.Generator().manual_seed(seed)
    img = (torch.rand(3, SIZE, SIZE, generator=g) * 255).to(torch.uint8)
    s = SegDataSample(metainfo=dict(ori_shape=(SIZE, SIZE), img_shape=(SIZE, SIZE), pad_shape=(SIZE, SIZE)))
    gt = torch.zeros(1, SIZE, SIZE, dtype=torch.long)
    gt[0, 40 + 20 * seed:200, 60:220 - 30 * seed] = 1
    s.gt_sem_seg = PixelData(data=gt)
    return dict(inputs=[img], data_samples=[s])


class LossOf(torch.nn.Module):
    """``L(params)`` on fixed frozen features, for ``torch.func.functional_call``."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, frozen, samples):
        return self.model.parse_losses(self.model.loss_from(frozen, samples))[0]


def exact_float64(model, ow, data):
    """``dL2(w'(A), A)/dA`` with ``w' = AdamW(w, dL1/dw(w, A))`` at the first step, all in float64 by autograd
    through the optimizer's update (written out), and its direct part ``dL2/dA`` at fixed ``w'``."""
    ref = LossOf(copy.deepcopy(model).double())
    names = {id(p): n for n, p in model.named_parameters()}
    lower = [names[id(p)] for g in ow['lower'].optimizer.param_groups for p in g['params']]
    upper = [names[id(p)] for g in ow['upper'].optimizer.param_groups for p in g['params']]
    params = dict(ref.model.named_parameters())
    w = {n: params[n].detach().clone().requires_grad_(True) for n in lower}
    a = {n: params[n].detach().clone().requires_grad_(True) for n in upper}
    feats = []
    for d in (data['lower'], data['upper']):
        b = model.data_preprocessor(copy.deepcopy(d), True)
        frozen = model.frozen_features(b['inputs'], b['data_samples'])
        feats.append(({k: v.double() if torch.is_tensor(v) and v.is_floating_point() else v
                       for k, v in frozen.items()}, b['data_samples']))

    def loss(wd, level):
        return functional_call(ref, {f'model.{n}': v for n, v in {**wd, **a}.items()}, feats[level])

    g1 = torch.autograd.grad(loss(w, 0), list(w.values()), create_graph=True)
    lr = ow['lower'].optimizer.param_groups[0]['lr']
    new = {}
    for (n, p), g in zip(w.items(), g1):  # AdamW's first step: m = (1-b1) g, v = (1-b2) g^2, bias-corrected
        m, v = (1 - BETAS[0]) * g, (1 - BETAS[1]) * g * g
        denom = v.clamp_min(1e-300).sqrt() / (1 - BETAS[1])**0.5 + EPS
        new[n] = p * (1 - lr * WD) - lr / (1 - BETAS[0]) * m / denom
    total = torch.autograd.grad(loss(new, 1), list(a.values()))
    direct = torch.autograd.grad(loss({n: v.detach() for n, v in new.items()}, 1), list(a.values()))
    return total, direct


def ours(model, ow, data, hypergrad_dtype=None):
    """The upper gradient our fp32 training step applies (weights, optimizers and features in float32)."""
    got = {}
    step = ow['upper'].step

    def spy(*args, **kwargs):
        got['grads'] = [p.grad.clone() for g in ow['upper'].optimizer.param_groups for p in g['params']]
        return step(*args, **kwargs)

    ow['upper'].step = spy
    log = bilevel_train_step(model, copy.deepcopy(data), ow, hypergrad_dtype=hypergrad_dtype)
    assert all(g.dtype == torch.float32 for g in got['grads'])
    assert all(p.dtype == torch.float32 for p in model.parameters())
    return got['grads'], log


def rel_error(got, ref):
    diff = sum(((g.double() - r)**2).sum() for g, r in zip(got, ref))
    return float(diff.sqrt() / sum((r**2).sum() for r in ref).sqrt())


# The bound, from the computation rather than from one CPU's rounding. With the default hypergrad_dtype='float64'
# every pass of the unrolled term runs in float64 on the same float32 features as the reference, so what is left of
# float32 is the stored lower weights w' = AdamW(w, g1): about 6 float32 roundings per element (scale, square root,
# division, two products, difference), i.e. |dw'| <= 6 u |w'| with u = 2^-24. The hypergradient's sensitivity to w'
# is of order 1 (rounding w' once to float32 and otherwise staying in float64 moves it by ~u here), so any IEEE-754
# CPU lands within 6 u times that sensitivity; 64 u allows a sensitivity of 10 and still sits three orders of
# magnitude below what float32 passes give (hypergrad_dtype='float32': 7.7e-4 / 8.0e-3 relative on a 2-core AMD
# EPYC, 1.2e-3 / 6.2e-4 on an Intel Xeon -- rounding noise, so it moves with the CPU; finite differences: 8.7e3 and
# 2.1). In the float32 path the error comes from the lower gradient g1: AdamW's update derivative reaches lr / eps
# for entries with |g1| ~ eps, magnifying g1's rounding error by up to 2e7 at lr 0.2.
BOUND = 64 * 2.0**-24


@pytest.mark.parametrize('lower_lr', [5e-3, 0.2])
def test_fp32_training_hypergradient_matches_float64_on_the_vit_b_decoder(lower_lr):
    data = dict(lower=batch(0), upper=batch(1))
    model, ow = build(lower_lr)
    total, direct = exact_float64(model, ow, data)
    implicit = [t - d for t, d in zip(total, direct)]
    norm = lambda ts: float(sum((t**2).sum() for t in ts).sqrt())  # noqa: E731
    assert norm(implicit) > norm(direct)  # the second-order term dominates here: a real test of it
    grads, log = ours(model, ow, data)
    error = rel_error(grads, total)
    fp32_model, fp32_ow = build(lower_lr)  # for the record (README): what float32 passes give on this CPU
    fp32_error = rel_error(ours(fp32_model, fp32_ow, data, 'float32')[0], total)
    print(f'lower lr {lower_lr}: relative error {error:.2e} (bound {BOUND:.2e}); float32 passes {fp32_error:.2e}')
    assert error <= BOUND
    assert log['upper.hypergrad_implicit_norm'].item() == pytest.approx(norm(implicit), rel=BOUND)
    assert log['upper.hypergrad_direct_norm'].item() == pytest.approx(norm(direct), rel=BOUND)


def test_the_float64_unrolled_term_keeps_float32_parameters_and_leaves_first_order_steps_alone():
    """The float64 passes convert the decoder in place and back: afterwards the parameters are the same objects
    (the optimizers' state refers to them) in float32, buffers too; a first-order step never converts anything, so
    it is bit for bit the same whatever ``hypergrad_dtype`` says."""
    data = dict(lower=batch(0), upper=batch(1))
    model, ow = build(0.2)
    ids = [id(p) for p in model.parameters()]
    ours(model, ow, data, 'float64')
    assert [id(p) for p in model.parameters()] == ids
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(b.dtype == torch.float32 for b in model.buffers() if b.is_floating_point())
    assert all(s['exp_avg'].dtype == torch.float32 for level in ('lower', 'upper')
               for s in ow[level].optimizer.state.values())
    after = []
    for dtype in ('float64', 'float32'):
        model, ow = build(0.2)
        model.train_cfg['unrolled'] = False
        bilevel_train_step(model, copy.deepcopy(data), ow, hypergrad_dtype=dtype)
        after.append([p.detach().clone() for p in model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*after))


def test_an_unknown_hypergrad_dtype_is_one_clear_error():
    model, ow = build(5e-3)
    with pytest.raises(ValueError, match=r"hypergrad_dtype must be one of \['float32', 'float64'\], got 'half'"):
        bilevel_train_step(model, dict(lower=batch(0), upper=batch(1)), ow, hypergrad_dtype='half')
