"""One bi-level training step (paper eq. 5-8): lower level on D1, then upper level on D2."""
from contextlib import contextmanager
from typing import Dict, List, Optional, Sequence

import torch
import torch.distributed as torch_dist
from mmengine.optim import OptimWrapper, OptimWrapperDict
from torch import Tensor

from .hypergradient import _grads, hypergradient_at, virtual_step


def level_params(optim_wrapper: OptimWrapper) -> List[Tensor]:
    return [p for group in optim_wrapper.optimizer.param_groups for p in group['params']]


def all_reduce_mean(grads: Sequence[Tensor]) -> None:
    """Average gradients over processes. DDP does not all-reduce gradients taken with ``torch.autograd.grad``."""
    if torch_dist.is_available() and torch_dist.is_initialized() and torch_dist.get_world_size() > 1:
        world = torch_dist.get_world_size()
        for g in grads:
            torch_dist.all_reduce(g)
            g.div_(world)


def apply_and_step(optim_wrapper: OptimWrapper, params: Sequence[Tensor], grads: Sequence[Tensor]) -> None:
    """Hand explicit gradients to one level's optimizer, step it (clipping, AMP unscaling included), clear them."""
    for p, g in zip(params, grads):
        p.grad = g.detach().to(p.dtype)
    optim_wrapper.step()
    optim_wrapper.zero_grad()


def _scaled(optim_wrapper: OptimWrapper, loss: Tensor) -> Tensor:
    scaler = getattr(optim_wrapper, 'loss_scaler', None)
    return scaler.scale(loss) if scaler is not None else loss


def _unscaled(optim_wrapper: OptimWrapper, grads: Sequence[Tensor]) -> List[Tensor]:
    scaler = getattr(optim_wrapper, 'loss_scaler', None)
    return list(grads) if scaler is None else [g / scaler.get_scale() for g in grads]


def is_bilevel_batch(data, optim_wrapper) -> bool:
    """A ``{'lower': D1 batch, 'upper': D2 batch}`` pair with an ``OptimWrapperDict`` holding both levels."""
    return isinstance(optim_wrapper, OptimWrapperDict) and isinstance(data, dict) and 'lower' in data


def _as_dtype(frozen: dict, dtype: torch.dtype = torch.float32) -> dict:
    """Frozen features in ``dtype``: computed under autocast, back in float32 (the fp32 passes must not run at fp16
    inputs), or in float64 for the unrolled term (``hypergrad_dtype``); a tuple of tensors (SAM 2's encoder output)
    is converted element-wise."""
    def convert(v):
        if isinstance(v, (tuple, list)):
            return type(v)(convert(x) for x in v)
        return v.to(dtype) if isinstance(v, Tensor) and v.is_floating_point() else v
    return {k: convert(v) for k, v in frozen.items()}


HYPERGRAD_DTYPES = {'float64': torch.float64, 'float32': torch.float32}


def decoder_modules(model) -> List[torch.nn.Module]:
    """The parts ``loss_from`` runs on frozen features: every child of the model but the image encoder and the data
    preprocessor (decode head, prompt encoder, learnable prompt; the prompter holds no tensors of its own)."""
    return [m for name, m in model.named_children() if name not in ('backbone', 'data_preprocessor')]


@contextmanager
def computed_in(modules: Sequence[torch.nn.Module], dtype: torch.dtype):
    """Run ``modules`` in ``dtype`` inside the block: their float32 parameters and buffers are converted in place
    (``.data``, so parameter identity -- and with it the optimizers' state -- is kept) and converted back on exit.
    float32 -> float64 -> float32 is exact, and every value written into a parameter inside the block is a float32
    value (the lower weights ``w`` / ``w'``), so the round trip changes no bit."""
    if dtype == torch.float32:
        yield
        return
    tensors = [t for m in modules for t in list(m.parameters()) + list(m.buffers()) if t.dtype == torch.float32]
    tensors = list({id(t): t for t in tensors}.values())  # shared parameters once
    for t in tensors:
        t.data = t.data.to(dtype)
    try:
        yield
    finally:
        for t in tensors:
            t.data = t.data.float()


def bilevel_train_step(model, data: Dict[str, dict], optim_wrapper: OptimWrapperDict,
                       unrolled: Optional[bool] = None, fd_eps: Optional[float] = None,
                       hvp: Optional[str] = None, hypergrad_dtype: Optional[str] = None) -> Dict[str, Tensor]:
    """Lower step on ``data['lower']`` (D1) with the lower optimizer only, then upper step on ``data['upper']``
    (D2) with the upper optimizer only; gradients of one level never reach the other level's parameters.

    ``model`` provides ``data_preprocessor``, ``frozen_features(inputs, samples)`` (the frozen encoder/prompter
    outputs, computed once per batch and shared by every pass of the step), ``loss_from(frozen, samples)`` and
    ``parse_losses``. ``unrolled=True`` adds the second-order (implicit) term to the upper gradient, differentiating
    through the lower step just taken (:func:`hypergradient_at`). ``unrolled`` / ``fd_eps`` default to the model's
    ``train_cfg`` (``model.train_cfg.unrolled``, ``model.train_cfg.fd_eps``), where configs set them; so does
    ``hvp`` (``'exact'``, the default, or ``'finite_difference'``, see :func:`hypergradient_at`) and
    ``hypergrad_dtype``: the unrolled step's decoder passes (the lower gradient it differentiates through -- unless
    the lower level runs under AMP --, the upper loss at ``w'`` and the Hessian-vector product) run in
    ``'float64'`` (default) or ``'float32'``, never under autocast. The weights stay float32 and both optimizers step
    in float32. Why float64: AdamW's update derivative magnifies the lower gradient's rounding error by up to
    ``lr / eps``, so in float32 the hypergradient's error is ~1e-3 - 1e-2 relative and changes with the CPU's
    summation order (tests/test_training_fidelity_hypergradient.py); in float64 it is float32's own rounding of
    ``w'`` (~1e-7). The decoder is small: the cost is measured by ``tools/benchmark.py``.
    The unrolled step logs the 2-norms of the hypergradient's direct and implicit terms
    (``upper.hypergrad_direct_norm``, ``upper.hypergrad_implicit_norm``).

    The frozen parts (encoder, prompter) run under the lower level's ``optim_context`` (autocast with ``--amp``),
    like the lower level's own forward; their outputs are then used in float32 where the step is fp32.
    A model whose encoder trains (``model.encoder_trains``, e.g. SAMed's encoder LoRA) recomputes the image
    embeddings for every pass (their graph cannot be shared between the passes); its prompts are computed once.
    """
    train_cfg = getattr(model, 'train_cfg', None) or {}
    unrolled = train_cfg.get('unrolled', False) if unrolled is None else unrolled
    fd_eps = train_cfg.get('fd_eps', 0.01) if fd_eps is None else fd_eps
    hvp = train_cfg.get('hvp', 'exact') if hvp is None else hvp
    name = train_cfg.get('hypergrad_dtype', 'float64') if hypergrad_dtype is None else hypergrad_dtype
    if name not in HYPERGRAD_DTYPES:
        raise ValueError(f'bi-level step: model.train_cfg.hypergrad_dtype must be one of {sorted(HYPERGRAD_DTYPES)}, '
                         f'got {name!r}')
    hypergrad_dtype = HYPERGRAD_DTYPES[name]
    lower_ow, upper_ow = optim_wrapper['lower'], optim_wrapper['upper']
    lower_params, upper_params = level_params(lower_ow), level_params(upper_ow)
    d1 = model.data_preprocessor(data['lower'], True)
    d2 = model.data_preprocessor(data['upper'], True)

    def features(d: dict) -> dict:
        with lower_ow.optim_context(model):
            return _as_dtype(model.frozen_features(d['inputs'], d['data_samples']))

    if getattr(model, 'encoder_trains', False):  # prompts once per batch; the embeddings (with graph) per pass
        def with_embeddings(d: dict, prompts: dict):
            def f() -> dict:
                with lower_ow.optim_context(model):
                    return _as_dtype(dict(prompts, feats=model.extract_feat(d['inputs'])))
            return f

        with lower_ow.optim_context(model):
            p1, p2 = (_as_dtype(model.prompt_features(d['inputs'], d['data_samples'])) for d in (d1, d2))
        f1, f2 = with_embeddings(d1, p1), with_embeddings(d2, p2)
    else:
        shared1, shared2 = features(d1), features(d2)

        def f1() -> dict:
            return shared1

        def f2() -> dict:
            return shared2

    def lower_loss() -> Tensor:  # the passes of the unrolled term, in the decoder's current dtype
        return model.parse_losses(model.loss_from(_as_dtype(f1(), work_dtype), d1['data_samples']))[0]

    def upper_loss() -> Tensor:
        return model.parse_losses(model.loss_from(_as_dtype(f2(), work_dtype), d2['data_samples']))[0]

    # lower level: W <- W - step(dL1/dW), prompt fixed. Unrolled without AMP, dL1/dW is taken in hypergrad_dtype:
    # the upper level differentiates through this very step, whose update derivative magnifies the gradient's
    # rounding error by up to lr/eps (module doc of hypergradient.py); the optimizer steps with it rounded to fp32.
    lower_amp = getattr(lower_ow, 'loss_scaler', None) is not None
    lower_dtype = hypergrad_dtype if unrolled and not lower_amp else torch.float32
    parts = decoder_modules(model)
    work_dtype = lower_dtype
    with computed_in(parts, lower_dtype), lower_ow.optim_context(model):
        loss1, log1 = model.parse_losses(model.loss_from(_as_dtype(f1(), lower_dtype), d1['data_samples']))
        g_lower = _grads(_scaled(lower_ow, loss1), lower_params)
        all_reduce_mean(g_lower)
        if unrolled:  # remember w and the update's derivative: the upper level differentiates through this step
            origin = [p.detach().clone() for p in lower_params]
            _, deriv = virtual_step(lower_ow.optimizer, lower_params, _unscaled(lower_ow, g_lower))
    apply_and_step(lower_ow, lower_params, g_lower)

    # upper level: A <- A - step(dL2/dA), at the updated W (plus the implicit term when unrolled)
    if unrolled:
        work_dtype = hypergrad_dtype
        with computed_in(parts, hypergrad_dtype):
            g_upper, loss2, norms = hypergradient_at(lower_loss, upper_loss, lower_params, upper_params, origin,
                                                     deriv, fd_eps=fd_eps, reduce=all_reduce_mean, hvp=hvp)
        log2 = dict(loss=loss2, **{k: torch.tensor(v) for k, v in norms.items()})
    else:
        with upper_ow.optim_context(model):
            loss2, log2 = model.parse_losses(model.loss_from(f2(), d2['data_samples']))
        g_upper = _grads(_scaled(upper_ow, loss2), upper_params)
        all_reduce_mean(g_upper)
    apply_and_step(upper_ow, upper_params, g_upper)

    log = {f'lower.{k}': v.float() for k, v in log1.items()}
    log.update({f'upper.{k}': v.float() for k, v in log2.items()})
    return log
