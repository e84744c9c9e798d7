"""Few-shot detector adaptation (tools/adapt_detector.py) on a tiny generated set: the detector's box IoU on its
training images goes up, and the result is cached by split + weights + settings."""
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest

from cfg_helpers import ROOT, load_tool
from mmseg_amsam.datasets import generate_demo_dataset, make_fewshot_splits
from mmseg_amsam.models.prompters.detector_adaptation import adaptation_key, training_pairs, write_yolo_dataset

@pytest.fixture(scope='module')
def tiny_set(tmp_path_factory):
    """4 training images (one bright rectangle each on a dark textured background) and their masks."""
    root = tmp_path_factory.mktemp('adapt_set')
    os.makedirs(root / 'img_dir' / 'train')
    os.makedirs(root / 'ann_dir' / 'train')
    os.makedirs(root / 'splits')
    rng = np.random.default_rng(0)
    for i, (x1, y1, x2, y2) in enumerate([(8, 10, 40, 50), (20, 6, 58, 44), (4, 22, 36, 60), (26, 24, 60, 58)]):
        img = rng.integers(0, 60, (64, 64, 3), dtype=np.uint8)
        img[y1:y2, x1:x2] = (230, 200, 40)
        mask = np.zeros((64, 64), np.uint8)
        mask[y1:y2, x1:x2] = 1
        cv2.imwrite(str(root / 'img_dir' / 'train' / f'{i}.png'), img)
        cv2.imwrite(str(root / 'ann_dir' / 'train' / f'{i}.png'), mask)
    (root / 'splits' / 'train_4shot.txt').write_text('0\n1\n2\n3\n')
    (root / 'splits' / 'train_2shot.txt').write_text('0\n1\n')
    return str(root)


def test_labels_are_the_mask_boxes(tiny_set, tmp_path):
    pairs = training_pairs(tiny_set, 'splits/train_2shot.txt')
    assert [(osp.basename(p), box, hw) for p, box, hw in pairs] == [
        ('0.png', (8.0, 10.0, 40.0, 50.0), (64, 64)), ('1.png', (20.0, 6.0, 58.0, 44.0), (64, 64))]
    data_yaml = write_yolo_dataset(pairs, str(tmp_path / 'yolo'))
    assert 'names:\n  0: object' in open(data_yaml).read()
    label = open(tmp_path / 'yolo' / 'labels' / 'train' / '0000_0.txt').read().split()
    assert [float(v) for v in label] == [0, 24 / 64, 30 / 64, 32 / 64, 40 / 64]  # class cx cy w h, normalised
    kept = write_yolo_dataset(pairs, str(tmp_path / 'kept'), names=['person', 'dog'], label=1)  # keep_class=1
    assert 'names:\n  0: person\n  1: dog\n' in open(kept).read()
    assert open(tmp_path / 'kept' / 'labels' / 'train' / '0000_0.txt').read().split()[0] == '1'
    key = adaptation_key('yolov8n.yaml', pairs, dict(epochs=1))
    assert key == adaptation_key('yolov8n.yaml', pairs, dict(epochs=1))
    assert key != adaptation_key('yolov8n.yaml', pairs[:1], dict(epochs=1))  # another split
    assert key != adaptation_key('yolov8n.yaml', pairs, dict(epochs=2))  # another setting


def test_multi_class_labels_are_each_class_box_as_its_detector_class(tmp_path):
    root = tmp_path / 'mc'
    for sub in ('img_dir/train', 'ann_dir/train', 'splits'):
        os.makedirs(root / sub)
    mask = np.zeros((64, 64), np.uint8)
    mask[10:30, 4:20] = 1  # label 1: x 4-20, y 10-30
    mask[40:60, 30:62] = 2  # label 2: x 30-62, y 40-60
    only_two = np.where(mask == 2, 2, 0).astype(np.uint8)
    for name, m in (('a', mask), ('b', only_two)):
        cv2.imwrite(str(root / 'img_dir' / 'train' / f'{name}.png'), np.zeros((64, 64, 3), np.uint8))
        cv2.imwrite(str(root / 'ann_dir' / 'train' / f'{name}.png'), m)
    (root / 'splits' / 'train_2shot.txt').write_text('a\nb\n')
    pairs = training_pairs(str(root), 'splits/train_2shot.txt', label_classes={1: 3, 2: 0})
    assert [box for _, box, _ in pairs] == [[(3, (4.0, 10.0, 20.0, 30.0)), (0, (30.0, 40.0, 62.0, 60.0))],
                                            [(0, (30.0, 40.0, 62.0, 60.0))]]  # b has no label 1
    write_yolo_dataset(pairs, str(tmp_path / 'yolo'), names=['ellipse', 'rectangle', 'triangle', 'star'])
    lines = open(tmp_path / 'yolo' / 'labels' / 'train' / '0000_a.txt').read().splitlines()
    assert [[float(v) for v in line.split()] for line in lines] == [
        [3, 12 / 64, 20 / 64, 16 / 64, 20 / 64], [0, 46 / 64, 50 / 64, 32 / 64, 20 / 64]]
    assert training_pairs(str(root), 'splits/train_2shot.txt', label=1)[1][1] is None  # one class's box: b has none
    assert adaptation_key('x.pt', pairs, {}) != adaptation_key('x.pt', training_pairs(
        str(root), 'splits/train_2shot.txt', label_classes={1: 0, 2: 3}), {})  # other classes: another detector


def test_adaptation_raises_box_iou_on_the_training_images_and_is_cached(tmp_path, capsys):
    """The committed toy YOLO on the 4 images of the demo domain (the "scan" style, unseen in its pretraining)."""
    root = str(tmp_path / 'demo')
    generate_demo_dataset(root, num_train=4, num_test=1)
    make_fewshot_splits(root, [4])
    tool = load_tool('adapt_detector')
    cache = str(tmp_path / 'cache')
    args = [osp.join(ROOT, 'toy_world', 'weights', 'toy_yolov8.pt'), root, '--split', 'splits/train_4shot.txt',
            '--epochs', '150', '--lr0', '0.004', '--mosaic', '0', '--keep-class', '0', '--imgsz', '128',
            '--cache-dir', cache]  # the demo config's recipe
    assert tool.main(args) == 0
    adapted = capsys.readouterr().out.strip().splitlines()[-1]
    assert adapted.startswith(cache) and adapted.endswith('adapted.pt') and osp.isfile(adapted)
    report = json.load(open(osp.join(osp.dirname(adapted), 'report.json')))['report']['train']
    assert report['before']['box_iou'] < 0.7  # measured 0.653 (and 3 of 4 detected)
    assert report['after']['box_iou'] > report['before']['box_iou'] + 0.1, report  # measured 0.810 (4 of 4)
    stamp = os.stat(adapted).st_mtime_ns
    assert tool.main(args) == 0  # same split, weights and settings: the cached detector, nothing trained
    assert capsys.readouterr().out.strip().splitlines()[-1] == adapted and os.stat(adapted).st_mtime_ns == stamp


@pytest.mark.parametrize('setting, value', [('epochs', 0), ('imgsz', -64), ('batch', 0), ('lr0', -1.0)])
def test_adaptation_settings_out_of_range_are_one_message_before_anything_is_read(setting, value, tmp_path):
    from mmseg_amsam.models.prompters.detector_adaptation import adapt_yolo
    with pytest.raises(ValueError) as err:  # data_root does not exist: the settings are checked first
        adapt_yolo('yolov8n.yaml', str(tmp_path / 'nowhere'), 'splits/train_4shot.txt', cache_dir=str(tmp_path),
                   **{setting: value})
    assert f'model.prompter.adapt.{setting}={value!r}' in str(err.value)
    assert os.listdir(tmp_path) == []
