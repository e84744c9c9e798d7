"""Loading official-layout SAM checkpoints (1024 px) into the 256/128 px model, and the errors on bad files."""
from functools import partial

import pytest
import torch
import torch.nn.functional as F
from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer
from torch import nn

from mmseg_amsam.models.backbones import SAMImageEncoder
from mmseg_amsam.models.decode_heads import CalibratedMaskDecoder
from mmseg_amsam.models.prompters import SAMPromptEncoder
from mmseg_amsam.utils.sam_checkpoint import CheckpointError


def tiny_sam_1024():
    """A SAM in segment-anything's own layout at 1024 px (tiny encoder dims to stay fast)."""
    torch.manual_seed(0)
    encoder = ImageEncoderViT(img_size=1024, patch_size=16, embed_dim=64, depth=2, num_heads=2, mlp_ratio=4,
                              out_chans=256, qkv_bias=True, norm_layer=partial(nn.LayerNorm, eps=1e-6),
                              use_rel_pos=True, global_attn_indexes=(1, ), window_size=4)
    with torch.no_grad():
        for p in encoder.parameters():
            p.normal_()
    prompt = PromptEncoder(embed_dim=256, image_embedding_size=(64, 64), input_image_size=(1024, 1024),
                           mask_in_chans=16)
    decoder = MaskDecoder(num_multimask_outputs=3, transformer_dim=256,
                          transformer=TwoWayTransformer(depth=2, embedding_dim=256, mlp_dim=2048, num_heads=8))
    return Sam(image_encoder=encoder, prompt_encoder=prompt, mask_decoder=decoder)


@pytest.fixture(scope='module')
def sam_ckpt(tmp_path_factory):
    sam = tiny_sam_1024()
    path = tmp_path_factory.mktemp('ckpt') / 'sam_tiny_1024.pth'
    torch.save(sam.state_dict(), path)
    return str(path), sam.state_dict()


def test_encoder_loads_and_interpolates(sam_ckpt):
    path, state = sam_ckpt
    enc = SAMImageEncoder(arch='tiny', img_size=256, checkpoint=path)
    own = enc.encoder.state_dict()
    assert own['pos_embed'].shape == (1, 16, 16, 64)
    expected = F.interpolate(state['image_encoder.pos_embed'].permute(0, 3, 1, 2), size=(16, 16), mode='bicubic',
                             align_corners=False).permute(0, 2, 3, 1)
    torch.testing.assert_close(own['pos_embed'], expected)
    # global block: 2*64-1 = 127 rows -> 2*16-1 = 31; windowed block keeps 2*4-1 = 7 rows untouched
    assert state['image_encoder.blocks.1.attn.rel_pos_h'].shape[0] == 127
    assert own['blocks.1.attn.rel_pos_h'].shape == (31, 32)
    rel = F.interpolate(state['image_encoder.blocks.1.attn.rel_pos_h'].t()[None], size=31, mode='linear',
                        align_corners=False)[0].t()
    torch.testing.assert_close(own['blocks.1.attn.rel_pos_h'], rel)
    assert torch.equal(own['blocks.0.attn.rel_pos_w'], state['image_encoder.blocks.0.attn.rel_pos_w'])
    assert torch.equal(own['blocks.0.mlp.lin1.weight'], state['image_encoder.blocks.0.mlp.lin1.weight'])
    assert all(not p.requires_grad for p in enc.parameters())
    enc.train()
    assert not enc.encoder.training  # frozen stays in eval mode
    assert enc(torch.zeros(1, 3, 256, 256)).shape == (1, 256, 16, 16)


def test_prompt_encoder_and_decoder_load(sam_ckpt):
    path, state = sam_ckpt
    pe = SAMPromptEncoder(img_size=256, checkpoint=path)
    assert torch.equal(pe.no_mask_embed, state['prompt_encoder.no_mask_embed.weight'])
    head = CalibratedMaskDecoder(num_classes=2, img_size=256, checkpoint=path)  # 3 tokens from SAM's 4
    own = head.decoder.state_dict()
    assert torch.equal(own['mask_tokens.weight'], state['mask_decoder.mask_tokens.weight'][:3])
    assert torch.equal(own['output_hypernetworks_mlps.2.layers.0.weight'],
                       state['mask_decoder.output_hypernetworks_mlps.2.layers.0.weight'])
    assert torch.equal(own['transformer.layers.0.self_attn.q_proj.base.weight'],
                       state['mask_decoder.transformer.layers.0.self_attn.q_proj.weight'])
    big = CalibratedMaskDecoder(num_classes=5, img_size=256, checkpoint=path)  # 6 tokens: 4 loaded, 2 random
    assert torch.equal(big.decoder.state_dict()['mask_tokens.weight'][:4], state['mask_decoder.mask_tokens.weight'])


def test_bad_checkpoints_give_one_clear_error(sam_ckpt, tmp_path):
    path, state = sam_ckpt
    with pytest.raises(CheckpointError, match='not found.*sam_vit_b_01ec64'):
        SAMImageEncoder(arch='tiny', checkpoint=str(tmp_path / 'nope.pth'))
    broken = dict(state)
    broken.pop('image_encoder.blocks.0.mlp.lin1.weight')
    broken['image_encoder.extra.weight'] = torch.zeros(1)
    torch.save(broken, tmp_path / 'broken.pth')
    with pytest.raises(CheckpointError, match=r'missing keys.*blocks\.0\.mlp\.lin1\.weight.*unexpected keys'):
        SAMImageEncoder(arch='tiny', checkpoint=str(tmp_path / 'broken.pth'))
    with pytest.raises(CheckpointError, match='shape mismatches.*arch'):  # tiny weights into a vit_b
        SAMImageEncoder(arch='vit_b', checkpoint=path)
    raw = open(path, 'rb').read()
    (tmp_path / 'truncated.pth').write_bytes(raw[:len(raw) // 2])
    with pytest.raises(CheckpointError, match='truncated, corrupt'):
        SAMImageEncoder(arch='tiny', checkpoint=str(tmp_path / 'truncated.pth'))
    torch.save({'backbone.weight': torch.zeros(1)}, tmp_path / 'other.pth')
    with pytest.raises(CheckpointError, match='not a SAM checkpoint'):
        SAMPromptEncoder(checkpoint=str(tmp_path / 'other.pth'))


class _WritesMarker:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, 'w'))


def test_a_sam_file_that_would_run_code_is_one_line_that_never_advises_weights_only_false(tmp_path):
    from mmseg_amsam.utils.sam2_checkpoint import load_sam2_state_dict
    marker = tmp_path / 'marker'
    bad = tmp_path / 'sam_vit_b_01ec64.pth'
    torch.save({'image_encoder.x': _WritesMarker(marker)}, bad)
    for load in (lambda: SAMImageEncoder(arch='tiny', checkpoint=str(bad)),
                 lambda: load_sam2_state_dict(str(bad), ['image_encoder.'])):
        with pytest.raises(CheckpointError) as err:
            load()
        message = str(err.value)
        assert message.startswith(f"Cannot read SAM{' 2' if 'SAM 2' in message[:20] else ''} checkpoint '{bad}' "
                                  '(UnpicklingError: Unsupported global: GLOBAL io.open was not an allowed global')
        assert 'nothing in it was run' in message
        assert '\n' not in message and '\x1b' not in message
        assert 'weights_only' not in message and 'will likely succeed' not in message
        assert 'add_safe_globals' not in message
        assert not marker.exists()
