"""Undo mmseg's data preprocessor normalisation, for the detector that needs plain RGB pixels."""
import torch


def denormalize_to_uint8(inputs: torch.Tensor, mean, std) -> torch.Tensor:
    """``(B, 3, H, W)`` normalised RGB -> uint8 RGB in ``[0, 255]`` (same layout)."""
    mean = torch.as_tensor(mean, device=inputs.device, dtype=inputs.dtype).view(1, -1, 1, 1)
    std = torch.as_tensor(std, device=inputs.device, dtype=inputs.dtype).view(1, -1, 1, 1)
    return (inputs * std + mean).round().clamp(0, 255).to(torch.uint8)
