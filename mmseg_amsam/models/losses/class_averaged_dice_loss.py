"""The Dice loss of SAMed / BLO-SAM (the ``L_Dice`` of paper eq. 5): per-class soft Dice averaged over classes.

mmseg's ``DiceLoss`` flattens all classes of an image into one vector, so for a small foreground the background
dominates and the loss barely sees the object; SAMed's loss gives every class (background included) equal weight.
"""
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import nn


@MODELS.register_module()
class ClassAveragedDiceLoss(nn.Module):
    """``1 - (2 sum(p t) + s) / (sum(p^2) + sum(t^2) + s)`` per class over the whole batch, mean over classes.

    ``p`` = softmax probabilities, ``t`` = one-hot target, ``s`` = ``smooth`` (1e-5 as SAMed); pixels equal to
    ``ignore_index`` are left out of every sum.
    """

    def __init__(self, loss_weight: float = 1.0, smooth: float = 1e-5, loss_name: str = 'loss_dice'):
        super().__init__()
        self.loss_weight, self.smooth, self._loss_name = loss_weight, smooth, loss_name

    def forward(self, pred: torch.Tensor, target: torch.Tensor, weight=None, ignore_index: int = 255,
                **kwargs) -> torch.Tensor:
        num_classes = pred.shape[1]
        prob = pred.softmax(dim=1)
        valid = (target != ignore_index).unsqueeze(1).to(prob.dtype)
        onehot = F.one_hot(target.clamp(0, num_classes - 1).long(), num_classes).permute(0, 3, 1, 2).to(prob.dtype)
        prob, onehot = prob * valid, onehot * valid
        dims = (0, 2, 3)
        inter = (prob * onehot).sum(dims)
        dice = (2 * inter + self.smooth) / ((prob * prob).sum(dims) + (onehot * onehot).sum(dims) + self.smooth)
        return self.loss_weight * (1 - dice).mean()

    @property
    def loss_name(self) -> str:
        return self._loss_name
