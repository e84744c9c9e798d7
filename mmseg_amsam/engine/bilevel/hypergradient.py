"""The unrolled (second-order, DARTS-style) hypergradient of the upper level, done correctly.

With lower parameters ``w``, upper parameters ``A``, lower loss ``L1`` (on D1) and upper loss ``L2`` (on D2):

1. virtual lower step ``w' = w + U(g1)``, ``g1 = dL1/dw (w, A)``, where ``U`` is the lower optimizer's own update
   (AdamW with its current moment estimates and step count, as BLO-SAM's ``_compute_unrolled_model``), computed
   without touching the optimizer state;
2. ``gw = dL2/dw' (w', A)`` and the direct term ``gA = dL2/dA (w', A)``;
3. the implicit term ``(dg1/dA)^T z``, ``z = U'(g1) * gw``, a mixed Hessian-vector product at ``w``: by default
   exactly, by double backward (``d/dA (dL1/dw . z)``; the decoder is small); ``hvp='finite_difference'`` takes
   DARTS' central finite difference of ``dL1/dA`` at ``w +- eps z``, ``eps = fd_eps / |z|`` instead. ``U'`` is the
   element-wise derivative of the update w.r.t. the gradient (``-lr`` for plain SGD, recovering DARTS'
   ``-xi H gw``);
4. hypergradient ``gA + implicit``. The lower weights are restored bit-for-bit afterwards.

In training (``bilevel_train_step``, engine/bilevel/step.py) the virtual step is the lower level's real step:
the lower optimizer steps from
``w`` with ``g1`` and the upper level then differentiates through that very step (``hypergradient_at``), so the
gradient ``g1`` is shared: one unrolled step costs 3 forward passes, 3 backward passes and one of them doubled
(first-order: 2 and 2).

Why exact by default: in float32 the finite difference is poor here. AdamW's update derivative reaches ``lr/eps``
for lower parameters with tiny gradients (at the first step, and for LoRA ``A`` while ``B = 0``, whose gradient is
exactly 0), so ``z`` is huge and dominated by parameters whose true contribution is small or exactly 0; the
difference quotient then mixes rounding error into the result (13 % relative error on the ViT-B decoder at lr
5e-3, 190 % at lr 0.2; tests/test_training_fidelity_hypergradient.py measures the exact form against float64).

Gradients are taken with ``torch.autograd.grad`` on explicit parameter lists; no ``.grad`` is read or written.
This runs in the dtype of the parameters and losses it is given, outside autocast: the training step runs it in
float64 by default (``model.train_cfg.hypergrad_dtype``, engine/bilevel/step.py).
"""
import math
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

LossFn = Callable[[], Tensor]


def _group_of(optimizer: torch.optim.Optimizer, param: Tensor) -> dict:
    for group in optimizer.param_groups:
        if any(p is param for p in group['params']):
            return group
    raise ValueError('parameter not managed by the lower optimizer')


def virtual_step(optimizer: torch.optim.Optimizer, params: Sequence[Tensor],
                 grads: Sequence[Tensor]) -> Tuple[List[Tensor], List[Tensor]]:
    """The values the optimizer's next ``step()`` would give ``params`` for ``grads``, and ``d w' / d g``.

    Supports Adam/AdamW (not amsgrad) and SGD (momentum, dampening, weight decay; not nesterov). Differentiable in
    ``grads`` when they carry a graph. The optimizer state is only read.
    """
    new, deriv = [], []
    for p, g in zip(params, grads):
        group = _group_of(optimizer, p)
        state = optimizer.state.get(p, {})
        lr, wd = float(group['lr']), float(group.get('weight_decay', 0.0))
        w = p.detach()
        if isinstance(optimizer, torch.optim.Adam):  # AdamW subclasses Adam in torch >= 2.6
            if group.get('amsgrad') or group.get('maximize'):
                raise NotImplementedError('unrolled bi-level: amsgrad / maximize are not supported')
            decoupled = isinstance(optimizer, torch.optim.AdamW) or group.get('decoupled_weight_decay', False)
            beta1, beta2 = group['betas']
            eps = group['eps']
            step = float(state['step']) + 1 if 'step' in state else 1.0
            m = state.get('exp_avg', torch.zeros_like(w))
            v = state.get('exp_avg_sq', torch.zeros_like(w))
            if not decoupled and wd:
                g = g + wd * w
            m1 = beta1 * m + (1 - beta1) * g
            v1 = beta2 * v + (1 - beta2) * g * g
            bc1, bc2 = 1 - beta1**step, 1 - beta2**step
            sqrt_v1 = v1.sqrt()
            denom = sqrt_v1 / math.sqrt(bc2) + eps
            base = w * (1 - lr * wd) if decoupled else w
            new.append(base - (lr / bc1) * m1 / denom)
            deriv.append(_adam_update_derivative(g, m, v, sqrt_v1, denom, lr, beta1, beta2, eps, bc1, bc2))
        elif isinstance(optimizer, torch.optim.SGD):
            if group.get('nesterov') or group.get('maximize'):
                raise NotImplementedError('unrolled bi-level: nesterov / maximize SGD are not supported')
            momentum, dampening = group.get('momentum', 0.0), group.get('dampening', 0.0)
            g = g + wd * w if wd else g
            buf = state.get('momentum_buffer')
            if momentum and buf is not None:
                step_dir, scale = momentum * buf + (1 - dampening) * g, 1 - dampening
            else:
                step_dir, scale = g, 1.0
            new.append(w - lr * step_dir)
            deriv.append(torch.full_like(w, -lr * scale))
        else:
            raise NotImplementedError(f'unrolled bi-level supports Adam/AdamW/SGD lower optimizers, '
                                      f'not {type(optimizer).__name__}')
    return new, deriv


def _adam_update_derivative(g: Tensor, m: Tensor, v: Tensor, sqrt_v1: Tensor, denom: Tensor, lr: float,
                            beta1: float, beta2: float, eps: float, bc1: float, bc2: float) -> Tensor:
    """``d/dg`` of Adam's update ``-(lr/bc1) m1/denom``, ``m1 = b1 m + (1-b1) g``, ``v1 = b2 v + (1-b2) g^2``,
    ``denom = sqrt(v1)/sqrt(bc2) + eps``, written without cancellation.

    The textbook form ``-(lr/bc1) ((1-b1)/denom - m1 (1-b2) g / (sqrt(v1) sqrt(bc2) denom^2))`` subtracts two
    numbers that agree to ``eps/|g|`` relative when ``|g| >> eps`` (at the first step it equals
    ``-lr eps / (|g| + eps)^2``): in float32 the result is rounding noise for most parameters and its value changes
    with the CPU's summation order. Over the common denominator ``denom^2`` the ``g^2`` terms cancel exactly
    (``(1-b1) v1 - (1-b2) m1 g = (1-b1) b2 v - b1 (1-b2) m g``), leaving

        d = -(lr/bc1) / denom^2 * ((1-b1) eps + ((1-b1) b2 v - b1 (1-b2) m g) / (sqrt(v1) sqrt(bc2)))

    whose only subtraction is of the two optimizer-state terms (zero at the first step). Where ``v1 = 0``
    (``g = m = v = 0``) the second term is 0, as the limit of the original form.
    """
    state_term = (1 - beta1) * beta2 * v - beta1 * (1 - beta2) * m * g
    ratio = torch.where(sqrt_v1 > 0, state_term / (sqrt_v1.clamp_min(1e-30) * math.sqrt(bc2)), torch.zeros_like(g))
    return (-(lr / bc1) * ((1 - beta1) * eps + ratio) / denom**2).detach()


def _grads(loss: Tensor, params: Sequence[Tensor], create_graph: bool = False) -> List[Tensor]:
    grads = torch.autograd.grad(loss, list(params), allow_unused=True, create_graph=create_graph)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]


HVPS = ('exact', 'finite_difference')


def _at(params: Sequence[Tensor], values: Sequence[Tensor]) -> None:
    with torch.no_grad():
        for p, v in zip(params, values):
            p.copy_(v)


def _mixed_hvp_exact(lower_loss: LossFn, lower_params: List[Tensor], upper_params: List[Tensor],
                     z: Sequence[Tensor]) -> List[Tensor]:
    """``(d^2 L1 / dA dw) z`` at the current ``w`` by double backward: ``d/dA (dL1/dw . z)``, ``z`` held fixed."""
    g1 = torch.autograd.grad(lower_loss(), lower_params, create_graph=True, allow_unused=True)
    dot = sum((g * t).sum() for g, t in zip(g1, z) if g is not None)
    if not isinstance(dot, Tensor) or not dot.requires_grad:  # dL1/dw does not depend on A
        return [torch.zeros_like(p) for p in upper_params]
    return _grads(dot, upper_params)


def _mixed_hvp_fd(lower_loss: LossFn, lower_params: List[Tensor], upper_params: List[Tensor], origin: Sequence[Tensor],
                  z: Sequence[Tensor], norm: float, fd_eps: float) -> List[Tensor]:
    """The same product by a central finite difference of ``dL1/dA`` at ``w +- eps z``, ``eps = fd_eps / |z|``."""
    eps, sides = fd_eps / norm, []
    for sign in (1.0, -1.0):
        _at(lower_params, [w + sign * eps * t for w, t in zip(origin, z)])
        sides.append(_grads(lower_loss(), upper_params))
    return [(plus - minus) / (2 * eps) for plus, minus in zip(*sides)]


def hypergradient_at(lower_loss: LossFn, upper_loss: LossFn, lower_params: Sequence[Tensor],
                     upper_params: Sequence[Tensor], origin: Sequence[Tensor], deriv: Sequence[Tensor],
                     fd_eps: float = 0.01, reduce: Optional[Callable[[List[Tensor]], None]] = None,
                     hvp: str = 'exact') -> Tuple[List[Tensor], Tensor, Dict[str, float]]:
    """Steps 2-4 of the module doc, with the lower parameters currently holding ``w'`` (one optimizer step taken
    from ``origin`` = ``w`` with update derivative ``deriv``). The parameters hold ``w'`` again afterwards.

    ``hvp='exact'`` (default) takes the mixed Hessian-vector product by double backward at ``w``;
    ``'finite_difference'`` by the central difference of step 3 (cheaper in memory; in float32 its error depends on
    ``fd_eps`` and on the lower learning rate, see the module doc).

    ``reduce`` (in-place average over processes) is applied to every gradient used, so that with data parallelism
    each process computes the hypergradient of the global losses (same direction, same result on every rank).
    Returns ``(hypergradient for upper_params, L2, norms)``, ``norms`` = the direct and implicit terms' 2-norms.
    """
    if hvp not in HVPS:
        raise ValueError(f'hypergradient: hvp must be one of {HVPS} (model.train_cfg.hvp), got {hvp!r}')
    reduce = reduce or (lambda grads: None)
    lower_params, upper_params = list(lower_params), list(upper_params)
    current = [p.detach().clone() for p in lower_params]
    l2 = upper_loss()
    grads = _grads(l2, lower_params + upper_params)
    reduce(grads)
    g_w, g_a = grads[:len(lower_params)], grads[len(lower_params):]
    z = [d * g for d, g in zip(deriv, g_w)]
    norm = float(torch.sqrt(sum((t.double()**2).sum() for t in z)))
    implicit = [torch.zeros_like(a) for a in g_a]
    if norm > 0:
        try:
            if hvp == 'exact':
                _at(lower_params, origin)
                implicit = _mixed_hvp_exact(lower_loss, lower_params, upper_params, z)
            else:
                implicit = _mixed_hvp_fd(lower_loss, lower_params, upper_params, origin, z, norm, fd_eps)
        finally:
            _at(lower_params, current)
        reduce(implicit)
    norms = dict(hypergrad_direct_norm=_norm(g_a), hypergrad_implicit_norm=_norm(implicit))
    return [a + i for a, i in zip(g_a, implicit)], l2.detach(), norms


def _norm(tensors: Sequence[Tensor]) -> float:
    return float(torch.sqrt(sum((t.double()**2).sum() for t in tensors)))


def unrolled_hypergradient(lower_loss: LossFn, upper_loss: LossFn, lower_params: Sequence[Tensor],
                           upper_params: Sequence[Tensor], optimizer: torch.optim.Optimizer,
                           fd_eps: float = 0.01, reduce: Optional[Callable[[List[Tensor]], None]] = None,
                           hvp: str = 'exact') -> Tuple[List[Tensor], Tensor]:
    """Second-order hypergradient ``dL2(w'(A), A)/dA`` with a *virtual* lower step (see module doc); the lower
    parameters and the optimizer state are left exactly as they were. Returns ``(grads for upper_params, L2)``."""
    lower_params = list(lower_params)
    origin = [p.detach().clone() for p in lower_params]
    g1 = _grads(lower_loss(), lower_params)
    if reduce:
        reduce(g1)
    virtual, deriv = virtual_step(optimizer, lower_params, g1)
    try:
        with torch.no_grad():
            for p, v in zip(lower_params, virtual):
                p.copy_(v)
        return hypergradient_at(lower_loss, upper_loss, lower_params, upper_params, origin, deriv, fd_eps, reduce,
                                hvp)[:2]
    finally:
        with torch.no_grad():
            for p, w in zip(lower_params, origin):
                p.copy_(w)
