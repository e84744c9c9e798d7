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


def test_eq5_value_of_the_shipped_head_on_a_hand_made_logit_mask_pair():
    """Eq. 5 with lambda = 0.8, as the AM-SAM decode head computes it: 0.2 CE + 0.8 class-averaged Dice.

    64x64 low-res logits (bg 0, fg ln 3: p_fg = 0.75 everywhere), the top-left 32x32 block foreground. By hand:
    CE = 0.25 (-ln 0.75) + 0.75 (-ln 0.25) = 1.1116413; Dice per class (smooth 1e-5): fg (2 * 768 + s) /
    (2304 + 1024 + s), bg (2 * 768 + s) / (256 + 3072 + s), both 1536/3328 -> L_Dice = 0.5384615;
    L = 0.2 * 1.1116413 + 0.8 * 0.5384615 = 0.6530975.
    """
    import math

    from mmengine.config import Config
    from mmengine.structures import PixelData
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample

    from cfg_helpers import ROOT
    head_cfg = Config.fromfile(f'{ROOT}/configs/_base_/models/amsam_vit_b.py').model.decode_head
    head = MODELS.build(head_cfg)
    logits = torch.zeros(1, 2, 64, 64)
    logits[:, 1] = math.log(3.0)
    gt = torch.zeros(1, 64, 64, dtype=torch.long)
    gt[0, :32, :32] = 1
    sample = SegDataSample(metainfo=dict(img_shape=(256, 256)))
    sample.gt_sem_seg = PixelData(data=gt)
    losses = head.loss_by_feat(logits, [sample])
    assert losses['loss_ce'].item() == pytest.approx(0.2 * 1.1116413, rel=1e-6)
    assert losses['loss_dice'].item() == pytest.approx(0.8 * 0.5384615, rel=1e-6)
    assert (losses['loss_ce'] + losses['loss_dice']).item() == pytest.approx(0.6530975, rel=1e-6)
