import pytest
import torch

from mmseg_amsam.models.losses import ClassAveragedDiceLoss


def test_class_averaged_dice_against_hand_computation():
    # 1 image, 2 classes, 4 pixels; logits chosen so that softmax gives p_fg = [0.5, 0.5, 0.5, 0.5]
    pred = torch.zeros(1, 2, 2, 2)
    target = torch.tensor([[[1, 0], [0, 0]]])
    loss = ClassAveragedDiceLoss(smooth=0.0)(pred, target)
    # fg: inter 0.5, sum p^2 = 1.0, sum t^2 = 1 -> dice 0.5 ; bg: inter 1.5, p^2 1.0, t^2 3 -> dice 0.75
    assert loss.item() == pytest.approx(1 - (0.5 + 0.75) / 2)
    perfect = torch.stack([(target == 0).float(), (target == 1).float()], 1) * 40
    assert ClassAveragedDiceLoss()(perfect, target).item() == pytest.approx(0.0, abs=1e-6)


def test_ignored_pixels_do_not_count_and_small_objects_matter():
    pred = torch.zeros(1, 2, 2, 2)
    target = torch.tensor([[[1, 255], [0, 0]]])
    # without the ignored pixel: fg inter .5, p^2 .75, t^2 1 -> 1/1.75 ; bg inter 1, p^2 .75, t^2 2 -> 2/2.75
    expected = 1 - (1 / 1.75 + 2 / 2.75) / 2
    assert ClassAveragedDiceLoss(smooth=0.0)(pred, target).item() == pytest.approx(expected)
    # a missed 1-pixel object in 10000 costs ~half the loss, not ~0 as with a class-flattened Dice
    big = torch.zeros(1, 2, 100, 100)
    big[:, 0] = 20.0
    tgt = torch.zeros(1, 100, 100, dtype=torch.long)
    tgt[0, 0, 0] = 1
    assert ClassAveragedDiceLoss()(big, tgt).item() > 0.45
