"""Trainable-only checkpoints (TrainableOnlyCheckpointHook) and the num_classes check (NumClassesCheckHook)."""
import copy
import glob
import os
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.runner import Runner

from cfg_helpers import demo_cfg
from mmseg_amsam.apis import AMSAMInferencer
from mmseg_amsam.engine import FrozenWeightsError, load_trained_checkpoint
from mmseg_amsam.engine import build_model


def random_frozen(cfg):
    """The demo without its toy weights: random frozen parts, which only the build seed determines (the case the
    checkpoint's frozen-weights record must catch)."""
    cfg.model.sam_checkpoint = None
    cfg.model.prompter.model = 'yolov8n.yaml'
    return cfg


@pytest.fixture(scope='module')
def trained(demo_root, tmp_path_factory):
    """One epoch of the demo; returns the runner, its config and the saved (trainable-only) checkpoints."""
    work = tmp_path_factory.mktemp('small_ckpt')
    cfg = random_frozen(demo_cfg(demo_root, work / 'work', max_epochs=1, val_interval=1))
    assert [h['type'] for h in cfg.custom_hooks][:2] == ['TrainableOnlyCheckpointHook', 'NumClassesCheckHook']
    runner = Runner.from_cfg(cfg)
    runner.train()
    last = str(work / 'work' / 'epoch_1.pth')
    best = glob.glob(str(work / 'work' / 'best_mDice_*.pth'))[0]
    # the same checkpoint as mmengine saves it without the hook: every tensor of the model
    full_ckpt = torch.load(last, map_location='cpu', weights_only=False)
    full_ckpt['state_dict'] = {k: v.cpu() for k, v in runner.model.state_dict().items()}
    del full_ckpt['meta']['frozen_from']
    full = str(work / 'full.pth')
    torch.save(full_ckpt, full)
    return runner, cfg, last, best, full


def test_checkpoint_holds_only_trained_weights_and_the_frozen_reference(trained):
    runner, cfg, last, best, full = trained
    ckpt = torch.load(last, map_location='cpu', weights_only=False)
    trainable = {n for n, p in runner.model.named_parameters() if p.requires_grad}
    assert set(ckpt['state_dict']) == trainable
    assert not any(k.startswith(('backbone.', 'prompt_encoder.')) for k in ckpt['state_dict'])
    assert 'decode_head.decoder.transformer.layers.0.self_attn.q_proj.base.weight' not in ckpt['state_dict']
    assert 'decode_head.decoder.transformer.layers.0.self_attn.q_proj.lora_A' in ckpt['state_dict']
    frozen = ckpt['meta']['frozen_from']
    assert frozen['sam_checkpoint'] is None and frozen['yolo'] == 'yolov8n.yaml' and frozen['seed'] == 0
    assert set(frozen['digests']) == set(runner.model.state_dict()) - trainable
    assert 'optimizer' in ckpt  # resumable
    size_small, size_full = os.path.getsize(last), os.path.getsize(full)
    assert size_small < 0.4 * size_full, (size_small, size_full)
    assert os.path.getsize(best) < 0.2 * size_full  # no optimizer state in best_*.pth


def test_loading_into_a_fresh_model_restores_it_exactly(trained, demo_root):
    runner, cfg, last, best, full = trained
    small = AMSAMInferencer(cfg, last)
    reference = runner.model.state_dict()
    restored = small.model.state_dict()
    assert set(restored) == set(reference)
    for key, value in reference.items():
        assert torch.equal(restored[key], value.cpu()), key
    images = sorted(glob.glob(osp.join(demo_root, 'img_dir', 'test', '*.png')))
    full_pred = AMSAMInferencer(cfg, full)(images)
    for a, b in zip(small(images), full_pred):
        assert np.array_equal(a.mask, b.mask) and np.array_equal(a.probability, b.probability)
        assert a.box == b.box


def test_runner_load_from_small_checkpoint_restores_the_model_without_warnings(trained, demo_root, tmp_path):
    runner, _, last, _, _ = trained
    cfg = random_frozen(demo_cfg(demo_root, tmp_path / 'test'))
    cfg.load_from = last  # what tools/test.py does
    tester = Runner.from_cfg(cfg)
    metrics = tester.test()
    assert metrics['mDice'] == runner.test()['mDice']  # what the trained model in memory scores on the same images
    reference = runner.model.state_dict()
    for key, value in tester.model.state_dict().items():
        assert torch.equal(value, reference[key]), key
    log_files = [h.baseFilename for h in tester.logger.handlers if hasattr(h, 'baseFilename')]
    log = ''.join(open(f).read() for f in log_files)
    assert 'Load checkpoint from' in log
    assert 'missing keys' not in log and 'unexpected key' not in log


def test_mismatching_frozen_weights_or_missing_trained_weights_are_refused(trained):
    runner, cfg, last, _, _ = trained
    other_seed = build_model(cfg.model, seed=1)  # random frozen parts built differently
    with pytest.raises(FrozenWeightsError, match='randomness.seed') as err:
        load_trained_checkpoint(other_seed, last)
    assert 'backbone' in str(err.value)
    ckpt = torch.load(last, map_location='cpu', weights_only=False)
    damaged = copy.deepcopy(ckpt)
    del damaged['state_dict']['learnable_prompt.dense_embed']
    model = build_model(cfg.model, seed=0)
    with pytest.raises(FrozenWeightsError, match='lacks trained weights'):
        load_trained_checkpoint(model, damaged)  # refused before anything is loaded
    load_trained_checkpoint(model, ckpt)
    assert torch.equal(model.learnable_prompt.dense_embed, runner.model.learnable_prompt.dense_embed)


def test_num_classes_disagreeing_with_the_dataset_fails_before_training(demo_root, tmp_path):
    cfg = demo_cfg(demo_root, tmp_path, max_epochs=1)
    cfg.model.decode_head.num_classes = 3
    runner = Runner.from_cfg(cfg)
    with pytest.raises(ValueError, match=r'model\.decode_head\.num_classes=2') as err:
        runner.train()
    assert "('background', 'shape')" in str(err.value) and 'train_dataloader' in str(err.value)
    assert not glob.glob(str(tmp_path / '*.pth'))
