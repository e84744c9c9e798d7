"""The decoder head against segment-anything's MaskDecoder and the paper's eq. 9-12."""

import pytest
import torch
from segment_anything.modeling import MaskDecoder, TwoWayTransformer

from mmseg_amsam.models.decode_heads import CalibratedMaskDecoder, LoRALinear, MaskCalibration


def make_head(calibration='none', alpha=0.7, num_classes=2, lora_rank=4, seed=0):
    torch.manual_seed(seed)
    return CalibratedMaskDecoder(num_classes=num_classes, calibration=calibration, alpha=alpha, lora_rank=lora_rank,
                                 img_size=128)


def inputs(batch=1, tokens=2, seed=1):
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(batch, 256, 8, 8, generator=g)
    pe = torch.randn(1, 256, 8, 8, generator=g)
    sparse = torch.randn(batch, tokens, 256, generator=g)
    dense = torch.randn(batch, 256, 8, 8, generator=g)
    return emb, pe, sparse, dense


def sam_decoder_with(head):
    """segment-anything's own MaskDecoder carrying the head's base weights (LoRA folded out, B = 0)."""
    ref = MaskDecoder(num_multimask_outputs=head.num_classes, transformer_dim=256,
                      transformer=TwoWayTransformer(depth=2, embedding_dim=256, mlp_dim=2048, num_heads=8))
    state = {k.replace('.base.', '.'): v for k, v in head.decoder.state_dict().items() if 'lora_' not in k}
    ref.load_state_dict(state)
    return ref.eval()


def test_untrained_head_is_sam_decoder_bit_for_bit():
    head = make_head('none').eval()
    ref = sam_decoder_with(head)
    emb, pe, sparse, dense = inputs()
    with torch.no_grad():
        ours, iou = head(emb, pe, sparse, dense)
        theirs, iou_ref = ref(emb, pe, sparse, dense, multimask_output=True)
    assert ours.shape == (1, 2, 32, 32)
    assert torch.equal(ours, theirs)
    assert torch.equal(iou, iou_ref)


def test_lora_on_q_and_v_of_every_attention():
    head = make_head()
    loras = [n for n, m in head.decoder.transformer.named_modules() if isinstance(m, LoRALinear)]
    # 2 blocks x (self-attn, token->image, image->token) + final token->image attention = 7 attentions, q and v each
    assert len(loras) == 14 == head.num_lora_layers
    assert all(n.endswith(('q_proj', 'v_proj')) for n in loras)
    assert not any(n.endswith(('k_proj', 'out_proj')) for n in loras)


def test_only_lora_and_decoder_parts_train():
    head = make_head('learned')
    trainable = {n for n, p in head.named_parameters() if p.requires_grad}
    for name in trainable:
        assert ('lora_' in name or name.startswith(('decoder.output_upscaling', 'decoder.output_hypernetworks_mlps',
                                                    'decoder.mask_tokens', 'decoder.iou_token',
                                                    'calibration.channel_weights'))), name
    frozen = {n for n, p in head.named_parameters() if not p.requires_grad}
    assert any('transformer.layers.0.self_attn.q_proj.base.weight' in n for n in frozen)
    assert any('transformer.layers.0.mlp' in n for n in frozen)
    assert 'calibration.channel_weights' in trainable
    assert 'decoder.iou_token.weight' in trainable  # it reaches the mask through token self-attention (as BLO-SAM)
    assert 'decoder.output_hypernetworks_mlps.1.layers.0.weight' in trainable
    assert not any(n.startswith('decoder.output_hypernetworks_mlps.0.') for n in trainable)  # output unused


def test_lora_gradients_reach_b_first():
    head = make_head('sample')
    emb, pe, sparse, dense = inputs()
    out, _ = head(emb, pe, sparse, dense)
    out.square().mean().backward()
    lora = head.decoder.transformer.layers[0].self_attn.q_proj
    assert lora.lora_B.grad.abs().sum() > 0  # dL/dB = g (A x)^T is non-zero
    assert torch.count_nonzero(lora.lora_A.grad) == 0  # dL/dA = B^T g x^T = 0 while B = 0
    assert lora.base.weight.grad is None


def eq9_to_11_literal(upscaled, hyper, over_batch):
    """Paper eq. 9-11 written out: split channels, Hadamard products, concatenate, average."""
    b, c, h, w = upscaled.shape
    n = hyper.shape[1]
    rs = []
    for i in range(c):
        u_hat = upscaled[:, i:i + 1].repeat(1, n, 1, 1)  # U_i repeated -> (b, n, h, w)
        h_hat = hyper[:, :, i].reshape(b, n, 1, 1)  # H_i reshaped -> (b, n, 1, 1)
        rs.append(u_hat * h_hat)  # eq. 9
    r = torch.cat(rs, dim=0)  # eq. 10: ((b x c), n, h, w), channel-major as Concat(R_1..R_c)
    if over_batch:
        return r.mean(dim=0, keepdim=True).repeat(b, 1, 1, 1)  # eq. 11 + repeat to b
    return torch.stack(rs, dim=1).mean(dim=1)  # per image


@pytest.mark.parametrize('alpha', [0.7, 0.3])
def test_sample_mode_equals_literal_eq_at_batch_1(alpha):
    g = torch.Generator().manual_seed(0)
    upscaled, hyper = torch.randn(1, 32, 16, 16, generator=g), torch.randn(1, 3, 32, generator=g)
    m_orig = (hyper @ upscaled.view(1, 32, -1)).view(1, 3, 16, 16)
    expected = alpha * m_orig + (1 - alpha) * eq9_to_11_literal(upscaled, hyper, over_batch=True)  # eq. 12
    got = MaskCalibration(32, 'sample', alpha)(upscaled, hyper)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    # and the closed form stated in the docstring: (alpha + (1 - alpha) / c) * M_orig
    torch.testing.assert_close(got, (alpha + (1 - alpha) / 32) * m_orig, rtol=1e-5, atol=1e-5)


def test_batch_mode_equals_eq_11_and_mixes_images():
    g = torch.Generator().manual_seed(0)
    upscaled, hyper = torch.randn(3, 32, 16, 16, generator=g), torch.randn(3, 3, 32, generator=g)
    m_orig = (hyper @ upscaled.view(3, 32, -1)).view(3, 3, 16, 16)
    expected = 0.7 * m_orig + 0.3 * eq9_to_11_literal(upscaled, hyper, over_batch=True)
    got = MaskCalibration(32, 'batch', 0.7)(upscaled, hyper)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    alone = MaskCalibration(32, 'batch', 0.7)(upscaled[:1], hyper[:1])
    assert not torch.allclose(alone, got[:1], atol=1e-3)  # depends on the other images
    sample = MaskCalibration(32, 'sample', 0.7)
    torch.testing.assert_close(sample(upscaled[:1], hyper[:1]), sample(upscaled, hyper)[:1])
    torch.testing.assert_close(sample(upscaled, hyper),
                               0.7 * m_orig + 0.3 * eq9_to_11_literal(upscaled, hyper, over_batch=False))


def test_alpha_one_and_learned_init():
    head_none, head_a1 = make_head('none'), make_head('sample', alpha=1.0)
    head_learned, head_sample = make_head('learned'), make_head('sample')
    emb, pe, sparse, dense = inputs(batch=2)
    with torch.no_grad():
        torch.testing.assert_close(head_a1(emb, pe, sparse, dense)[0], head_none(emb, pe, sparse, dense)[0])
        torch.testing.assert_close(head_learned(emb, pe, sparse, dense)[0], head_sample(emb, pe, sparse, dense)[0],
                                   rtol=1e-5, atol=1e-5)
        # calibration changes the logits (scale alpha + (1 - alpha)/c = 0.709375 at c = 32)
        ratio = head_sample(emb, pe, sparse, dense)[0] / head_none(emb, pe, sparse, dense)[0]
        torch.testing.assert_close(ratio, torch.full_like(ratio, 0.7 + 0.3 / 32), rtol=1e-4, atol=1e-4)


def test_no_box_tokens_and_loss_resolution():
    head = make_head('sample')
    emb, pe, _, dense = inputs(batch=2)
    out, _ = head(emb, pe, torch.empty(2, 0, 256), dense)
    assert out.shape == (2, 2, 32, 32)
    assert head.low_res_size == (32, 32)
    with pytest.raises(ValueError, match='calibration'):
        CalibratedMaskDecoder(calibration='mean')


def test_single_mask_output_is_sams_token_0():
    torch.manual_seed(0)
    head = CalibratedMaskDecoder(num_classes=1, calibration='none', img_size=128, mask_output='single').eval()
    ref = sam_decoder_with(head)
    emb, pe, sparse, dense = inputs()
    with torch.no_grad():
        ours, _ = head(emb, pe, sparse, dense)
        theirs, _ = ref(emb, pe, sparse, dense, multimask_output=False)
    assert torch.equal(ours, theirs)
    with pytest.raises(ValueError, match='single'):
        CalibratedMaskDecoder(num_classes=2, mask_output='single')
