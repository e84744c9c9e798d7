"""The AM-SAM segmentor: which parameters train, loss, prediction at the original size, batch independence."""
import copy

import torch
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from cfg_helpers import model_cfg


def build(**overrides):
    torch.manual_seed(0)
    return MODELS.build(model_cfg(**overrides))


def batch(n=2, ori=(60, 90), size=128, seed=0):
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randn(n, 3, size, size, generator=g)
    samples = []
    for i in range(n):
        s = SegDataSample(metainfo=dict(ori_shape=ori, img_shape=(size, size), pad_shape=(size, size),
                                        padding_size=[0, 0, 0, 0]))
        gt = torch.zeros(1, size, size, dtype=torch.long)
        gt[0, 20 + 10 * i:80, 30:100] = 1
        s.gt_sem_seg = PixelData(data=gt)
        samples.append(s)
    return inputs, samples


def test_trainable_parameters_are_lora_decoder_parts_and_prompt():
    model = build()
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert names and all(n.startswith(('decode_head.', 'learnable_prompt.')) for n in names)
    assert not any(p.requires_grad for p in model.backbone.parameters())
    assert not any(p.requires_grad for p in model.prompt_encoder.parameters())
    assert {'learnable_prompt.dense_embed', 'learnable_prompt.box_residual'} <= set(names)
    assert torch.equal(model.learnable_prompt.dense_embed, model.prompt_encoder.no_mask_embed)


def test_loss_is_eq5_on_low_res_logits_and_backpropagates():
    model = build()
    inputs, samples = batch()
    losses = model.loss(inputs, samples)
    assert set(losses) >= {'decode.loss_ce', 'decode.loss_dice', 'decode.acc_seg'}
    # eq. 5: (1 - lambda) CE + lambda Dice with lambda = 0.8 -> the loss weights of the two terms
    ce_cfg, dice_cfg = model_cfg().decode_head.loss_decode
    assert (ce_cfg.loss_weight, dice_cfg.loss_weight) == (0.2, 0.8)
    logits = model._forward(inputs, samples)
    assert logits.shape == (2, 2, 32, 32)  # img_size / 4
    total = losses['decode.loss_ce'] + losses['decode.loss_dice']
    total.backward()
    lora_b = model.decode_head.decoder.transformer.layers[0].self_attn.q_proj.lora_B
    assert lora_b.grad is not None and lora_b.grad.abs().sum() > 0
    assert model.learnable_prompt.dense_embed.grad.abs().sum() > 0


def test_predict_at_original_size_and_independent_of_batch():
    model = build().eval()
    inputs, samples = batch(n=3)
    with torch.no_grad():
        together = model.predict(inputs, copy.deepcopy(samples))
        alone = model.predict(inputs[1:2], copy.deepcopy(samples[1:2]))
    assert together[0].pred_sem_seg.data.shape == (1, 60, 90)
    assert together[0].seg_logits.data.shape == (2, 60, 90)
    assert set(together[0].pred_sem_seg.data.unique().tolist()) <= {0, 1}
    torch.testing.assert_close(together[1].seg_logits.data, alone[0].seg_logits.data, rtol=1e-4, atol=1e-4)


def test_batch_calibration_depends_on_the_batch():
    model = build(decode_head=dict(calibration='batch')).eval()
    inputs, samples = batch(n=3)
    with torch.no_grad():
        together = model._forward(inputs, samples)
        alone = model._forward(inputs[1:2], samples[1:2])
    assert not torch.allclose(together[1:2], alone, atol=1e-4)


def test_no_prompter_is_blo_sam_default_prompt():
    model = build(prompter=None)
    inputs, samples = batch()
    frozen = model.frozen_features(inputs, samples)
    assert frozen['sparse'].shape == (2, 0, 256) and frozen['has_box'] is None
    assert model._forward(inputs, samples).shape == (2, 2, 32, 32)


def test_predict_records_the_prompt_box_it_used():
    model = build(prompter=dict(conf=1.0, fallback='image')).eval()  # nothing reaches conf 1: whole-image box
    inputs, samples = batch(n=2)
    with torch.no_grad():
        out = model.predict(inputs, samples)
    # a fallback is recorded as such (SAM got the whole-image box, but nothing was detected): no box, fallback True
    assert [(s.metainfo['prompt_box'], s.metainfo['prompt_fallback']) for s in out] == [(None, True)] * 2
    none = build(prompter=dict(conf=1.0, fallback='none'))
    none.eval()
    with torch.no_grad():
        out = none.predict(*batch(n=1))
    assert out[0].metainfo['prompt_box'] is None
    plain = build(prompter=None).eval()
    with torch.no_grad():
        assert 'prompt_box' not in plain.predict(*batch(n=1))[0].metainfo
