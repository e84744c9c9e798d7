"""Tests of the Swin-Unet baseline (mmseg_amsam/models/baselines/, configs/_base_/models/swin_unet.py).

CPU only, tiny models; the whole file runs in well under a minute on 2 cores.
"""
import copy
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmseg_amsam.models.baselines import FinalPatchExpand_X4, PatchExpand, SwinUnetEncoder, SwinUnetHead

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
BASE_CFG = osp.join(REPO, 'configs', '_base_', 'models', 'swin_unet.py')


def tiny_encoder(**kw):
    cfg = dict(embed_dims=24, depths=(1, 1, 1, 1), num_heads=(1, 2, 2, 4), window_size=4, drop_path_rate=0.)
    cfg.update(kw)
    return SwinUnetEncoder(**cfg)


def tiny_head(**kw):
    cfg = dict(in_channels=[24, 48, 96, 192], channels=24, depths=(1, 1, 1, 1), num_heads=(1, 2, 2, 4),
               window_size=4, drop_path_rate=0., num_classes=2)
    cfg.update(kw)
    return SwinUnetHead(**cfg)


def tiny_model_cfg(img=64, window=4):
    """The base config with a tiny Swin-Unet override (embed 24, one block per stage)."""
    from mmengine.config import Config
    cfg = Config.fromfile(BASE_CFG)
    model = copy.deepcopy(cfg.model)  # stays a ConfigDict (mmseg reads test_cfg.mode by attribute)
    model['data_preprocessor']['size'] = (img, img)
    model['backbone'].update(embed_dims=24, depths=(1, 1, 1, 1), num_heads=(1, 2, 2, 4), window_size=window,
                             pretrain_img_size=img, drop_path_rate=0.)
    model['decode_head'].update(in_channels=[24, 48, 96, 192], channels=24, depths=(1, 1, 1, 1),
                                num_heads=(1, 2, 2, 4), window_size=window, drop_path_rate=0.)
    return model


def build_segmentor(cfg):
    """MODELS.build under the mmseg scope (conftest sets it globally too; this keeps the file self-contained)."""
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmseg'):
        return MODELS.build(cfg)


# --------------------------------------------------------------------------- patch expanding layers
def test_patch_expand_shapes_and_rearrangement():
    torch.manual_seed(0)
    pe = PatchExpand(32)
    x = torch.randn(2, 4 * 5, 32)
    y, hw = pe(x, (4, 5))
    assert hw == (8, 10) and y.shape == (2, 80, 16)
    # Pixel rearrangement == einops 'b h w (p1 p2 c) -> b (h p1) (w p2) c' of the expanded tokens.
    pe.norm = torch.nn.Identity()
    y, _ = pe(x, (4, 5))
    e = pe.expand(x).view(2, 4, 5, 2, 2, 16)  # b h w p1 p2 c
    ref = torch.stack([torch.stack([e[:, :, :, p1, p2] for p2 in range(2)], dim=3) for p1 in range(2)], dim=2)
    # ref: b h p1 w p2 c
    torch.testing.assert_close(y, ref.reshape(2, 80, 16))

    fe = FinalPatchExpand_X4(16)
    z, hw = fe(torch.randn(2, 6, 16), (2, 3))
    assert hw == (8, 12) and z.shape == (2, 96, 16)


# --------------------------------------------------------------------------- shapes
@torch.no_grad()
def test_default_swin_unet_shapes_256():
    """Paper configuration: Swin-T widths, depths (2,2,2,2), window 8, 256x256."""
    torch.manual_seed(0)
    enc = SwinUnetEncoder().eval()  # defaults = Swin-Unet's
    head = SwinUnetHead(num_classes=2).eval()
    x = torch.randn(1, 3, 256, 256)
    feats = enc(x)
    assert [tuple(f.shape) for f in feats] == [(1, 96, 64, 64), (1, 192, 32, 32), (1, 384, 16, 16),
                                               (1, 768, 8, 8)]
    logits = head(feats)
    assert logits.shape == (1, 2, 256, 256)
    assert torch.isfinite(logits).all()


@torch.no_grad()
@pytest.mark.parametrize('size', [128, 80])
def test_small_config_shapes(size):
    """Small window/embed config; 80 is not a multiple of 32 (PatchMerging pads, decoder crops to skips)."""
    enc, head = tiny_encoder().eval(), tiny_head().eval()
    feats = enc(torch.randn(2, 3, size, size))
    s = [size // 4, -(-size // 8), -(-size // 16), -(-size // 32)]
    assert [tuple(f.shape) for f in feats] == [(2, 24, s[0], s[0]), (2, 48, s[1], s[1]), (2, 96, s[2], s[2]),
                                               (2, 192, s[3], s[3])]
    assert head(feats).shape == (2, 2, size, size)


@torch.no_grad()
def test_head_accepts_plain_mmseg_swin_transformer():
    """out_mode='stages' (= mmseg SwinTransformer outputs) has the same shapes, so the head accepts both."""
    from mmseg.registry import MODELS
    enc = MODELS.build(dict(type='SwinTransformer', embed_dims=24, depths=(1, 1, 1, 1), num_heads=(1, 2, 2, 4),
                            window_size=4, drop_path_rate=0.))
    enc.eval()  # mmseg's SwinTransformer.train() returns None, so no chaining here
    enc2 = tiny_encoder(out_mode='stages').eval()
    head = tiny_head().eval()
    x = torch.randn(1, 3, 128, 128)
    assert [f.shape for f in enc(x)] == [f.shape for f in enc2(x)]
    assert head(enc(x)).shape == (1, 2, 128, 128)


# --------------------------------------------------------------------------- gradients and skips
def test_backward_reaches_encoder_and_decoder():
    torch.manual_seed(0)
    enc, head = tiny_encoder(), tiny_head()
    enc.init_weights()
    head.init_weights()
    x = torch.randn(2, 3, 64, 64)
    target = torch.randint(0, 2, (2, 64, 64))
    loss = F.cross_entropy(head(enc(x)), target)
    loss.backward()
    for name, module in [('encoder', enc), ('decoder', head)]:
        for pname, p in module.named_parameters():
            assert p.grad is not None, f'{name}.{pname} received no gradient (unused parameter)'
            assert torch.isfinite(p.grad).all(), f'{name}.{pname}'
    groups = {
        'enc.patch_embed': enc.patch_embed, 'enc.stage0': enc.stages[0], 'enc.stage3': enc.stages[3],
        'dec.up_first': head.up_first, 'dec.concat_back_dim': head.concat_back_dim, 'dec.blocks': head.blocks,
        'dec.final_expand': head.final_expand, 'dec.conv_seg': head.conv_seg,
    }
    for name, m in groups.items():
        total = sum(p.grad.abs().sum().item() for p in m.parameters())
        assert total > 0, f'zero gradient in {name}'


@torch.no_grad()
def test_skip_connections_are_used():
    torch.manual_seed(0)
    enc, head = tiny_encoder().eval(), tiny_head().eval()
    enc.init_weights()
    head.init_weights()
    feats = enc(torch.randn(1, 3, 64, 64))
    ref = head(feats)
    for i in range(4):
        perturbed = [f.clone() for f in feats]
        perturbed[i] = perturbed[i] + torch.randn_like(perturbed[i])
        diff = (head(perturbed) - ref).abs().max().item()
        assert diff > 1e-4, f'encoder feature {i} does not influence the logits'


def test_encoder_taps_match_official_definition():
    """Tap 0 = patch-embedding tokens, taps 1/2 = merged stage outputs, tap 3 = normed bottleneck."""
    torch.manual_seed(0)
    enc = tiny_encoder().eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        feats = enc(x)
        tok, hw = enc.patch_embed(x)
        torch.testing.assert_close(feats[0], tok.transpose(1, 2).reshape(1, 24, *hw))
        t1, hw1, _, _ = enc.stages[0](tok, hw)
        torch.testing.assert_close(feats[1], t1.transpose(1, 2).reshape(1, 48, *hw1))
    assert not hasattr(enc, 'norm0') and hasattr(enc, 'norm3')


# --------------------------------------------------------------------------- mmseg EncoderDecoder
def _batch(n, size, seed=0):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(n):
        inputs.append(torch.randint(0, 256, (3, size, size), generator=g, dtype=torch.uint8))
        s = SegDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size)))
        s.gt_sem_seg = PixelData(data=torch.randint(0, 2, (1, size, size), generator=g))
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def test_encoder_decoder_from_base_config_loss_and_predict():
    from mmseg.models.segmentors import EncoderDecoder

    model = build_segmentor(tiny_model_cfg(img=64))
    assert isinstance(model, EncoderDecoder)
    assert isinstance(model.backbone, SwinUnetEncoder) and isinstance(model.decode_head, SwinUnetHead)
    assert model.decode_head.loss_decode[0].loss_weight == 0.2 and model.decode_head.loss_decode[1].loss_weight == 0.8
    model.init_weights()

    model.train()
    data = model.data_preprocessor(_batch(2, 64), training=True)
    losses = model(**data, mode='loss')
    assert set(losses) >= {'decode.loss_ce', 'decode.loss_dice', 'decode.acc_seg'}
    total = losses['decode.loss_ce'] + losses['decode.loss_dice']
    assert torch.isfinite(total) and total.item() > 0
    total.backward()

    model.eval()
    with torch.no_grad():
        data = model.data_preprocessor(_batch(2, 64, seed=1), training=False)
        logits = model(data['inputs'], mode='tensor')
        assert logits.shape == (2, 2, 64, 64)
        preds = model(**data, mode='predict')
    assert len(preds) == 2
    assert preds[0].pred_sem_seg.data.shape == (1, 64, 64)
    assert preds[0].seg_logits.data.shape == (2, 64, 64)


def test_pretrained_field_loads_mmseg_swin_checkpoint(tmp_path):
    """model.pretrained (the config field for the ImageNet Swin-T weights) loads into the encoder."""
    src = tiny_encoder()
    src.init_weights()
    ckpt = tmp_path / 'swin_tiny_mmseg.pth'
    torch.save({'state_dict': src.state_dict()}, ckpt)

    cfg = tiny_model_cfg(img=64)
    assert cfg['pretrained'] is None  # default: random init
    cfg['pretrained'] = str(ckpt)
    model = build_segmentor(cfg)
    model.init_weights()
    for k, v in src.state_dict().items():
        torch.testing.assert_close(model.backbone.state_dict()[k], v, msg=k)


# --------------------------------------------------------------------------- mmengine Runner
def _write_dataset(root, n, size, seed):
    from PIL import Image
    rng = np.random.default_rng(seed)
    for split in ('train', 'val'):
        (root / 'img_dir' / split).mkdir(parents=True)
        (root / 'ann_dir' / split).mkdir(parents=True)
        for i in range(n):
            img = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
            mask = np.zeros((size, size), np.uint8)
            s = int(rng.integers(size // 4, size // 2))
            y, x = rng.integers(0, size - s, 2)
            mask[y:y + s, x:x + s] = 1
            img[mask == 1] = rng.integers(150, 255, (int(mask.sum()), 3), dtype=np.uint8)
            Image.fromarray(img).save(root / 'img_dir' / split / f'{i:03d}.png')
            Image.fromarray(mask).save(root / 'ann_dir' / split / f'{i:03d}.png')


def test_runner_trains_tiny_swin_unet(tmp_path):
    from mmengine.hooks import Hook
    from mmengine.runner import Runner

    size, iters = 64, 12
    data_root = tmp_path / 'data'
    _write_dataset(data_root, n=4, size=size, seed=0)

    class LossRecorder(Hook):
        def __init__(self):
            self.losses, self.before, self.metrics = [], None, None

        def before_train(self, runner):  # after Runner's init_weights()
            self.before = {k: v.detach().clone() for k, v in runner.model.state_dict().items()}

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            self.losses.append(float(outputs['loss'].detach()))

        def after_val_epoch(self, runner, metrics=None):
            self.metrics = metrics

    recorder = LossRecorder()
    metainfo = dict(classes=('background', 'foreground'), palette=[[0, 0, 0], [255, 255, 255]])
    pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'), dict(type='PackSegInputs')]

    def loader(split, shuffle):
        return dict(
            batch_size=2, num_workers=0, persistent_workers=False,
            sampler=dict(type='InfiniteSampler' if shuffle else 'DefaultSampler', shuffle=shuffle),
            dataset=dict(type='BaseSegDataset', data_root=str(data_root), metainfo=metainfo,
                         data_prefix=dict(img_path=f'img_dir/{split}', seg_map_path=f'ann_dir/{split}'),
                         img_suffix='.png', seg_map_suffix='.png', reduce_zero_label=False, pipeline=pipeline))

    runner = Runner(
        model=tiny_model_cfg(img=size),
        work_dir=str(tmp_path / 'work'),
        train_dataloader=loader('train', True),
        val_dataloader=loader('val', False),
        val_evaluator=dict(type='IoUMetric', iou_metrics=['mIoU']),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=iters, val_interval=iters),
        val_cfg=dict(type='ValLoop'),
        optim_wrapper=dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.01)),
        default_hooks=dict(timer=dict(type='IterTimerHook'), logger=dict(type='LoggerHook', interval=4),
                           param_scheduler=dict(type='ParamSchedulerHook'), checkpoint=None,
                           sampler_seed=dict(type='DistSamplerSeedHook')),
        custom_hooks=[recorder],
        default_scope='mmseg',
        randomness=dict(seed=0),
        env_cfg=dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo')),
        launcher='none',
    )
    runner.train()

    before, after = recorder.before, runner.model.state_dict()
    changed = [k for k in before if before[k].is_floating_point() and not torch.equal(before[k], after[k])]
    assert any(k.startswith('backbone.') for k in changed) and any(k.startswith('decode_head.') for k in changed)
    assert len(recorder.losses) == iters and all(np.isfinite(recorder.losses))
    assert np.mean(recorder.losses[-3:]) < np.mean(recorder.losses[:3]), recorder.losses
    # validation ran at the end of training (val_interval == max_iters) with mmseg's IoUMetric
    assert recorder.metrics is not None and 'mIoU' in recorder.metrics, recorder.metrics
    assert recorder.metrics['mIoU'] == runner.val()['mIoU']  # what the trained model scores when validated again
