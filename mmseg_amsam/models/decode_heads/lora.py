"""LoRA (paper eq. 2-4): ``W x + B A x`` with frozen ``W``, trainable rank-``r`` ``A`` and ``B`` (B starts at 0)."""
import math

import torch
from torch import nn


class LoRALinear(nn.Module):
    """Wraps a frozen ``nn.Linear``; ``lora_B`` is zero-initialised so the wrapped layer starts exactly as ``base``."""

    def __init__(self, base: nn.Linear, rank: int = 4):
        super().__init__()
        if rank <= 0:
            raise ValueError(f'LoRA rank must be positive, got {rank}')
        self.base = base
        for p in base.parameters():
            p.requires_grad_(False)
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))

    @property
    def weight(self) -> torch.Tensor:
        """The effective weight ``W + BA`` (eq. 3)."""
        return self.base.weight + self.lora_B @ self.lora_A

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.lora_A.t()) @ self.lora_B.t()


def add_lora_to_attention(module: nn.Module, rank: int) -> int:
    """Replace ``q_proj`` and ``v_proj`` of every segment-anything ``Attention`` under ``module``; returns the count."""
    count = 0
    for sub in list(module.modules()):
        if all(hasattr(sub, name) for name in ('q_proj', 'k_proj', 'v_proj', 'out_proj')):
            for name in ('q_proj', 'v_proj'):
                layer = getattr(sub, name)
                if isinstance(layer, nn.Linear):
                    setattr(sub, name, LoRALinear(layer, rank))
                    count += 1
    return count
