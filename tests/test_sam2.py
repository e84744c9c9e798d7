"""AM-SAM on SAM 2 / 2.1 (official ``sam2`` package): official checkpoint layout against sam2's own image predictor,
checkpoint errors, LoRA and what trains, bi-level training through mmengine's Runner, tuple embedding cache."""
import copy
import glob
import inspect
import os
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner
from mmseg.registry import MODELS
from omegaconf import OmegaConf
from sam2.build_sam import build_sam2
from sam2.modeling.backbones.hieradet import Hiera
from sam2.modeling.sam.transformer import Attention
from sam2.sam2_image_predictor import SAM2ImagePredictor
from torch import nn

from cfg_helpers import ROOT, demo_cfg, shrink
from mmseg_amsam.engine import BiLevelOptimWrapperConstructor, bilevel_train_step
from mmseg_amsam.models.backbones import SAM2_ARCHS, SAM2ImageEncoder
from mmseg_amsam.models.backbones.embedding_cache import EmbeddingCache
from mmseg_amsam.models.decode_heads import CalibratedSAM2MaskDecoder, LoRALinear
from mmseg_amsam.models.decode_heads.calibrated_mask_decoder import FROZEN_BY_DESIGN
from mmseg_amsam.models.prompters import SAM2PromptEncoder
from mmseg_amsam.utils.sam2_checkpoint import SAM2_FILES
from mmseg_amsam.utils.sam_checkpoint import CheckpointError
from test_bilevel import data_batch

SAM2_CONFIGS = osp.join(osp.dirname(inspect.getfile(SAM2ImagePredictor)), 'configs', 'sam2.1')
BOX = [40.0, 60.0, 200.0, 180.0]


@pytest.fixture(scope='module')
def official(tmp_path_factory):
    """sam2.1_hiera_t built by sam2's own builder (its real dims, at 256 px), every weight randomised, saved in the
    official layout ``{'model': state_dict}``."""
    torch.manual_seed(0)
    model = build_sam2('configs/sam2.1/sam2.1_hiera_t.yaml', ckpt_path=None, device='cpu', mode='eval',
                       hydra_overrides_extra=['++model.image_size=256'], apply_postprocessing=False)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():  # Hiera's position embeddings and no_mem_embed start at (almost) zero
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    path = tmp_path_factory.mktemp('sam2') / 'sam2.1_hiera_tiny.pt'
    torch.save({'model': model.state_dict()}, path)
    return model, str(path)


# ---------------------------------------------------------------- (a) official layout = sam2's own image path
def test_official_checkpoint_gives_sam2_image_predictor_outputs(official):
    model, path = official
    predictor = SAM2ImagePredictor(model)
    predictor._bb_feat_sizes = [(64, 64), (32, 32), (16, 16)]  # its table is for 1024 px
    image = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    predictor.set_image(image)
    _, iou_ref, low_res_ref = predictor.predict(box=np.array(BOX), multimask_output=True, return_logits=True)

    encoder = SAM2ImageEncoder(arch='hiera_t', img_size=256, checkpoint=path)
    feats = encoder(predictor._transforms(image)[None])
    ref = [predictor._features['image_embed'], *predictor._features['high_res_feats']]
    assert [tuple(f.shape) for f in feats] == [(1, 256, 16, 16), (1, 32, 64, 64), (1, 64, 32, 32)]
    for ours, theirs in zip(feats, ref):
        assert (ours - theirs).abs().max().item() <= 1e-5

    prompt = SAM2PromptEncoder(img_size=256, checkpoint=path)
    sparse, dense = prompt(torch.tensor([BOX]), torch.tensor([True]), 1)
    assert sparse.shape == (1, 3, 256)  # the box's two corners and the predictor's padding point
    head = CalibratedSAM2MaskDecoder(num_classes=3, img_size=256, lora_rank=4, calibration='none',
                                     checkpoint=path).eval()  # 'sam' layout: outputs 1..3 = SAM 2's multimask
    with torch.no_grad():
        logits, iou = head(feats, prompt.dense_pe(), sparse, dense)
    assert logits.shape == (1, 3, 64, 64) and logits.abs().max().item() < 32  # the predictor clamps at +-32
    assert np.abs(logits[0].numpy() - low_res_ref).max() <= 1e-5
    assert np.abs(iou[0].numpy() - iou_ref).max() <= 1e-5

    state = {k: v for k, v in model.state_dict().items()}
    two = CalibratedSAM2MaskDecoder(num_classes=2, img_size=256, checkpoint=path)  # 3 of SAM 2's 4 tokens
    own = two.decoder.state_dict()
    assert torch.equal(own['mask_tokens.weight'], state['sam_mask_decoder.mask_tokens.weight'][:3])
    assert torch.equal(own['obj_score_token.weight'], state['sam_mask_decoder.obj_score_token.weight'])
    assert torch.equal(own['transformer.layers.1.cross_attn_image_to_token.v_proj.base.weight'],
                       state['sam_mask_decoder.transformer.layers.1.cross_attn_image_to_token.v_proj.weight'])
    assert not any(k.startswith('conv_s') for k in own)  # they run in the (cached) encoder
    assert torch.equal(encoder.conv_s1.weight, state['sam_mask_decoder.conv_s1.weight'])
    assert torch.equal(encoder.no_mem_embed, state['no_mem_embed'])
    assert torch.equal(prompt.no_mask_embed, state['sam_prompt_encoder.no_mask_embed.weight'])


@pytest.mark.parametrize('arch,yaml', [('hiera_t', 't'), ('hiera_s', 's'), ('hiera_b+', 'b+'), ('hiera_l', 'l')])
def test_arch_table_is_the_official_configs(arch, yaml):
    cfg = OmegaConf.to_container(OmegaConf.load(osp.join(SAM2_CONFIGS, f'sam2.1_hiera_{yaml}.yaml')))['model']
    official = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg['image_encoder']['trunk'].items()
                if k != '_target_'}
    defaults = {k: p.default for k, p in inspect.signature(Hiera).parameters.items()}
    assert {**defaults, **official} == {**defaults, **SAM2_ARCHS[arch]}
    dim = SAM2_ARCHS[arch]['embed_dim']
    assert cfg['image_encoder']['neck']['backbone_channel_list'] == [8 * dim, 4 * dim, 2 * dim, dim]


def test_tiny_encoder_at_1024_px_and_frozen():
    enc = SAM2ImageEncoder(arch='tiny', img_size=1024).train()
    assert not enc.training and not any(p.requires_grad for p in enc.parameters())
    feats = enc(torch.zeros(1, 3, 1024, 1024))
    assert [tuple(f.shape) for f in feats] == [(1, 256, 64, 64), (1, 32, 256, 256), (1, 64, 128, 128)]
    assert enc.cache_key != SAM2ImageEncoder(arch='tiny', img_size=256).cache_key


@pytest.mark.parametrize('piece,arch', [('hiera_t', 'hiera_t'), ('hiera_s', 'hiera_s'), ('hiera_bplus', 'hiera_b+'),
                                        ('hiera_l', 'hiera_l')])
def test_model_configs_name_the_official_file_of_their_arch(piece, arch):
    model = Config.fromfile(osp.join(ROOT, 'configs', '_base_', 'models', f'amsam_sam2_{piece}.py')).model
    assert (model.backbone.type, model.prompt_encoder.type, model.decode_head.type) == (
        'SAM2ImageEncoder', 'SAM2PromptEncoder', 'CalibratedSAM2MaskDecoder')
    assert model.backbone.arch == arch and model.sam_checkpoint == f'checkpoints/{SAM2_FILES[arch][0]}'
    assert (model.img_size, model.decode_head.lora_rank, model.decode_head.calibration) == (256, 4, 'sample')


# ---------------------------------------------------------------- (b) one clear error per bad file
def test_bad_checkpoints_give_one_clear_error(official, tmp_path):
    _, path = official
    missing = str(tmp_path / 'sam2.1_hiera_small.pt')
    with pytest.raises(CheckpointError, match='SAM 2 checkpoint not found.*sam2.1_hiera_small.pt.*092824'):
        SAM2PromptEncoder(checkpoint=missing)
    raw = open(path, 'rb').read()
    (tmp_path / 'truncated.pt').write_bytes(raw[:len(raw) // 2])
    with pytest.raises(CheckpointError, match='truncated.pt.*truncated, corrupt'):
        SAM2ImageEncoder(arch='tiny', checkpoint=str(tmp_path / 'truncated.pt'))
    torch.save({'image_encoder.pos_embed': torch.zeros(1), 'prompt_encoder.no_mask_embed.weight': torch.zeros(1),
                'mask_decoder.iou_token.weight': torch.zeros(1)}, tmp_path / 'sam_vit_b.pth')
    with pytest.raises(CheckpointError, match=r'sam_vit_b.pth.* is a SAM \(1\) checkpoint.*configs/amsam_'):
        CalibratedSAM2MaskDecoder(checkpoint=str(tmp_path / 'sam_vit_b.pth'))
    torch.save({'backbone.weight': torch.zeros(1)}, tmp_path / 'other.pt')
    with pytest.raises(CheckpointError, match='other.pt.* is not a SAM 2 checkpoint'):
        SAM2PromptEncoder(checkpoint=str(tmp_path / 'other.pt'))
    with pytest.raises(CheckpointError, match=r"holds a SAM 2 hiera_t .*arch 'hiera_s'.*arch='hiera_t'"):
        SAM2ImageEncoder(arch='hiera_s', checkpoint=path)
    with pytest.raises(CheckpointError, match=r'does not fit the SAM 2 image encoder \(tiny, 256 px\) '
                                              r'\(the file holds hiera_t\): missing keys.*shape mismatches'):
        SAM2ImageEncoder(arch='tiny', checkpoint=path)
    state = torch.load(path, weights_only=True)['model']
    state.pop('sam_mask_decoder.iou_token.weight')
    torch.save({'model': state}, tmp_path / 'broken.pt')
    with pytest.raises(CheckpointError, match=r"broken.pt.*missing keys: \['iou_token.weight'\]"):
        CalibratedSAM2MaskDecoder(checkpoint=str(tmp_path / 'broken.pt'))


# ---------------------------------------------------------------- (c) LoRA and what trains
def test_lora_on_q_and_v_of_every_attention_and_only_intended_parts_train():
    torch.manual_seed(0)
    head = CalibratedSAM2MaskDecoder(num_classes=2, img_size=128, calibration='learned')
    attns = [m for m in head.decoder.transformer.modules() if isinstance(m, Attention)]
    assert len(attns) == 7  # 2 blocks x (self-attn, token->image, image->token) + final token->image
    assert all(isinstance(a.q_proj, LoRALinear) and isinstance(a.v_proj, LoRALinear) for a in attns)
    assert not any(isinstance(a.k_proj, LoRALinear) or isinstance(a.out_proj, LoRALinear) for a in attns)
    assert head.num_lora_layers == 14
    trainable = {n for n, p in head.named_parameters() if p.requires_grad}
    parts = {n.split('.')[1] for n in trainable if n.startswith('decoder.') and 'lora_' not in n}
    assert parts == {'output_upscaling', 'output_hypernetworks_mlps', 'mask_tokens', 'iou_token', 'obj_score_token'}
    assert {n.split('.')[2] for n in trainable if 'output_hypernetworks_mlps' in n} == {'1', '2'}  # token 0 unused
    assert sum('lora_' in n for n in trainable) == 28 and 'calibration.channel_weights' in trainable
    # every tensor that gets a gradient trains, except the two-way transformer's own weights (LoRA adapts it)
    for m in head.modules():
        if isinstance(m, LoRALinear):
            nn.init.normal_(m.lora_B, std=0.02)
    for p in head.parameters():
        p.requires_grad_(True)
    g = torch.Generator().manual_seed(1)
    feats = (torch.randn(2, 256, 8, 8, generator=g), torch.randn(2, 32, 32, 32, generator=g),
             torch.randn(2, 64, 16, 16, generator=g))
    logits, _ = head(feats, torch.randn(1, 256, 8, 8, generator=g), torch.randn(2, 3, 256, generator=g),
                     torch.randn(2, 256, 8, 8, generator=g))
    target = torch.zeros(2, 32, 32, dtype=torch.long)
    target[:, 8:20, 4:30] = 1
    F.cross_entropy(logits, target).backward()
    with_grad = {n for n, p in head.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    by_design = {n for n in with_grad if n.startswith(tuple(FROZEN_BY_DESIGN)) and 'lora_' not in n}
    assert with_grad - by_design == trainable


def test_unrolled_exact_hypergradient_runs_through_sam2_attention():
    """sam2's attention is F.scaled_dot_product_attention: the head switches to its math kernel under autograd, the
    fused kernels have no double backward (the exact Hessian-vector product needs one)."""
    cfg = shrink(Config.fromfile(osp.join(ROOT, 'configs', '_base_', 'models', 'amsam_sam2_tiny.py')), 64)
    cfg.model.train_cfg = dict(unrolled=True, hvp='exact')
    cfg.model.decode_head.transformer_mlp_dim = 256  # speed: the attentions are what this test is about
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    optim = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.1))
    ow = BiLevelOptimWrapperConstructor(dict(lower=dict(optim, params=[r'^decode_head\.']),
                                             upper=dict(optim, params=[r'^learnable_prompt\.'])))(model)
    before = model.learnable_prompt.dense_embed.detach().clone()
    log = bilevel_train_step(model, dict(lower=data_batch(0, size=64), upper=data_batch(1, size=64)), ow)
    assert log['upper.hypergrad_implicit_norm'] > 0
    assert not torch.equal(model.learnable_prompt.dense_embed, before)


# ---------------------------------------------------------------- (d) bi-level training through the Runner
class _Snapshot(Hook):

    def before_train(self, runner):
        self.before = {n: p.detach().clone() for n, p in runner.model.named_parameters()}


def test_sam2_tiny_trains_bilevel_through_the_runner_with_the_cache(demo_root, tmp_path):
    cfg = demo_cfg(demo_root, tmp_path / 'work', img_size=64, max_epochs=2, val_interval=2)
    tiny = Config.fromfile(osp.join(ROOT, 'configs', '_base_', 'models', 'amsam_sam2_tiny.py')).model
    cfg.model.sam_checkpoint = None  # the demo's toy YOLO prompts; the SAM parts are SAM 2's, tiny Hiera
    for part in ('backbone', 'prompt_encoder', 'learnable_prompt', 'decode_head'):  # replaced, not merged
        cfg.model[part] = tiny[part]
    runner = Runner.from_cfg(cfg)
    snap = _Snapshot()
    runner.register_hook(snap)
    runner.train()
    model = runner.model
    assert type(model.backbone).__name__ == 'SAM2ImageEncoder'
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    changed = {n for n, p in model.named_parameters() if not torch.equal(p.detach(), snap.before[n])}
    assert changed == trainable
    assert any('lora_A' in n for n in changed) and 'learnable_prompt.dense_embed' in changed
    assert not any(n.startswith(('backbone.', 'prompt_encoder.')) for n in trainable)
    # 4 training images (D1 / D2 = 2 / 2), each encoded once in epoch 1; epoch 2 and the validation on D2 hit
    assert model.embedding_cache.stats() == dict(entries=4, mb=model.embedding_cache.nbytes / 2**20, hits=6,
                                                 misses=4, hit_rate=6 / 10)
    # the best checkpoint restores the trained model exactly: same test Dice as the model in memory
    test_cfg = copy.deepcopy(cfg)
    test_cfg.work_dir, test_cfg.experiment_name = str(tmp_path / 'test'), cfg.experiment_name + '_test'
    test_cfg.load_from = glob.glob(str(tmp_path / 'work' / 'best_*.pth'))[0]
    assert Runner.from_cfg(test_cfg).test()['mDice'] == runner.test()['mDice']


# ---------------------------------------------------------------- (e) tuple entries in the embedding cache
def test_embedding_cache_round_trips_tuples_in_memory_and_on_disk(tmp_path):
    calls = []

    def encode(x):
        calls.append(len(x))
        return x * 2, x.mean(dim=1, keepdim=True)[..., ::2, ::2]

    x = torch.randn(3, 4, 16, 16)  # per image: 4 KiB + 256 B
    entry = 4 * 16 * 16 * 4 + 8 * 8 * 4
    ref = encode(x)
    calls.clear()
    cache = EmbeddingCache(('k', ), disk_dir=str(tmp_path))
    first = cache(x, encode)
    again = cache(x[[2, 0]], encode)  # all hits, in the asked order
    assert isinstance(first, tuple) and calls == [3]
    assert torch.equal(first[0], ref[0]) and torch.equal(first[1], ref[1])
    assert torch.equal(again[0], first[0][[2, 0]]) and torch.equal(again[1], first[1][[2, 0]])
    assert cache.nbytes == 3 * entry and cache.stats()['hits'] == 2
    fresh = EmbeddingCache(('k', ), disk_dir=str(tmp_path))  # a new process: loads the tuples from disk
    loaded = fresh(x, encode)
    assert calls == [3] and all(torch.equal(a, b) for a, b in zip(loaded, first))
    assert fresh.stats()['hits'] == 3 and not [f for f in os.listdir(tmp_path) if f.endswith('.tmp')]
    small = EmbeddingCache(('k', ), max_bytes=2 * entry)
    mixed = small(x, encode)
    assert len(small) == 2 and small.nbytes == 2 * entry  # least recently used dropped; all tensors counted
    assert all(torch.equal(a, b) for a, b in zip(mixed, first))
