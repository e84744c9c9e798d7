"""Issue 10: trainable decoder tensors, batch independence, SAMed's encoder LoRA, one image size, token layouts."""
import copy
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from segment_anything.modeling import MaskDecoder, TwoWayTransformer

from cfg_helpers import ROOT, model_cfg, shrink
from mmseg_amsam.models.decode_heads import CalibratedMaskDecoder, LoRALinear, LoRAQKV
from mmseg_amsam.models.decode_heads.calibrated_mask_decoder import FROZEN_BY_DESIGN


def head_inputs(batch=2, tokens=2, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, 256, 8, 8, generator=g), torch.randn(1, 256, 8, 8, generator=g),
            torch.randn(batch, tokens, 256, generator=g), torch.randn(batch, 256, 8, 8, generator=g))


# ---------------------------------------------------------------- point 1: what trains in the decoder
@pytest.mark.parametrize('layout', ['sam', 'blosam'])
def test_every_decoder_tensor_that_gets_a_gradient_trains_unless_documented(layout):
    torch.manual_seed(0)
    head = CalibratedMaskDecoder(num_classes=2, img_size=128, calibration='learned', token_layout=layout)
    for m in head.modules():
        if isinstance(m, LoRALinear):  # as after a few steps: with B = 0, A gets exactly no gradient
            torch.nn.init.normal_(m.lora_B, std=0.02)
    trainable = {n for n, p in head.named_parameters() if p.requires_grad}
    for p in head.parameters():
        p.requires_grad_(True)
    logits, _ = head(*head_inputs())
    target = torch.zeros(2, 32, 32, dtype=torch.long)
    target[:, 8:20, 4:30] = 1
    F.cross_entropy(logits, target).backward()
    with_grad = {n for n, p in head.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    by_design = {n for n in with_grad if n.startswith(tuple(FROZEN_BY_DESIGN)) and 'lora_' not in n}
    assert with_grad - by_design == trainable  # and every trainable tensor does get a gradient (DDP needs it)
    assert 'decoder.iou_token.weight' in trainable
    assert not any(n.startswith('decoder.iou_prediction_head.') for n in trainable | with_grad)


# ---------------------------------------------------------------- point 8: BLO-SAM's token layout
def test_blosam_token_layout_is_sam_decoder_with_two_tokens_outputs_0_and_1():
    torch.manual_seed(0)
    head = CalibratedMaskDecoder(num_classes=2, img_size=128, calibration='none', token_layout='blosam').eval()
    assert head.decoder.num_mask_tokens == 2
    ref = MaskDecoder(num_multimask_outputs=1, transformer_dim=256,
                      transformer=TwoWayTransformer(depth=2, embedding_dim=256, mlp_dim=2048, num_heads=8)).eval()
    ref.load_state_dict({k.replace('.base.', '.'): v for k, v in head.decoder.state_dict().items() if 'lora_' not in k})
    emb, pe, sparse, dense = head_inputs(batch=1)
    with torch.no_grad():
        ours, iou = head(emb, pe, sparse, dense)
        theirs, iou_ref = ref.predict_masks(emb, pe, sparse, dense)  # every token's mask: 0 and 1
    assert torch.equal(ours, theirs) and torch.equal(iou, iou_ref)
    trainable = {n for n, p in head.named_parameters() if p.requires_grad}
    assert 'decoder.output_hypernetworks_mlps.0.layers.0.weight' in trainable  # token 0 is a class here
    with pytest.raises(ValueError, match='token_layout'):
        CalibratedMaskDecoder(token_layout='samed')


# ---------------------------------------------------------------- point 3: batch composition
def samples_with(masks, size=128):
    out = []
    for fg in masks:
        s = SegDataSample(metainfo=dict(ori_shape=(size, size), img_shape=(size, size), pad_shape=(size, size),
                                        padding_size=[0, 0, 0, 0]))
        gt = torch.zeros(1, size, size, dtype=torch.long)
        if fg:
            gt[0, 20:90, 30:100] = 1
        s.gt_sem_seg = PixelData(data=gt)
        out.append(s)
    return out


@pytest.mark.parametrize('prompter', [None, dict(type='MaskBoxPrompter', fallback='image'),
                                      dict(type='MaskBoxPrompter', fallback='none'),
                                      dict(conf=1.0, fallback='none')])  # the tiny YOLO: finds nothing at conf 1
def test_an_images_logits_do_not_depend_on_its_batch(prompter):
    torch.manual_seed(0)
    cfg = model_cfg()
    cfg.prompter = prompter if prompter is None or 'type' in prompter else dict(cfg.prompter, **prompter)  # replace
    model = MODELS.build(cfg).eval()
    with torch.no_grad():
        model.learnable_prompt.dense_embed.add_(0.5)  # a trained prompt
        if model.learnable_prompt.box_residual is not None:
            model.learnable_prompt.box_residual.normal_()
    g = torch.Generator().manual_seed(0)
    inputs = torch.randn(3, 3, 128, 128, generator=g)
    samples = samples_with([True, False, True])  # the middle image has no box under fallback='none'
    with torch.no_grad():
        together = model.decode(inputs, copy.deepcopy(samples))
        for i in range(3):
            alone = model.decode(inputs[i:i + 1], copy.deepcopy(samples[i:i + 1]))
            torch.testing.assert_close(together[i:i + 1], alone, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- point 4: SAMed
def samed_model():
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'samed_isic_4shot.py'))
    shrink(cfg)
    cfg.model.sam_checkpoint = None
    cfg.model.backbone.arch = 'tiny'
    torch.manual_seed(0)
    return cfg, MODELS.build(cfg.model)


def test_samed_config_trains_encoder_lora_decoder_and_default_prompt():
    cfg, model = samed_model()
    assert cfg.model.backbone.lora_rank == 4 and cfg.model.decode_head.lora_rank == 0 and cfg.model.prompter is None
    assert model.encoder_trains and model.embedding_cache is None
    qkv = [m for m in model.backbone.modules() if isinstance(m, LoRAQKV)]
    assert len(qkv) == 2 == model.backbone.num_lora_layers  # one per block of the tiny encoder
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert {n for n in trainable if n.startswith('backbone.')} == {
        f'backbone.encoder.blocks.{i}.attn.qkv.lora_{m}_{t}' for i in range(2) for m in 'AB' for t in 'qv'}
    assert 'decode_head.decoder.transformer.layers.0.self_attn.q_proj.weight' in trainable  # decoder fine-tuned
    assert 'learnable_prompt.dense_embed' in trainable and 'learnable_prompt.box_residual' not in trainable
    g = torch.Generator().manual_seed(0)
    inputs = torch.randn(2, 3, 128, 128, generator=g)
    samples = samples_with([True, True])
    frozen = model.frozen_features(inputs, samples)
    assert frozen['feats'].requires_grad  # gradients reach the encoder LoRA
    losses = model.loss_from(frozen, samples)
    model.parse_losses(losses)[0].backward()
    for m in qkv:
        assert m.lora_B_q.grad.abs().sum() > 0 and m.lora_B_v.grad.abs().sum() > 0
        assert m.base.weight.grad is None


def test_encoder_lora_starts_as_the_frozen_encoder_and_adapts_q_and_v_only():
    torch.manual_seed(0)
    base = torch.nn.Linear(8, 24)
    lora = LoRAQKV(copy.deepcopy(base), rank=2)
    x = torch.randn(3, 8)
    assert torch.equal(lora(x), base(x))
    with torch.no_grad():
        lora.lora_B_q.normal_()
        lora.lora_B_v.normal_()
    out, ref = lora(x), base(x)
    torch.testing.assert_close(out[:, :8], ref[:, :8] + x @ (lora.lora_B_q @ lora.lora_A_q).t())
    assert torch.equal(out[:, 8:16], ref[:, 8:16])  # k untouched
    torch.testing.assert_close(out[:, 16:], ref[:, 16:] + x @ (lora.lora_B_v @ lora.lora_A_v).t())


def test_samed_single_level_step_moves_the_encoder_lora():
    _, model = samed_model()
    ow = OptimWrapper(torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-3))
    b_q = model.backbone.encoder.blocks[0].attn.qkv.lora_B_q
    before = b_q.detach().clone()
    data = dict(inputs=[(torch.rand(3, 128, 128) * 255).to(torch.uint8)], data_samples=samples_with([True]))
    model.train_step(data, ow)
    assert not torch.equal(b_q.detach(), before)


# ---------------------------------------------------------------- point 7: one image size
def test_one_image_size_or_one_clear_error():
    with pytest.raises(ValueError, match=r'data_preprocessor.size=\(256, 256\) but model.img_size=128'):
        cfg = model_cfg()
        cfg.data_preprocessor.size = (256, 256)
        MODELS.build(cfg)
    with pytest.raises(ValueError, match='model.decode_head.img_size=256 but model.img_size=128'):
        MODELS.build(model_cfg(decode_head=dict(model_cfg().decode_head, img_size=256)))
    model = MODELS.build(model_cfg(prompter=None))
    for shape in ((1, 3, 128, 96), (1, 3, 256, 256)):  # non-square, or the pipeline resized to another size
        with pytest.raises(ValueError, match=r'Resize scale .* \(128, 128\)'):
            model.frozen_features(torch.zeros(shape), samples_with([True]))
