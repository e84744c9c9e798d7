"""One bi-level training step (paper eq. 5-8): lower level on D1, then upper level on D2."""
from typing import Dict, List, Sequence

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


def bilevel_train_step(model, data: Dict[str, dict], optim_wrapper: OptimWrapperDict, unrolled: bool = False,
                       fd_eps: float = 0.01) -> Dict[str, Tensor]:
    """Lower step on ``data['lower']`` (D1) with the lower optimizer only, then upper step on ``data['upper']``
    (D2) with the upper optimizer only; gradients of one level never reach the other level's parameters.

    ``model`` provides ``data_preprocessor``, ``frozen_features(inputs, samples)`` (the frozen encoder/prompter
    outputs, computed once per batch and shared by every pass of the step), ``loss_from(frozen, samples)`` and
    ``parse_losses``. ``unrolled=True`` adds the second-order (implicit) term to the upper gradient, differentiating
    through the lower step just taken (:func:`hypergradient_at`); it runs in fp32.
    """
    lower_ow, upper_ow = optim_wrapper['lower'], optim_wrapper['upper']
    lower_params, upper_params = level_params(lower_ow), level_params(upper_ow)
    d1 = model.data_preprocessor(data['lower'], True)
    d2 = model.data_preprocessor(data['upper'], True)
    f1 = model.frozen_features(d1['inputs'], d1['data_samples'])
    f2 = model.frozen_features(d2['inputs'], d2['data_samples'])

    def lower_loss() -> Tensor:
        return model.parse_losses(model.loss_from(f1, d1['data_samples']))[0]

    def upper_loss() -> Tensor:
        return model.parse_losses(model.loss_from(f2, d2['data_samples']))[0]

    # lower level: W <- W - step(dL1/dW), prompt fixed
    with lower_ow.optim_context(model):
        loss1, log1 = model.parse_losses(model.loss_from(f1, d1['data_samples']))
    g_lower = _grads(_scaled(lower_ow, loss1), lower_params)
    all_reduce_mean(g_lower)
    if unrolled:  # remember w and the update's derivative: the upper level differentiates through this step
        origin = [p.detach().clone() for p in lower_params]
        _, deriv = virtual_step(lower_ow.optimizer, lower_params, _unscaled(lower_ow, g_lower))
    apply_and_step(lower_ow, lower_params, g_lower)

    # upper level: A <- A - step(dL2/dA), at the updated W (plus the implicit term when unrolled)
    if unrolled:
        g_upper, loss2 = hypergradient_at(lower_loss, upper_loss, lower_params, upper_params, origin, deriv,
                                          fd_eps=fd_eps, reduce=all_reduce_mean)  # fp32, already averaged
        log2 = dict(loss=loss2)
    else:
        with upper_ow.optim_context(model):
            loss2, log2 = model.parse_losses(model.loss_from(f2, d2['data_samples']))
        g_upper = _grads(_scaled(upper_ow, loss2), upper_params)
        all_reduce_mean(g_upper)
    apply_and_step(upper_ow, upper_params, g_upper)

    log = {f'lower.{k}': v for k, v in log1.items()}
    log.update({f'upper.{k}': v for k, v in log2.items()})
    return log
