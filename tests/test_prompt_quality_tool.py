"""tools/prompt_quality.py: builds only model.prompter of a real config, runs it over the test dataloader, reports.

Fixture: a tiny prepared HumanSeg layout (8 train, 5 test images of mixed sizes with one rectangle of foreground
each, so every ground-truth box is known), used through configs/amsam_humanseg_8shot.py. CPU, a few seconds.
"""
import json
import os.path as osp

import cv2
import numpy as np
import pytest
import torch

from cfg_helpers import ROOT, load_tool

CONFIG = osp.join(ROOT, 'configs', 'amsam_humanseg_8shot.py')
# test images: (H, W), foreground rectangle (x1, y1, x2, y2) in pixel edges
TEST_IMAGES = {'1': ((60, 80), (10, 5, 50, 40)), '2': ((96, 64), (0, 20, 64, 90)), '3': ((64, 64), (30, 30, 31, 31)),
               '4': ((50, 90), (45, 10, 89, 49)), '5': ((72, 72), (8, 8, 64, 20))}


@pytest.fixture(scope='module')
def tool():
    return load_tool('prompt_quality')


@pytest.fixture(scope='module')
def humanseg_root(tmp_path_factory):
    from mmseg_amsam.datasets import make_fewshot_splits
    from mmseg_amsam.datasets.prepared_layout import file_record, split_dirs, write_manifest
    root = tmp_path_factory.mktemp('pq') / 'humanseg'
    rng = np.random.default_rng(0)
    train = {str(100 + i): ((64, 64), (8 + i, 4, 40 + i, 60)) for i in range(8)}
    files = {}
    for split, items in (('train', train), ('test', TEST_IMAGES)):
        img_dir, ann_dir = split_dirs(root, split)
        img_dir.mkdir(parents=True)
        ann_dir.mkdir(parents=True)
        files[split] = {}
        for name, ((h, w), (x1, y1, x2, y2)) in items.items():
            image = rng.integers(0, 80, (h, w, 3), dtype=np.uint8)
            mask = np.zeros((h, w), np.uint8)
            mask[y1:y2, x1:x2] = 1
            image[mask > 0] = (40, 180, 220)
            cv2.imwrite(str(img_dir / f'{name}.jpg'), image)
            cv2.imwrite(str(ann_dir / f'{name}.png'), mask)
            files[split][name] = file_record(img_dir / f'{name}.jpg', ann_dir / f'{name}.png')
    write_manifest(root, dict(source='humanseg', img_suffix='.jpg', seg_map_suffix='.png', raw_dir=None,
                              raw_fingerprint=None, files=files))
    make_fewshot_splits(root, [4, 8])
    return str(root)


def run(tool, capsys, *argv):
    code = tool.run_cli(tool.main, [*argv, '--no-progress'])
    out, err = capsys.readouterr()
    return code, out, err


def measure(tool, capsys, tmp_path, root, batch_size, config=CONFIG, options=(), name='out'):
    out = str(tmp_path / f'{name}_b{batch_size}.json')
    code, text, err = run(tool, capsys, config, '--batch-size', str(batch_size), '--out', out, '--cfg-options',
                          f'test_dataloader.dataset.data_root={root}', *options)
    assert code == 0, err
    with open(out) as f:
        return json.load(f), text


@pytest.fixture(scope='module')
def mask_box_config(tmp_path_factory):
    path = tmp_path_factory.mktemp('pq_cfg') / 'mask_box.py'
    path.write_text(f"_base_ = [{CONFIG!r}]\nmodel = dict(prompter=dict(_delete_=True, type='MaskBoxPrompter'))\n")
    return str(path)


def test_mask_box_prompter_exact_boxes_and_batch_invariance(tool, capsys, tmp_path, humanseg_root, mask_box_config):
    one, text = measure(tool, capsys, tmp_path, humanseg_root, 1, mask_box_config)
    three, _ = measure(tool, capsys, tmp_path, humanseg_root, 3, mask_box_config)
    s = one['summary']
    assert (s['prompts'], s['detections'], s['fallbacks'], s['iou_images']) == (5, 5, 0, 5)
    assert s['detection_rate'] == 1.0 and s['box_iou'] == 1.0 and s['box_iou_ge_0.5'] == 1.0
    assert 'MaskBoxPrompter on 5 test images' in text and '5 detected (100.0%), 0 fallbacks' in text
    for record in one['images']:  # the GT mask's box, back in original pixels through the 256 x 256 resize
        (h, w), box = TEST_IMAGES[osp.splitext(osp.basename(record['img_path']))[0]]
        assert record['ori_shape'] == [h, w] and record['fallback'] is False and record['iou'] == 1.0
        assert record['box'] == pytest.approx(box, abs=1e-9)
    assert one['images'] == three['images'] and one['summary'] == three['summary']


def test_detector_that_finds_nothing_falls_back_on_every_image(tool, capsys, tmp_path, humanseg_root):
    options = ('model.prompter.model=yolov8n.yaml', 'model.prompter.imgsz=64', 'model.prompter.conf=1.0')
    result, text = measure(tool, capsys, tmp_path, humanseg_root, 1, options=options)
    s = result['summary']
    assert (s['prompts'], s['detections'], s['fallbacks'], s['detection_rate']) == (5, 0, 5, 0.0)
    assert 'WARNING: the prompter FELL BACK on 5 of 5 images' in text
    expected = []  # whole-image box vs the GT box: IoU = GT box area / image area
    for record in result['images']:
        (h, w), (x1, y1, x2, y2) = TEST_IMAGES[osp.splitext(osp.basename(record['img_path']))[0]]
        assert record['box'] is None and record['fallback'] is True
        assert record['iou'] == pytest.approx((x2 - x1) * (y2 - y1) / (w * h), abs=1e-9)
        expected.append(record['iou'])
    assert s['box_iou'] == pytest.approx(np.mean(expected), abs=1e-12)
    assert s['box_iou_ge_0.5'] == pytest.approx(np.mean(np.array(expected) >= 0.5))


def test_detector_boxes_do_not_depend_on_the_batch(tool, capsys, tmp_path, humanseg_root):
    """A random-weight YOLOv8n with conf 0 detects something on every image; mixed-size batches of 3 (then 2) must
    give each image the box it gets alone."""
    options = ('model.prompter.model=yolov8n.yaml', 'model.prompter.imgsz=64', 'model.prompter.conf=0.0')
    torch.manual_seed(0)  # the same random detector for both runs
    one, _ = measure(tool, capsys, tmp_path, humanseg_root, 1, options=options, name='yolo')
    torch.manual_seed(0)
    three, _ = measure(tool, capsys, tmp_path, humanseg_root, 3, options=options, name='yolo')
    assert one['summary']['detections'] == 5 and all(r['box'] is not None for r in one['images'])
    assert one['images'] == three['images'] and one['summary'] == three['summary']


def test_bad_input_is_one_message_and_exit_2(tool, capsys, tmp_path, humanseg_root):
    code, _, err = run(tool, capsys, str(tmp_path / 'nope.py'))
    assert code == 2 and err.startswith('error: config file') and 'nope.py' in err and 'Traceback' not in err
    missing = str(tmp_path / 'no_data')
    code, _, err = run(tool, capsys, CONFIG, '--cfg-options', f'test_dataloader.dataset.data_root={missing}',
                       'model.prompter.model=yolov8n.yaml')
    assert code == 2 and missing in err and 'humanseg.py' in err and 'Traceback' not in err
    code, _, err = run(tool, capsys, CONFIG, '--cfg-options', f'test_dataloader.dataset.data_root={humanseg_root}',
                       'model.prompter.model=missing_weights.pt')
    assert code == 2 and 'model.prompter.model = missing_weights.pt' in err and 'sam_checkpoint' not in err
    code, _, err = run(tool, capsys, CONFIG, '--cfg-options', f'test_dataloader.dataset.data_root={humanseg_root}',
                       'model.prompter.model=yolov8n.yaml', 'model.prompter.classes=[Fall]')
    assert code == 2 and "classes ['Fall'] are not classes of this detector; it has 80" in err
    assert err.count('\n') == 1 and "0 'person'" in err
