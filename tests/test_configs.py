"""Every top-level config in configs/ (paper experiments, ablations, baselines, demo).

* each builds its model and its train / val / test dataloaders (and loads one batch of each) on a tiny prepared
  fixture, with tiny overrides (SAM 'tiny' arch without checkpoint, YOLOv8n from its yaml, ResNetV1c-18, tiny
  Swin-Unet, 64 px), and carries ``custom_imports`` / ``default_scope`` itself;
* the paper settings of the unshrunk config are checked (method, prompter, calibration, schedule, split file);
* which parameters train, per method family;
* one short training run per method family through mmengine's Runner, and the test-only SAM + YOLO config through
  ``tools/test.py CONFIG none``.

CPU only; about a minute on 2 cores.
"""
import ast
import copy
import glob
import json
import os.path as osp
import shutil
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.optim import OptimWrapper, OptimWrapperDict, build_optim_wrapper
from mmengine.runner import Runner
from mmseg.registry import MODELS
from PIL import Image

from cfg_helpers import ROOT, load_tool, point_at, shrink

CONFIG_DIR = osp.join(ROOT, 'configs')
CONFIGS = sorted(osp.splitext(osp.basename(p))[0] for p in glob.glob(osp.join(CONFIG_DIR, '*.py')))
IMG = 64

# dataset class -> (manifest source = fixture folder, image suffix); the config name's 2nd field -> dataset class
DATASETS = {
    'ISIC2018Dataset': ('isic2018', '.jpg'),
    'TikTokBodyDataset': ('tiktok', '.png'),
    'HumanSegDataset': ('humanseg', '.jpg'),
    'DemoShapesDataset': ('demo_shapes', '.png'),
    'DemoShapesMultiClassDataset': ('demo_shapes_multiclass', '.png'),
}
DATASET_OF = dict(isic='ISIC2018Dataset', tiktok='TikTokBodyDataset', humanseg='HumanSegDataset',
                  demo='DemoShapesDataset')

# method family (first field of the config name) -> what the paper config must be
AMSAM_FAMILIES = {
    #               prompter            calibration  schedule   learnable prompt
    'amsam': dict(prompter='YOLOBoxPrompter', calibration='sample', schedule='bilevel', prompt=True),
    'amsam-adapt': dict(prompter='YOLOBoxPrompter', calibration='sample', schedule='bilevel', prompt=True),
    'amsam-yolo': dict(prompter='YOLOBoxPrompter', calibration='none', schedule='bilevel', prompt=True),
    'amsam-calib': dict(prompter=None, calibration='sample', schedule='bilevel', prompt=True),
    'blosam': dict(prompter=None, calibration='none', schedule='bilevel', prompt=True),
    'samed': dict(prompter=None, calibration='none', schedule='single', prompt=True),
    'sam-yolo': dict(prompter='YOLOBoxPrompter', calibration='none', schedule='test_only', prompt=False),
    'amsam-sam2': dict(prompter='YOLOBoxPrompter', calibration='sample', schedule='bilevel', prompt=True),
    'amsam-gtbox': dict(prompter='MaskBoxPrompter', calibration='sample', schedule='bilevel', prompt=True),
}
TOY = ('amsam_demo', 'amsam_demo_multiclass', 'blosam_demo_multiclass', 'amsam-gtbox_demo_multiclass',
       'amsam-adapt_demo_multiclass')
# SAM image encoder and checkpoint of a family's shipped configs (default: the paper's SAM ViT-B)
SAM_OF = {'amsam-sam2': ('hiera_t', 'checkpoints/sam2.1_hiera_tiny.pt')}
OTHER_FAMILIES = dict(deeplabv3='single', swinunet='single')


def family_of(name):
    return name.split('_')[0]


def dataset_of(name):
    return 'DemoShapesMultiClassDataset' if name.endswith('_multiclass') else DATASET_OF[name.split('_')[1]]


def shots_of(name):
    last = name.split('_')[-1]
    return int(last[:-4]) if last.endswith('shot') else None


# --------------------------------------------------------------------------- fixture
@pytest.fixture(scope='session')
def data_roots(tmp_path_factory):
    """One tiny prepared dataset per dataset class (16 train + 2 test images, 64 px, 4/8/16-shot split files).

    Built from the demo shapes, re-encoded with each dataset's image suffix and given a manifest with its source,
    so the dataset classes' checks (source, suffix, split file, image + mask per name) all run.
    """
    from mmseg_amsam.datasets import generate_demo_dataset, make_fewshot_splits
    from mmseg_amsam.datasets.prepared_layout import file_record, split_dirs, write_manifest
    base = tmp_path_factory.mktemp('config_fixture')
    shapes = generate_demo_dataset(base / '_shapes', num_train=16, num_test=2, size=IMG, seed=0)
    roots = {}
    for dataset, (source, suffix) in DATASETS.items():
        root = base / source
        if source.startswith('demo_shapes'):
            roots[dataset] = str(generate_demo_dataset(root, num_train=4, num_test=2, size=IMG, seed=0,
                                                       multiclass=source.endswith('multiclass')))
            continue
        files = {}
        for split in ('train', 'test'):
            src_img, src_ann = split_dirs(shapes, split)
            img_dir, ann_dir = split_dirs(root, split)
            img_dir.mkdir(parents=True)
            ann_dir.mkdir(parents=True)
            files[split] = {}
            for i, path in enumerate(sorted(src_img.glob('*.png'))):
                name = f'{i + 1:04d}'
                img, ann = img_dir / (name + suffix), ann_dir / (name + '.png')
                Image.open(path).convert('RGB').save(img)
                shutil.copy(src_ann / path.name, ann)
                files[split][name] = file_record(img, ann)
        write_manifest(root, dict(source=source, img_suffix=suffix, seg_map_suffix='.png', raw_dir=None,
                                  raw_fingerprint=None, files=files))
        make_fewshot_splits(root, [4, 8, 16])
        roots[dataset] = str(root)
    return roots


# --------------------------------------------------------------------------- helpers
def load(name):
    return Config.fromfile(osp.join(CONFIG_DIR, name + '.py'))


def tiny(cfg, data_roots):
    """Tiny, offline version of a config: small models at 64 px on the fixture."""
    cfg = copy.deepcopy(cfg)
    model = cfg.model
    if model.type == 'AMSAM':
        model.sam_checkpoint = None
        model.backbone.arch = 'tiny'
        if model.get('prompter') and model.prompter.type == 'YOLOBoxPrompter':
            model.prompter.model = 'yolov8n.yaml'
            if model.prompter.get('class_map'):  # the toy detector's shape families -> COCO classes of the yaml
                model.prompter.class_map = {name: label for name, label in zip(
                    ('person', 'car', 'dog'), model.prompter.class_map.values())}
            if model.prompter.get('adapt'):  # 1 epoch at 64 px on the fixture, cached beside it
                root = data_roots[dataset_type(cfg)]
                model.prompter.adapt.update(data_root=root, epochs=1, imgsz=64,
                                            cache_dir=osp.join(osp.dirname(root), 'adapted_detectors'))
                if not osp.isfile(osp.join(root, model.prompter.adapt.ann_file)):  # the demo fixtures: 4 shots
                    model.prompter.adapt.ann_file = 'splits/train_4shot.txt'
        shrink(cfg, IMG)
    else:
        model.data_preprocessor.size = (IMG, IMG)
        for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            if cfg.get(key):
                for t in cfg[key].dataset.pipeline:
                    if t['type'] == 'Resize':
                        t['scale'] = (IMG, IMG)
        if model.backbone.type == 'ResNetV1c':  # ResNet-18: 512 / 256 output channels of stages 4 / 3
            model.backbone.depth = 18
            model.decode_head.update(in_channels=512, channels=16)
            model.auxiliary_head.update(in_channels=256, channels=16)
        elif model.backbone.type == 'SwinUnetEncoder':  # as tests/test_swin_unet.py
            tiny_swin = dict(depths=(1, 1, 1, 1), num_heads=(1, 2, 2, 4), window_size=4, drop_path_rate=0.)
            model.backbone.update(embed_dims=24, pretrain_img_size=IMG, **tiny_swin)
            model.decode_head.update(in_channels=[24, 48, 96, 192], channels=24, **tiny_swin)
    name = dataset_type(cfg)
    point_at(cfg, data_roots[name])
    return cfg


def dataset_type(cfg):
    loader = cfg.get('train_dataloader') or cfg.test_dataloader
    return loader.dataset.type


def top_level_names(name):
    tree = ast.parse(open(osp.join(CONFIG_DIR, name + '.py')).read())
    return {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets if isinstance(t, ast.Name)}


# --------------------------------------------------------------------------- every config
def test_config_list_covers_the_paper():
    """The experiment grid of Tables 1-4 (and the baselines) is all there."""
    expected = {f'amsam_{d}_{k}shot' for d in ('isic', 'tiktok', 'humanseg') for k in (4, 8, 16)} - {
        'amsam_tiktok_16shot'}
    expected |= {f'blosam_{d}_{k}shot' for d, ks in (('isic', (4, 8, 16)), ('tiktok', (4, 8)),
                                                       ('humanseg', (4, 8, 16))) for k in ks}
    expected |= {f'{m}_{d}_{k}shot' for m in ('amsam-yolo', 'amsam-calib', 'deeplabv3', 'swinunet', 'samed')
                 for d in ('isic', 'tiktok') for k in (4, 8)}
    expected |= {f'sam-yolo_{d}' for d in ('isic', 'tiktok', 'humanseg')} | {'amsam_demo'}
    assert expected <= set(CONFIGS), sorted(expected - set(CONFIGS))
    assert 'amsam_isic_8shot' in CONFIGS


@pytest.mark.parametrize('name', CONFIGS)
def test_paper_settings(name):
    """The config as shipped: plugin import, scope, method, data, schedule (before any tiny override)."""
    assert {'_base_', 'custom_imports', 'default_scope'} <= top_level_names(name), \
        f'{name}.py must set custom_imports and default_scope itself'
    cfg = load(name)
    assert cfg.custom_imports == dict(imports=['mmseg_amsam'], allow_failed_imports=False)
    assert cfg.default_scope == 'mmseg'
    family = family_of(name)
    assert dataset_type(cfg) == dataset_of(name)
    shots = shots_of(name)
    if shots is not None:
        assert cfg.train_dataloader.dataset.ann_file == f'splits/train_{shots}shot.txt'
        assert cfg.train_dataloader.dataset.data_prefix.img_path == 'img_dir/train'
    assert cfg.test_dataloader.dataset.data_prefix.img_path == 'img_dir/test'
    assert cfg.test_evaluator.type == 'DiceMetric'

    if name in TOY:  # toy scale: the demo's sizes and schedule (configs/amsam_demo.py)
        return
    if family in AMSAM_FAMILIES:
        want = AMSAM_FAMILIES[family]
        model = cfg.model
        arch, checkpoint = SAM_OF.get(family, ('vit_b', 'checkpoints/sam_vit_b_01ec64.pth'))
        assert model.type == 'AMSAM' and model.img_size == 256 and model.backbone.arch == arch
        assert model.sam_checkpoint == checkpoint
        assert (model.prompter.type if model.get('prompter') else None) == want['prompter']
        if family == 'amsam-adapt':  # the detector adapts on the split the bi-level stage trains on, one class
            adapt, train = model.prompter.adapt, cfg.train_dataloader.dataset
            assert (adapt.data_root, adapt.ann_file) == (train.data_root, train.ann_file)
            assert model.prompter.get('classes') is None and adapt.report_split == 'test'
        elif want['prompter']:
            human = dataset_of(name) in ('TikTokBodyDataset', 'HumanSegDataset')
            assert model.prompter.get('classes') == (['person'] if human else None)
            assert model.prompter.fallback == 'image'
        assert bool(model.get('learnable_prompt')) == want['prompt']
        head = model.decode_head
        assert head.calibration == want['calibration']
        assert head.alpha == 0.7
        assert head.lora_rank == (0 if family in ('sam-yolo', 'samed') else 4)  # SAMed: LoRA in the encoder
        schedule = want['schedule']
    else:
        assert cfg.model.type == 'EncoderDecoder'
        schedule = OTHER_FAMILIES[family]
    if schedule == 'bilevel':
        assert cfg.train_cfg.type == 'BiLevelEpochBasedTrainLoop' and cfg.train_cfg.max_epochs == 100
        assert cfg.train_cfg.val_on == 'd2' and cfg.default_hooks.checkpoint.save_best == 'mDice'
        assert cfg.optim_wrapper.lower.optimizer.lr == 5e-3 and cfg.optim_wrapper.upper.optimizer.lr == 1e-3
    elif schedule == 'single':
        assert cfg.train_cfg.type == 'EpochBasedTrainLoop' and cfg.train_cfg.max_epochs == 100
        assert cfg.optim_wrapper.get('constructor') is None  # default constructor: one optimizer
        assert cfg.optim_wrapper.optimizer == dict(type='AdamW', lr=5e-3, betas=(0.9, 0.999), weight_decay=0.1)
        assert cfg.param_scheduler[0].type == 'PolyLR' and cfg.param_scheduler[0].power == 0.9
        assert cfg.val_dataloader is None and cfg.val_cfg is None and cfg.val_evaluator is None
        assert cfg.default_hooks.checkpoint.save_last and 'save_best' not in cfg.default_hooks.checkpoint
    else:  # test only
        assert cfg.train_dataloader is None and cfg.train_cfg is None and cfg.optim_wrapper is None
        assert cfg.val_dataloader is None and cfg.test_cfg.type == 'TestLoop'
    if family == 'deeplabv3':
        m = cfg.model
        assert (m.backbone.type, m.backbone.depth, m.decode_head.type, m.auxiliary_head.type) == (
            'ResNetV1c', 50, 'ASPPHead', 'FCNHead')
        assert m.decode_head.num_classes == m.auxiliary_head.num_classes == 2
        assert m.backbone.norm_cfg.type == 'BN' and m.pretrained is None
    if family == 'swinunet':
        assert cfg.model.backbone.type == 'SwinUnetEncoder' and cfg.model.decode_head.type == 'SwinUnetHead'


@pytest.mark.parametrize('name', CONFIGS)
def test_builds_model_and_dataloaders(name, data_roots):
    cfg = tiny(load(name), data_roots)
    model = MODELS.build(cfg.model)
    family = family_of(name)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}

    if model.__class__.__name__ == 'AMSAM':
        want = AMSAM_FAMILIES.get(family, AMSAM_FAMILIES['amsam'])
        assert model.decode_head.calibration.mode == want['calibration']
        assert type(model.prompter).__name__ == (want['prompter'] or 'NoneType')
        assert (model.learnable_prompt is not None) == want['prompt']
        assert not any(n.startswith(('backbone.', 'prompt_encoder.')) and not (family == 'samed' and '.lora_' in n)
                       for n in trainable), 'SAM parts must be frozen (SAMed: but for its encoder LoRA)'
        if family == 'amsam-adapt':  # the config switch ran the adaptation at build and logged its report
            assert model.prompter.adapted_from == 'yolov8n.yaml' and model.prompter.model_path.endswith('adapted.pt')
            if not model.prompter.class_map:  # one new class; multi-class keeps the detector's classes
                assert list(model.prompter.class_names.values()) == ['object']
            folder = osp.dirname(model.prompter.model_path)  # measured at the prompter's conf and imgsz
            report = json.load(open(osp.join(folder, f'report_test_conf{model.prompter.conf}_{IMG}.json')))
            suffix = ' class 1' if model.prompter.class_map else ''  # multi-class: one report per class
            assert report[f'train{suffix}']['after']['images'] == (shots_of(name) or 4)
            assert report[f'test{suffix}']['after']['images'] == 2
        if family == 'sam-yolo':
            assert not trainable, f'plain SAM + YOLO trains nothing, got {sorted(trainable)[:5]}'
            assert model.decode_head.num_lora_layers == 0 and model.num_classes == 1
        else:
            assert any('lora' in n for n in trainable)
            assert 'learnable_prompt.dense_embed' in trainable
            optim = build_optim_wrapper(model, cfg.optim_wrapper)
            if want['schedule'] == 'bilevel':
                assert isinstance(optim, OptimWrapperDict) and set(optim.keys()) == {'lower', 'upper'}
                lower, upper = optim['lower'].param_names, optim['upper'].param_names
                assert all(n.startswith('decode_head.') for n in lower) and any('lora' in n for n in lower)
                assert set(upper) == {n for n in trainable if n.startswith('learnable_prompt.')}
            else:  # samed: LoRA + decoder + prompt, all in ONE optimizer
                assert isinstance(optim, OptimWrapper) and not isinstance(optim, OptimWrapperDict)
                in_optim = {id(p) for g in optim.optimizer.param_groups for p in g['params']}
                params = dict(model.named_parameters())
                assert all(id(params[n]) in in_optim for n in trainable)
    elif family == 'deeplabv3':
        from mmseg.models import ASPPHead, EncoderDecoder, FCNHead, ResNetV1c
        assert isinstance(model, EncoderDecoder) and isinstance(model.backbone, ResNetV1c)
        assert isinstance(model.decode_head, ASPPHead) and isinstance(model.auxiliary_head, FCNHead)
        assert not any(isinstance(m, torch.nn.SyncBatchNorm) for m in model.modules())
        assert trainable == {n for n, _ in model.named_parameters()}
        assert type(build_optim_wrapper(model, cfg.optim_wrapper)) is OptimWrapper
    elif family == 'swinunet':
        from mmseg.models import EncoderDecoder
        from mmseg_amsam.models.baselines import SwinUnetEncoder, SwinUnetHead
        assert isinstance(model, EncoderDecoder) and isinstance(model.backbone, SwinUnetEncoder)
        assert isinstance(model.decode_head, SwinUnetHead)
        assert trainable == {n for n, _ in model.named_parameters()}
        assert type(build_optim_wrapper(model, cfg.optim_wrapper)) is OptimWrapper
    else:
        pytest.fail(f'no expectations for config family {family!r}')

    shots = shots_of(name)
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if cfg.get(key) is None:
            continue
        loader = Runner.build_dataloader(copy.deepcopy(cfg[key]), seed=0)
        n = len(loader.dataset)
        if key == 'train_dataloader':
            assert n == (shots or 4)
        else:
            assert n == 2
        batch = next(iter(loader))
        assert batch['inputs'][0].shape[-2:] == (IMG, IMG)
        assert batch['data_samples'][0].gt_sem_seg.data.max() <= max(1, model.num_classes - 1)  # multi-class: 2


# --------------------------------------------------------------------------- training, one per family
class _Snapshot(Hook):
    """Parameters at the start of training (after the runner initialised the weights)."""

    def before_train(self, runner):
        self.before = {n: p.detach().clone() for n, p in runner.model.named_parameters()}


TRAIN = ['amsam_isic_4shot', 'blosam_humanseg_4shot', 'samed_tiktok_4shot', 'deeplabv3_isic_4shot',
         'swinunet_tiktok_4shot']


@pytest.mark.parametrize('name', TRAIN)
def test_trains_one_epoch_and_tests_its_checkpoint(name, data_roots, tmp_path):
    cfg = tiny(load(name), data_roots)
    cfg.work_dir = str(tmp_path)
    cfg.train_cfg.max_epochs = 1
    cfg.default_hooks.logger.interval = 1
    runner = Runner.from_cfg(cfg)
    snap = _Snapshot()
    runner.register_hook(snap)
    runner.train()
    after = dict(runner.model.named_parameters())
    changed = {n for n, p in after.items() if not torch.equal(p.detach(), snap.before[n])}
    family = family_of(name)
    if family in AMSAM_FAMILIES:
        assert not any(n.startswith(('backbone.', 'prompt_encoder.')) and not (family == 'samed' and '.lora_' in n)
                       for n in changed)
        assert any('lora' in n for n in changed) and 'learnable_prompt.dense_embed' in changed
    else:
        assert any(n.startswith('backbone.') for n in changed) and any(n.startswith('decode_head.') for n in changed)
    if AMSAM_FAMILIES.get(family, {}).get('schedule') == 'bilevel':
        assert glob.glob(str(tmp_path / 'best_mDice_epoch_*.pth'))
        assert osp.isfile(tmp_path / 'bilevel_split.json')
    else:  # single level: no validation, the last checkpoint is saved
        assert runner.val_loop is None
        assert osp.isfile(tmp_path / 'epoch_1.pth') and not glob.glob(str(tmp_path / 'best_*.pth'))
    # the checkpoint the config's header tells to test: best on D2 (bi-level) or the last one (single level)
    best = glob.glob(str(tmp_path / 'best_mDice_epoch_*.pth'))
    test_cfg = tiny(load(name), data_roots)
    test_cfg.work_dir = str(tmp_path / 'test')
    test_cfg.load_from = best[0] if best else open(tmp_path / 'last_checkpoint').read().strip()
    metrics = Runner.from_cfg(test_cfg).test()
    # the checkpoint restores the trained model exactly: the same test Dice as the model still in memory
    assert metrics['mDice'] == runner.test()['mDice']


def test_sam_yolo_tests_without_checkpoint(data_roots, tmp_path, monkeypatch):
    """`tools/test.py configs/sam-yolo_*.py none`: no checkpoint, the model as built (nothing trained)."""
    tool = load_tool('test')
    opts = ['model.backbone.arch=tiny', 'model.sam_checkpoint=None', 'model.prompter.model=yolov8n.yaml',
            'model.prompter.imgsz=64', f'test_dataloader.dataset.data_root={data_roots["TikTokBodyDataset"]}']
    monkeypatch.setattr(sys, 'argv', ['test.py', osp.join(CONFIG_DIR, 'sam-yolo_tiktok.py'), 'none',
                                      '--work-dir', str(tmp_path), '--cfg-options', *opts])
    tool.main()
    results = glob.glob(str(tmp_path / '*' / '*.json'))
    assert results, 'tools/test.py wrote no metrics'
    metrics = json.load(open(results[0]))
    assert 0.0 <= metrics['mDice'] <= 100.0


# --------------------------------------------------------------------------- issue 10: every paper hyper-parameter
BILEVEL = [n for n in CONFIGS if family_of(n) in AMSAM_FAMILIES and AMSAM_FAMILIES[family_of(n)]['schedule'] ==
           'bilevel' and n not in TOY]


@pytest.mark.parametrize('name', BILEVEL)
def test_bilevel_config_has_every_paper_hyper_parameter(name):
    """The paper's "Hyper-parameters" paragraph, value by value: lambda = 0.8 (eq. 5), alpha = 0.7 (eq. 12), LoRA
    rank 4, AdamW betas (0.9, 0.999), weight decay 0.1, lr 5e-3 (lower) / 1e-3 (upper), poly power 0.9 over
    the whole run (per iteration), 100 epochs, batch size 1, best checkpoint by Dice on D2."""
    cfg = load(name)
    assert cfg.optim_wrapper.lower.optimizer == dict(type='AdamW', lr=5e-3, betas=(0.9, 0.999), weight_decay=0.1)
    assert cfg.optim_wrapper.upper.optimizer == dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.1)
    assert cfg.train_cfg.max_epochs == 100 and cfg.train_dataloader.batch_size == 1
    for level in ('lower', 'upper'):
        assert cfg.param_scheduler[level] == [dict(type='PolyLR', power=0.9, eta_min=0.0, begin=0, end=100,
                                                   by_epoch=True, convert_to_iter_based=True)]
    head = cfg.model.decode_head
    assert head.loss_decode == [
        dict(type='CrossEntropyLoss', use_sigmoid=False, avg_non_ignore=True, loss_weight=0.2),  # 1 - lambda
        dict(type='ClassAveragedDiceLoss', loss_weight=0.8)]  # lambda
    assert head.alpha == 0.7 and head.lora_rank == 4 and head.get('token_layout', 'sam') == 'sam'
    assert cfg.train_cfg.val_on == 'd2' and cfg.default_hooks.checkpoint.save_best == 'mDice'
    assert cfg.model.train_cfg.get('hvp', 'exact') == 'exact'
