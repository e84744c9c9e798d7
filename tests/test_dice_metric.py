"""DiceMetric against hand-computed values."""
import math
import re

import numpy as np
import pytest
import torch
from mmengine.logging import MMLogger
from mmengine.registry import DefaultScope
from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS
from PIL import Image

from mmseg_amsam.evaluation import DiceMetric

BINARY = dict(classes=('background', 'foreground'))


def sample(pred, gt) -> dict:
    """An mmseg-style data sample dict with (1, H, W) label maps."""
    return dict(pred_sem_seg=dict(data=torch.as_tensor(np.asarray(pred), dtype=torch.int64)[None]),
                gt_sem_seg=dict(data=torch.as_tensor(np.asarray(gt), dtype=torch.uint8)[None]))


def evaluate(pairs, meta=BINARY, **kwargs) -> dict:
    metric = DiceMetric(**kwargs)
    metric.dataset_meta = meta
    metric.process({}, [sample(p, g) for p, g in pairs])
    return metric.evaluate(len(pairs))


def mask(shape, ones) -> np.ndarray:
    """A 0/1 array of ``shape`` with ones at the flat indices ``ones``."""
    m = np.zeros(shape, np.int64)
    m.flat[list(ones)] = 1
    return m


def test_built_from_registry():
    with DefaultScope.overwrite_default_scope('mmseg'):  # another test's Runner may have left 'mmengine'
        metric = METRICS.build(dict(type='DiceMetric', empty_gt='skip'))
    assert isinstance(metric, DiceMetric) and metric.empty_gt == 'skip'
    with pytest.raises(ValueError, match='empty_gt'):
        DiceMetric(empty_gt='zero')


def test_perfect_prediction_is_100():
    gt = mask((4, 4), [0, 1, 5, 6])
    result = evaluate([(gt, gt)])
    assert result['mDice'] == pytest.approx(100.0)
    assert result['aDice'] == pytest.approx(100.0)
    assert result['Dice.foreground'] == pytest.approx(100.0)
    assert 'Dice.background' not in result  # background excluded by default


def test_empty_prediction_is_0():
    gt = mask((4, 4), [0, 1, 5, 6])
    result = evaluate([(np.zeros((4, 4), np.int64), gt)])
    assert result['mDice'] == 0.0 and result['aDice'] == 0.0


def test_partial_overlap_exact_fraction():
    # |A| = 4, |B| = 6, |A ∩ B| = 3  ->  2 * 3 / 10 = 60 %
    pred = mask((3, 4), [0, 1, 2, 11])
    gt = mask((3, 4), [0, 1, 2, 4, 5, 6])
    result = evaluate([(pred, gt)])
    assert result['mDice'] == pytest.approx(60.0)
    assert result['aDice'] == pytest.approx(60.0)
    # with background: background |A| = 8, |B| = 6, |A ∩ B| = 5 -> 10 / 14; mean with 60 %
    result = evaluate([(pred, gt)], include_background=True)
    assert result['Dice.background'] == pytest.approx(100 * 10 / 14)
    assert result['mDice'] == pytest.approx((100 * 10 / 14 + 60) / 2)


def test_empty_gt_policies():
    empty = np.zeros((2, 2), np.int64)
    good = mask((2, 2), [0])
    wrong = mask((2, 2), [3])
    # image 1: both empty; image 2: GT empty but one predicted pixel; image 3: perfect
    pairs = [(empty, empty), (wrong, empty), (good, good)]
    one = evaluate(pairs)
    assert one['mDice'] == pytest.approx((100 + 0 + 100) / 3)
    assert one['aDice'] == pytest.approx(100 * 2 * 1 / (2 + 1))  # the false positive of image 2 counts
    skip = evaluate(pairs, empty_gt='skip')
    assert skip['mDice'] == pytest.approx(100.0)  # only image 3 has foreground in its GT
    assert skip['aDice'] == pytest.approx(one['aDice'])  # aggregated Dice does not depend on the policy
    # a dataset whose GT and predictions are all empty
    assert evaluate([(empty, empty)])['aDice'] == pytest.approx(100.0)
    nothing = evaluate([(empty, empty)], empty_gt='skip')
    assert math.isnan(nothing['mDice']) and math.isnan(nothing['aDice'])


def test_per_image_mean_differs_from_aggregate():
    # image 1: 100 GT pixels predicted exactly (Dice 1); image 2: 4 GT pixels, nothing predicted (Dice 0)
    big = mask((10, 10), range(100))
    small = mask((10, 10), [0, 1, 2, 3])
    result = evaluate([(big, big), (np.zeros((10, 10), np.int64), small)])
    assert result['mDice'] == pytest.approx(50.0)
    assert result['aDice'] == pytest.approx(100 * 2 * 100 / (100 + 104))  # 98.039...
    assert result['aDice'] - result['mDice'] > 48


def test_ignore_index_pixels_are_excluded():
    gt = np.array([[1, 1], [255, 0]])
    pred = np.array([[1, 0], [1, 0]])  # the predicted 1 on the ignored pixel must not count
    result = evaluate([(pred, gt)])
    assert result['mDice'] == pytest.approx(100 * 2 * 1 / (1 + 2))
    custom = evaluate([(pred, np.where(gt == 255, 7, gt))], ignore_index=7)
    assert custom['mDice'] == pytest.approx(result['mDice'])
    counted = evaluate([(pred, np.where(gt == 255, 1, gt))])  # not ignored: 2*2/(2+3)
    assert counted['mDice'] == pytest.approx(80.0)


def test_multiclass_per_class_and_num_classes_fallback():
    gt = np.array([[1, 1, 2, 2], [0, 0, 0, 0]])
    pred = np.array([[1, 2, 2, 2], [0, 0, 0, 1]])
    # class 1: |A| 2, |B| 2, inter 1 -> 50 %; class 2: |A| 3, |B| 2, inter 2 -> 80 %
    metric = DiceMetric(num_classes=3)  # no dataset_meta: names are the indices
    metric.process({}, [sample(pred, gt)])
    result = metric.evaluate(1)
    assert result['Dice.1'] == pytest.approx(50.0) and result['Dice.2'] == pytest.approx(80.0)
    assert result['mDice'] == pytest.approx(65.0) and result['aDice'] == pytest.approx(65.0)


def test_size_mismatch_is_an_error():
    with pytest.raises(ValueError, match='differ in size'):
        evaluate([(np.zeros((2, 2), np.int64), np.zeros((3, 2), np.int64))])


def test_table_is_logged(tmp_path):
    log_file = tmp_path / 'dice.log'
    MMLogger.get_instance('test_dice_table', log_file=str(log_file))  # becomes the current logger
    evaluate([(mask((3, 4), [0, 1, 2, 11]), mask((3, 4), [0, 1, 2, 4, 5, 6]))])
    text = log_file.read_text()
    assert 'per class results (1 images' in text
    assert '| foreground | 60.00 | 60.00 |' in text


def test_table_gains_prompt_columns_with_a_prompter(tmp_path):
    log_file = tmp_path / 'dice_prompt.log'
    MMLogger.get_instance('test_dice_prompt_table', log_file=str(log_file))
    metric = DiceMetric()
    metric.dataset_meta = BINARY
    samples = [sample(mask((2, 2), [0]), mask((2, 2), [0])) for _ in range(4)]
    # what a box prompter records: 3 detected (IoU 0.9, 0.4, 0.6), 1 fallback (whole image, IoU 0.2)
    for s, fallback, iou in zip(samples, [False, False, False, True], [0.9, 0.4, 0.6, 0.2]):
        s.update(prompt_fallback=fallback, prompt_iou=iou)
    metric.process({}, samples)
    result = metric.evaluate(4)
    assert result == dict(mDice=100.0, aDice=100.0, **{'Dice.foreground': 100.0, 'aDice.foreground': 100.0})
    text = re.sub(' +', ' ', log_file.read_text())
    assert '| Class | Dice | aDice | Prompt det. % | Fallbacks | Box IoU | IoU>=0.5 % |' in text
    assert '| foreground | 100.00 | 100.00 | 75.00 | 1 | 0.525 | 50.00 |' in text


def test_output_dir_writes_the_masks_iou_metric_writes_and_keeps_the_metrics(tmp_path):
    """mmseg's tools/test.py --out sets test_evaluator.output_dir and keep_results: the PNGs are IoUMetric's."""
    pairs = [(mask((4, 5), [0, 1, 2]), mask((4, 5), [1, 2, 3])), (mask((3, 3), [4]), mask((3, 3), [4]))]
    samples = [dict(sample(p, g), img_path=f'/data/img_dir/test/case_{i}.jpg') for i, (p, g) in enumerate(pairs)]
    ours = DiceMetric(output_dir=str(tmp_path / 'dice'), keep_results=True)
    assert not (tmp_path / 'dice').exists()  # made at the first write: a refused run leaves no empty folder
    reference = IoUMetric(output_dir=str(tmp_path / 'iou'), keep_results=True)
    for metric in (ours, reference):
        metric.dataset_meta = BINARY
        metric.process({}, samples)
    assert sorted(p.name for p in (tmp_path / 'dice').iterdir()) == ['case_0.png', 'case_1.png']
    for name in ('case_0.png', 'case_1.png'):
        written = np.array(Image.open(tmp_path / 'dice' / name))
        assert written.dtype == np.uint8 and np.array_equal(written, np.array(Image.open(tmp_path / 'iou' / name)))
    assert np.array_equal(np.array(Image.open(tmp_path / 'dice' / 'case_0.png')), pairs[0][0])
    assert ours.evaluate(2) == evaluate(pairs)  # the metrics are those without output_dir
    assert evaluate(pairs)['mDice'] == pytest.approx(100 * (2 * 2 / 6 + 1.0) / 2)


def test_format_only_writes_without_ground_truth_and_computes_nothing(tmp_path):
    metric = DiceMetric(output_dir=str(tmp_path / 'out'), format_only=True)
    metric.dataset_meta = BINARY
    no_gt = dict(pred_sem_seg=dict(data=torch.as_tensor(mask((2, 3), [5]))[None]), img_path='x/a.png')
    metric.process({}, [no_gt])
    assert metric.evaluate(1) == {}
    assert np.array_equal(np.array(Image.open(tmp_path / 'out' / 'a.png')), mask((2, 3), [5]))
    with pytest.raises(ValueError, match='format_only=True .* needs output_dir'):
        DiceMetric(format_only=True)
