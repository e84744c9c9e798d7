from torch import nn


def freeze(module: nn.Module) -> nn.Module:
    """Stop gradients into ``module`` and put it in eval mode (frozen SAM parts and detectors)."""
    for p in module.parameters():
        p.requires_grad_(False)
    return module.eval()
