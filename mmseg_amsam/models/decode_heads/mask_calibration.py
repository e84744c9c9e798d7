"""Mask calibration (paper eq. 9-12): Hadamard products of upscaled-embedding channels and hypernetwork tokens.

With ``U`` ``(b, c, h, w)`` the upscaled embedding and ``H`` ``(b, n, c)`` the hypernetwork outputs,
``R_i = U_i o H_i`` (eq. 9, channel ``i``), ``M_new`` is their average (eq. 10-11) and
``M_final = alpha M_orig + (1 - alpha) M_new`` (eq. 12), where ``M_orig = H @ U`` is SAM's dot-product mask.

Modes of averaging:

* ``'none'``: ``M_final = M_orig`` (plain SAM / BLO-SAM).
* ``'sample'``: mean over the ``c`` channels of each image. Per image ``sum_i R_i = M_orig``, so this is exactly
  ``(alpha + (1 - alpha) / c) * M_orig``: a fixed rescaling of SAM's logits. It equals eq. 11 at batch size 1 (the
  paper's training setting) and never mixes images.
* ``'batch'``: eq. 11 literally, the mean over batch x channels, broadcast back to every image. The output of an
  image then depends on the other images of its batch (and on the batch size) -- beware at test time.
* ``'learned'`` (our extension): ``M_new = sum_i w_i R_i`` with per-channel weights ``w`` initialised to ``1/c``,
  i.e. ``'sample'`` at initialisation.
"""
import torch
from torch import nn

CALIBRATIONS = ('none', 'sample', 'batch', 'learned')


class MaskCalibration(nn.Module):

    def __init__(self, channels: int, mode: str = 'sample', alpha: float = 0.7):
        super().__init__()
        if mode not in CALIBRATIONS:
            raise ValueError(f'calibration must be one of {CALIBRATIONS}, got {mode!r}')
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f'calibration alpha must be in [0, 1], got {alpha}')
        self.mode, self.alpha, self.channels = mode, alpha, channels
        if mode == 'learned':
            self.channel_weights = nn.Parameter(torch.full((channels, ), 1.0 / channels))

    def forward(self, upscaled: torch.Tensor, hyper: torch.Tensor) -> torch.Tensor:
        """``upscaled`` (b, c, h, w), ``hyper`` (b, n, c) -> calibrated masks (b, n, h, w)."""
        b, c, h, w = upscaled.shape
        m_orig = (hyper @ upscaled.view(b, c, h * w)).view(b, -1, h, w)
        if self.mode == 'none':
            return m_orig
        if self.mode == 'sample':
            m_new = m_orig / c
        elif self.mode == 'batch':
            m_new = (m_orig / c).mean(dim=0, keepdim=True).expand_as(m_orig)
        else:  # learned
            m_new = ((hyper * self.channel_weights) @ upscaled.view(b, c, h * w)).view(b, -1, h, w)
        return self.alpha * m_orig + (1.0 - self.alpha) * m_new

    def extra_repr(self) -> str:
        return f'mode={self.mode!r}, alpha={self.alpha}, channels={self.channels}'
