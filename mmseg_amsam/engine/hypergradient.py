"""The unrolled (second-order, DARTS-style) hypergradient of the upper level, done correctly.

With lower parameters ``w``, upper parameters ``A``, lower loss ``L1`` (on D1) and upper loss ``L2`` (on D2):

1. virtual lower step ``w' = w + U(g1)``, ``g1 = dL1/dw (w, A)``, where ``U`` is the lower optimizer's own update
   (AdamW with its current moment estimates and step count, as BLO-SAM's ``_compute_unrolled_model``), computed
   without touching the optimizer state;
2. ``gw = dL2/dw' (w', A)`` and the direct term ``gA = dL2/dA (w', A)``;
3. the implicit term ``(dg1/dA)^T (U'(g1) * gw)`` by a central finite difference of ``dL1/dA`` at
   ``w +- eps z``, ``z = U'(g1) * gw``, ``eps = fd_eps / |z|`` (a Hessian-vector product without second derivatives);
   ``U'`` is the element-wise derivative of the update w.r.t. the gradient (``-lr`` for plain SGD, recovering
   DARTS' ``-xi H gw``);
4. hypergradient ``gA + implicit``. The lower weights are restored bit-for-bit afterwards.

In training (``bilevel_step``) the virtual step is the lower level's real step: the lower optimizer steps from
``w`` with ``g1`` and the upper level then differentiates through that very step (``hypergradient_at``), so the
gradient ``g1`` is shared and one unrolled step costs 4 forward/backward passes instead of 5 (first-order: 2).

Gradients are taken with ``torch.autograd.grad`` on explicit parameter lists; no ``.grad`` is read or written.
This runs in fp32 (callers keep it outside autocast).
"""
import math
from typing import Callable, List, Optional, Sequence, Tuple

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
            # d/dg of -(lr/bc1) m1/denom, with d sqrt(v1)/dg = (1-beta2) g / sqrt(v1)
            dsqrt = torch.where(sqrt_v1 > 0, (1 - beta2) * g / sqrt_v1.clamp_min(1e-30), torch.zeros_like(g))
            d = -(lr / bc1) * ((1 - beta1) / denom - m1 / denom**2 * dsqrt / math.sqrt(bc2))
            deriv.append(d.detach())
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


def _grads(loss: Tensor, params: Sequence[Tensor], create_graph: bool = False) -> List[Tensor]:
    grads = torch.autograd.grad(loss, list(params), allow_unused=True, create_graph=create_graph)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]


def hypergradient_at(lower_loss: LossFn, upper_loss: LossFn, lower_params: Sequence[Tensor],
                     upper_params: Sequence[Tensor], origin: Sequence[Tensor], deriv: Sequence[Tensor],
                     fd_eps: float = 0.01, reduce: Optional[Callable[[List[Tensor]], None]] = None
                     ) -> Tuple[List[Tensor], Tensor]:
    """Steps 2-4 of the module doc, with the lower parameters currently holding ``w'`` (one optimizer step taken
    from ``origin`` = ``w`` with update derivative ``deriv``). The parameters hold ``w'`` again afterwards.

    ``reduce`` (in-place average over processes) is applied to every gradient used, so that with data parallelism
    each process computes the hypergradient of the global losses (same direction, same result on every rank).
    """
    reduce = reduce or (lambda grads: None)
    lower_params, upper_params = list(lower_params), list(upper_params)
    current = [p.detach().clone() for p in lower_params]
    l2 = upper_loss()
    grads = _grads(l2, lower_params + upper_params)
    reduce(grads)
    g_w, g_a = grads[:len(lower_params)], grads[len(lower_params):]
    z = [d * g for d, g in zip(deriv, g_w)]
    norm = float(torch.sqrt(sum((t.double()**2).sum() for t in z)))
    if norm > 0:
        eps = fd_eps / norm
        sides = []
        try:
            for sign in (1.0, -1.0):
                with torch.no_grad():
                    for p, w, t in zip(lower_params, origin, z):
                        p.copy_(w + sign * eps * t)
                sides.append(_grads(lower_loss(), upper_params))
                reduce(sides[-1])
        finally:
            with torch.no_grad():
                for p, w in zip(lower_params, current):
                    p.copy_(w)
        g_a = [a + (plus - minus) / (2 * eps) for a, plus, minus in zip(g_a, *sides)]
    return g_a, l2.detach()


def unrolled_hypergradient(lower_loss: LossFn, upper_loss: LossFn, lower_params: Sequence[Tensor],
                           upper_params: Sequence[Tensor], optimizer: torch.optim.Optimizer,
                           fd_eps: float = 0.01, reduce: Optional[Callable[[List[Tensor]], None]] = None
                           ) -> Tuple[List[Tensor], Tensor]:
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
        return hypergradient_at(lower_loss, upper_loss, lower_params, upper_params, origin, deriv, fd_eps, reduce)
    finally:
        with torch.no_grad():
            for p, w in zip(lower_params, origin):
                p.copy_(w)
