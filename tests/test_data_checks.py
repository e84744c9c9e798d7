"""Unreadable image / mask files are found before anything runs (issue 19, 5): one message naming every one, from
the detector adaptation (nothing trained, no cache entry) and from a run's DataCheckHook (no iteration)."""
import os
import os.path as osp
import shutil

import cv2
import numpy as np
import pytest

from cfg_helpers import ROOT, demo_cfg, load_tool
from mmseg_amsam.apis.cli_errors import run_cli
from mmseg_amsam.engine.hooks.data_check_hook import dataset_files
from mmseg_amsam.models.prompters.detector_adaptation import adapt_yolo
from mmseg_amsam.utils.file_checks import UnreadableFilesError, check_readable, unreadable_files

TOY_YOLO = osp.join(ROOT, 'toy_world', 'weights', 'toy_yolov8.pt')


def truncate(path, keep=0.5):
    raw = open(path, 'rb').read()
    with open(path, 'wb') as f:
        f.write(raw[:int(len(raw) * keep)])


def test_each_kind_of_unreadable_file_is_named_with_its_reason(tmp_path):
    import ultralytics.utils.patches  # noqa: F401  replaces PIL's Image.open (a HEIF-plugin retry): the same reasons
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    for name in ('good.jpg', 'cut.jpg', 'good.png', 'cut.png'):
        cv2.imwrite(str(tmp_path / name), image)
    truncate(tmp_path / 'cut.jpg')
    truncate(tmp_path / 'cut.png')
    (tmp_path / 'empty.png').write_bytes(b'')
    (tmp_path / 'text.png').write_text('version https://git-lfs.github.com/spec/v1\n')
    # why cv2 alone is not enough: it decodes the truncated JPEG (grey where the data ends), the pipeline would train
    # on it and ultralytics would skip it
    assert cv2.imread(str(tmp_path / 'cut.jpg')) is not None
    paths = [str(tmp_path / n) for n in ('good.jpg', 'cut.jpg', 'good.png', 'cut.png', 'empty.png', 'text.png',
                                         'missing.png', 'cut.jpg')]
    bad = dict(unreadable_files(paths))
    assert list(bad) == [paths[i] for i in (1, 3, 4, 5, 6)]  # input order, each file once
    assert bad[paths[1]].startswith('PIL cannot decode it (OSError: image file is truncated')
    assert bad[paths[4]] == 'the file is empty' and bad[paths[6]] == 'not found'
    assert 'cannot identify image file' in bad[paths[5]] and str(tmp_path) not in bad[paths[5]]
    with pytest.raises(UnreadableFilesError) as err:
        check_readable(paths, 'test split')
    lines = str(err.value).splitlines()
    assert lines[0].startswith('5 of the 7 image / mask files of the test split cannot be read')
    assert lines[1:6] == [f'  {p}: {bad[p]}' for p in bad] and lines[6].startswith('Replace them')


def _split(root, n=4):
    for sub in ('img_dir/train', 'ann_dir/train', 'splits'):
        os.makedirs(root / sub, exist_ok=True)
    for i in range(n):
        img = np.full((64, 64, 3), 30, np.uint8)
        img[8:40, 10 + i:50] = (230, 200, 40)
        mask = (img[..., 0] > 100).astype(np.uint8)
        cv2.imwrite(str(root / 'img_dir' / 'train' / f'{i}.jpg'), img)
        cv2.imwrite(str(root / 'ann_dir' / 'train' / f'{i}.png'), mask)
    (root / 'splits' / 'train_4shot.txt').write_text(''.join(f'{i}\n' for i in range(n)))
    return root


def test_adaptation_refuses_a_corrupt_image_before_training(tmp_path):
    """The reported case: one of 4 training images corrupt (ultralytics would train on the other 3)."""
    root = _split(tmp_path / 'data')
    truncate(root / 'img_dir' / 'train' / '2.jpg')
    truncate(root / 'ann_dir' / 'train' / '3.png')
    cache = tmp_path / 'cache'
    with pytest.raises(UnreadableFilesError) as err:
        adapt_yolo(TOY_YOLO, str(root), 'splits/train_4shot.txt', epochs=1, imgsz=64, cache_dir=str(cache))
    message = str(err.value)
    assert message.startswith('2 of the 8 image / mask files of the detector adaptation (splits/train_4shot.txt')
    assert f"{root / 'img_dir' / 'train' / '2.jpg'}: PIL cannot decode it" in message
    assert f"{root / 'ann_dir' / 'train' / '3.png'}: PIL cannot decode it" in message
    assert not cache.exists()  # nothing trained, no cache entry


def test_a_run_with_a_corrupt_training_image_stops_before_its_first_iteration(demo_root, tmp_path, capsys):
    data = tmp_path / 'demo'
    shutil.copytree(demo_root, data)
    bad = data / 'img_dir' / 'train' / 'train_002.png'
    truncate(bad)
    work = tmp_path / 'work'
    config = str(tmp_path / 'demo_small.py')
    demo_cfg(str(data), work).dump(config)
    assert run_cli(load_tool('train').main, [config, '--work-dir', str(work)]) == 2
    out, err = capsys.readouterr()  # tools/train.py checks while it holds the start-up log back
    assert out == '' and 'Traceback' not in err and err.count('error: ') == 1
    message = err[err.index('error: '):]
    assert message.startswith('error: 1 of the 8 image / mask files of the train_dataloader dataset cannot be read')
    assert f'\n  {bad}: PIL cannot decode it (OSError: image file is truncated' in message
    assert not [f for _, _, files in os.walk(work) for f in files if f.endswith('.pth')]  # nothing trained


def test_dataset_files_lists_every_image_and_mask_of_a_dataset_once(demo_root):
    from mmseg.registry import DATASETS
    from mmengine.dataset import ConcatDataset
    cfg = demo_cfg(demo_root, '/tmp/unused')
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    files = dataset_files(dataset)
    names = sorted(osp.relpath(f, demo_root) for f in files)
    assert names == sorted([f'img_dir/train/train_00{i}.png' for i in range(4)] +
                           [f'ann_dir/train/train_00{i}.png' for i in range(4)])
    assert dataset_files(ConcatDataset([dataset, dataset.get_subset([0])])) == files
