"""Dataset classes, the synthetic demo data and the dataset base configs."""
import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS
from PIL import Image

from mmseg_amsam.datasets import (DemoShapesDataset, HumanSegDataset, ISIC2018Dataset, OutputExistsError,
                                  TikTokBodyDataset, convert_dataset, generate_demo_dataset, make_fewshot_splits)
from mmseg_amsam.datasets.conversion import pair_folders

CONFIGS = Path(__file__).resolve().parents[1] / 'configs' / '_base_' / 'datasets'


@pytest.fixture(autouse=True)
def mmseg_scope():
    init_default_scope('mmseg')


@pytest.fixture(scope='module')
def demo_data(tmp_path_factory) -> Path:
    return generate_demo_dataset(tmp_path_factory.mktemp('demo') / 'demo_shapes', num_train=6, num_test=3, size=64)


def dataset_cfg(config: str, data_root: Path, loader: str = 'train_dataloader', **overrides) -> dict:
    """The dataset dict of a base config, pointed at ``data_root``."""
    cfg = Config.fromfile(str(CONFIGS / config))
    dataset = cfg[loader]['dataset'].to_dict()
    dataset.update(data_root=str(data_root), **overrides)
    return dataset


def tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob('*')):
        if p.is_file() and p.name != 'amsam_prepared.json':
            h.update(str(p.relative_to(root)).encode() + p.read_bytes())
    return h.hexdigest()


# ------------------------------------------------------------------------------------------ demo data
def test_demo_dataset_files(demo_data):
    train = sorted(p.name for p in (demo_data / 'img_dir' / 'train').iterdir())
    assert train == [f'train_{i:03d}.png' for i in range(6)]
    assert len(list((demo_data / 'ann_dir' / 'test').iterdir())) == 3
    fractions = []
    for p in (demo_data / 'ann_dir' / 'train').iterdir():
        mask = np.asarray(Image.open(p))
        assert mask.shape == (64, 64) and set(np.unique(mask)) == {0, 1}
        fractions.append(mask.mean())
    assert all(0.03 <= f <= 0.6 for f in fractions)
    image = np.asarray(Image.open(demo_data / 'img_dir' / 'train' / 'train_000.png'))
    assert image.shape == (64, 64, 3) and image.std() > 10  # textured, not flat


def test_demo_dataset_is_deterministic_and_idempotent(demo_data, tmp_path):
    again = generate_demo_dataset(tmp_path / 'a', num_train=6, num_test=3, size=64)
    assert tree_digest(again) == tree_digest(demo_data)
    other_seed = generate_demo_dataset(tmp_path / 'b', num_train=6, num_test=3, size=64, seed=1)
    assert tree_digest(other_seed) != tree_digest(demo_data)

    mtime = (again / 'img_dir' / 'train' / 'train_000.png').stat().st_mtime_ns
    messages = []
    generate_demo_dataset(again, num_train=6, num_test=3, size=64, log=messages.append)
    assert 'nothing to do' in messages[0]
    assert (again / 'img_dir' / 'train' / 'train_000.png').stat().st_mtime_ns == mtime

    with pytest.raises(OutputExistsError, match='overwrite'):
        generate_demo_dataset(again, num_train=7, num_test=3, size=64)
    generate_demo_dataset(again, num_train=7, num_test=3, size=64, overwrite=True)
    assert len(list((again / 'img_dir' / 'train').iterdir())) == 7

    foreign = tmp_path / 'foreign'
    foreign.mkdir()
    (foreign / 'file.txt').write_text('x')
    with pytest.raises(OutputExistsError, match='not a dataset prepared by this package'):
        generate_demo_dataset(foreign)


def test_demo_dataset_class_with_config_pipelines(demo_data):
    train = DATASETS.build(dataset_cfg('demo_shapes.py', demo_data))
    assert isinstance(train, DemoShapesDataset) and len(train) == 6
    assert train.metainfo['classes'] == ('background', 'shape')
    assert train.reduce_zero_label is False
    item = train[0]
    assert tuple(item['inputs'].shape) == (3, 256, 256)
    gt = item['data_samples'].gt_sem_seg.data
    assert tuple(gt.shape) == (1, 256, 256) and set(gt.unique().tolist()) == {0, 1}

    test = DATASETS.build(dataset_cfg('demo_shapes.py', demo_data, 'test_dataloader'))
    assert len(test) == 3
    item = test[0]
    assert tuple(item['inputs'].shape) == (3, 256, 256)
    assert tuple(item['data_samples'].gt_sem_seg.data.shape) == (1, 64, 64)  # GT kept at original size
    assert item['data_samples'].ori_shape == (64, 64)


def test_split_file_selects_few_shot_subset(demo_data, tmp_path):
    root = generate_demo_dataset(tmp_path / 'demo', num_train=6, num_test=1, size=32)
    make_fewshot_splits(root, [2])
    ds = DATASETS.build(dict(type='DemoShapesDataset', data_root=str(root), ann_file='splits/train_2shot.txt',
                             data_prefix=dict(img_path='img_dir/train', seg_map_path='ann_dir/train')))
    assert [Path(ds.get_data_info(i)['img_path']).name for i in range(len(ds))] == ['train_000.png', 'train_001.png']
    assert ds.get_data_info(1)['seg_map_path'].endswith('ann_dir/train/train_001.png')

    (root / 'splits' / 'bad.txt').write_text('train_000\ntrain_999\nnope.png\n')
    expected = r"lists 2 name\(s\) with no image.*'train_999', 'nope.png'.*without suffix"
    with pytest.raises(FileNotFoundError, match=expected):
        DemoShapesDataset(data_root=str(root), ann_file='splits/bad.txt',
                          data_prefix=dict(img_path='img_dir/train', seg_map_path='ann_dir/train'))
    with pytest.raises(FileNotFoundError, match='make_fewshot_split.py'):
        DemoShapesDataset(data_root=str(root), ann_file='splits/train_4shot.txt',
                          data_prefix=dict(img_path='img_dir/train', seg_map_path='ann_dir/train'))


# ------------------------------------------------------------------------------------------ real datasets
@pytest.fixture(scope='module')
def humanseg_root(tmp_path_factory) -> Path:
    """A converted HumanSeg-layout fixture: 6 train + 2 test pairs of 48x36 images."""
    base = tmp_path_factory.mktemp('humanseg')
    imgs, gts = base / 'raw' / 'Training_Images', base / 'raw' / 'Ground_Truth'
    imgs.mkdir(parents=True)
    gts.mkdir()
    rng = np.random.default_rng(0)
    for i in range(1, 9):
        Image.fromarray(rng.integers(0, 256, (36, 48, 3), dtype=np.uint8)).save(imgs / f'{i}.jpg')
        m = np.zeros((36, 48), np.uint8)
        m[5:20, 10:10 + 3 * i] = 255
        Image.fromarray(m).save(gts / f'{i}.png')
    raw = pair_folders(imgs, gts, 'train')
    for pair in raw.pairs[-2:]:
        pair.split = 'test'
    root = base / 'humanseg'
    convert_dataset(raw, base / 'raw', root, source='humanseg', img_suffix='.jpg', log=lambda s: None)
    return root


def test_humanseg_dataset_on_converted_fixture(humanseg_root):
    make_fewshot_splits(humanseg_root, [4])
    train = DATASETS.build(dataset_cfg('humanseg.py', humanseg_root))  # config uses splits/train_4shot.txt
    assert isinstance(train, HumanSegDataset)
    assert [Path(train.get_data_info(i)['img_path']).stem for i in range(len(train))] == ['1', '2', '3', '4']
    item = train[2]
    gt = item['data_samples'].gt_sem_seg.data
    assert tuple(gt.shape) == (1, 256, 256) and set(gt.unique().tolist()) == {0, 1}

    full = DATASETS.build(dataset_cfg('humanseg.py', humanseg_root, ann_file=''))
    assert len(full) == 6
    test = DATASETS.build(dataset_cfg('humanseg.py', humanseg_root, 'test_dataloader'))
    assert [Path(test.get_data_info(i)['img_path']).stem for i in range(len(test))] == ['7', '8']
    gt = test[1]['data_samples'].gt_sem_seg.data
    assert tuple(gt.shape) == (1, 36, 48) and int(gt.sum()) == 15 * 24  # mask of sample 8 at full size


def test_wrong_dataset_class_for_data_root(humanseg_root):
    with pytest.raises(ValueError, match="holds a prepared 'humanseg' dataset"):
        ISIC2018Dataset(data_root=str(humanseg_root),
                        data_prefix=dict(img_path='img_dir/train', seg_map_path='ann_dir/train'))
    with pytest.raises(ValueError, match="end with '.jpg' but img_suffix is '.png'"):
        HumanSegDataset(data_root=str(humanseg_root), img_suffix='.png',
                        data_prefix=dict(img_path='img_dir/train', seg_map_path='ann_dir/train'))


@pytest.mark.parametrize('cls, config, tool', [
    (HumanSegDataset, 'humanseg.py', 'tools/dataset_converters/humanseg.py'),
    (TikTokBodyDataset, 'tiktok.py', 'tools/dataset_converters/tiktok.py'),
    (ISIC2018Dataset, 'isic2018.py', 'tools/dataset_converters/isic2018.py'),
    (DemoShapesDataset, 'demo_shapes.py', 'tools/generate_demo_data.py'),
])
def test_missing_or_unprepared_data_root(cls, config, tool, tmp_path):
    missing = tmp_path / 'missing'
    cfg = dataset_cfg(config, missing)
    assert DATASETS.get(cfg['type']) is cls
    expected = f'(?s)data_root {re.escape(repr(str(missing)))} does not exist.*{tool}'
    with pytest.raises(FileNotFoundError, match=expected):
        DATASETS.build(cfg)
    missing.mkdir()
    (missing / 'img_dir' / 'train').mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"annotation folder '.*ann_dir/train' is missing.*not a prepared"):
        DATASETS.build(dataset_cfg(config, missing, ann_file=''))


def test_base_configs_share_the_protocol():
    for name, dataset_type, root in [('humanseg.py', 'HumanSegDataset', 'data/humanseg'),
                                     ('tiktok.py', 'TikTokBodyDataset', 'data/tiktok'),
                                     ('isic2018.py', 'ISIC2018Dataset', 'data/isic2018'),
                                     ('demo_shapes.py', 'DemoShapesDataset', 'data/demo_shapes')]:
        cfg = Config.fromfile(str(CONFIGS / name))
        assert cfg.train_dataloader.dataset.type == dataset_type and cfg.data_root == root
        assert cfg.train_dataloader.batch_size == 1 and cfg.train_dataloader.num_workers == 0
        assert cfg.train_dataloader.sampler == dict(type='DefaultSampler', shuffle=True)
        assert [t['type'] for t in cfg.train_pipeline] == ['LoadImageFromFile', 'LoadAnnotations', 'Resize',
                                                           'PackSegInputs']
        assert [t['type'] for t in cfg.test_pipeline] == ['LoadImageFromFile', 'Resize', 'LoadAnnotations',
                                                          'PackSegInputs']
        assert cfg.train_pipeline[2]['scale'] == (256, 256) and cfg.train_pipeline[2]['keep_ratio'] is False
        assert cfg.val_dataloader.dataset.data_prefix == dict(img_path='img_dir/test', seg_map_path='ann_dir/test')
        assert cfg.test_dataloader == cfg.val_dataloader
        assert cfg.val_evaluator == cfg.test_evaluator == dict(type='DiceMetric')
        if name == 'demo_shapes.py':
            assert cfg.train_dataloader.dataset.get('ann_file', '') == ''  # mmseg: '' = every training image
        else:
            assert cfg.shots == 4 and cfg.train_dataloader.dataset.ann_file == 'splits/train_4shot.txt'
