"""LoRA (paper eq. 2-4): ``W x + B A x`` with frozen ``W``, trainable rank-``r`` ``A`` and ``B`` (B starts at 0).

``LoRALinear`` adapts one projection (the mask decoder's ``q_proj`` / ``v_proj``); ``LoRAQKV`` adapts the q and v
thirds of the image encoder's fused ``qkv`` projection, as SAMed does. :func:`merge_lora` folds both back into
plain ``nn.Linear`` layers holding ``W + BA`` (deployment: ONNX export, no LoRA branch left at inference).
"""
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

    @torch.no_grad()
    def merged(self) -> nn.Linear:
        """A plain ``nn.Linear`` with the weight ``W + BA`` and the base's bias (frozen)."""
        return _linear_like(self.base, self.weight)


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


class LoRAQKV(nn.Module):
    """SAMed's encoder LoRA: wraps a frozen fused ``qkv`` ``nn.Linear`` (``dim -> 3 dim``, segment-anything's
    ``ImageEncoderViT``) and adds rank-``r`` updates ``B_q A_q x`` to its q third and ``B_v A_v x`` to its v third
    (k unchanged). ``B`` starts at 0, so the wrapped layer starts exactly as ``base``."""

    def __init__(self, base: nn.Linear, rank: int = 4):
        super().__init__()
        if rank <= 0:
            raise ValueError(f'LoRA rank must be positive, got {rank}')
        if base.out_features != 3 * base.in_features:
            raise ValueError(f'LoRAQKV wraps a fused qkv Linear (dim -> 3 dim), got {base}')
        self.base, self.dim = base, base.in_features
        for p in base.parameters():
            p.requires_grad_(False)
        self.lora_A_q = nn.Parameter(torch.empty(rank, self.dim))
        self.lora_B_q = nn.Parameter(torch.zeros(self.dim, rank))
        self.lora_A_v = nn.Parameter(torch.empty(rank, self.dim))
        self.lora_B_v = nn.Parameter(torch.zeros(self.dim, rank))
        for a in (self.lora_A_q, self.lora_A_v):
            nn.init.kaiming_uniform_(a, a=math.sqrt(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dq = (x @ self.lora_A_q.t()) @ self.lora_B_q.t()
        dv = (x @ self.lora_A_v.t()) @ self.lora_B_v.t()
        return self.base(x) + torch.cat([dq, torch.zeros_like(dq), dv], dim=-1)

    @torch.no_grad()
    def merged(self) -> nn.Linear:
        """A plain ``nn.Linear``: the fused weight plus ``B_q A_q`` on its q rows and ``B_v A_v`` on its v rows."""
        dq = self.lora_B_q @ self.lora_A_q
        delta = torch.cat([dq, torch.zeros_like(dq), self.lora_B_v @ self.lora_A_v], dim=0)
        return _linear_like(self.base, self.base.weight + delta)


def add_lora_to_qkv(module: nn.Module, rank: int) -> int:
    """Wrap the fused ``qkv`` of every attention under ``module`` (an image encoder) in :class:`LoRAQKV`."""
    count = 0
    for sub in list(module.modules()):
        if isinstance(getattr(sub, 'qkv', None), nn.Linear) and hasattr(sub, 'proj'):
            sub.qkv = LoRAQKV(sub.qkv, rank)
            count += 1
    return count


def _linear_like(base: nn.Linear, weight: torch.Tensor) -> nn.Linear:
    layer = nn.Linear(base.in_features, base.out_features, bias=base.bias is not None,
                      device=weight.device, dtype=weight.dtype)
    layer.weight.copy_(weight)
    if base.bias is not None:
        layer.bias.copy_(base.bias)
    layer.requires_grad_(False)
    return layer


def merge_lora(module: nn.Module) -> int:
    """Replace, in place, every :class:`LoRALinear` / :class:`LoRAQKV` under ``module`` by a plain ``nn.Linear``
    holding the merged weight (eq. 3: ``W + BA``); returns the count. Same outputs up to float rounding; the LoRA
    factors are gone (merge a deep copy to keep training). ``module`` itself cannot be a LoRA layer."""
    count = 0
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, (LoRALinear, LoRAQKV)):
                setattr(parent, name, child.merged())
                count += 1
    return count
