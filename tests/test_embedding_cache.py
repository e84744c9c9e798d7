"""The frozen-encoder embedding cache: same outputs, one encoder pass per distinct image, safe keys, bounds."""
import copy
import os

import pytest
import torch
from mmengine.config import Config
from mmseg.registry import MODELS

from cfg_helpers import model_cfg
from mmseg_amsam.engine import EmbeddingCacheHook, bilevel_train_step
from mmseg_amsam.models.backbones.embedding_cache import EmbeddingCache, random_transforms
from test_bilevel import data_batch, tiny_model_and_wrappers


def counting(model):
    calls = []
    forward = model.backbone.forward

    def wrapped(x):
        calls.append(x.shape[0])
        return forward(x)

    model.backbone.forward = wrapped
    return calls


def test_cached_training_equals_uncached_and_encodes_each_image_once():
    cached, ow_c = tiny_model_and_wrappers()
    plain, ow_p = tiny_model_and_wrappers()
    plain.embedding_cache = None
    calls = counting(cached)
    for step in range(3):
        data = dict(lower=data_batch(0), upper=data_batch(1))
        log_c = bilevel_train_step(cached, copy.deepcopy(data), ow_c)
        log_p = bilevel_train_step(plain, copy.deepcopy(data), ow_p)
        assert log_c['lower.loss'] == log_p['lower.loss'] and log_c['upper.loss'] == log_p['upper.loss']
    for (n, p), (_, q) in zip(cached.named_parameters(), plain.named_parameters()):
        assert torch.equal(p, q), n
    assert sum(calls) == 2  # two distinct images over 3 steps x 2 levels
    stats = cached.embedding_cache.stats()
    assert stats['entries'] == 2 and stats['hits'] == 4 and stats['misses'] == 2


def test_a_different_input_or_encoder_never_hits(tmp_path):
    cache = EmbeddingCache(('enc', 'a'))
    encode = lambda x: x.mean(dim=1, keepdim=True)  # noqa: E731
    x = torch.randn(2, 3, 8, 8)
    first = cache(x, encode)
    y = x.clone()
    y[1, 0, 0, 0] += 1e-3  # e.g. another normalisation / resize: different content
    second = cache(y, encode)
    assert cache.stats()['hits'] == 1 and cache.stats()['misses'] == 3
    assert torch.equal(second[1], encode(y[1:2])[0]) and torch.equal(first[1], encode(x[1:2])[0])
    # the encoder key (arch, size, checkpoint path + mtime) separates on-disk entries of different encoders
    a = EmbeddingCache(('SAMImageEncoder', 'tiny', 256, 'ckpt1'), disk_dir=str(tmp_path))
    b = EmbeddingCache(('SAMImageEncoder', 'tiny', 256, 'ckpt2'), disk_dir=str(tmp_path))
    a(x, encode)
    b(x, lambda t: t.mean(dim=1, keepdim=True) * 2)
    assert a.owner != b.owner and len(os.listdir(tmp_path)) == 4
    enc = MODELS.build(model_cfg()).backbone
    smaller = MODELS.build(model_cfg(img_size=64, data_preprocessor=dict(size=(64, 64)))).backbone
    assert enc.cache_key != smaller.cache_key


def test_disk_store_and_memory_bound(tmp_path):
    encode_calls = []

    def encode(x):
        encode_calls.append(len(x))
        return x * 2

    x = torch.randn(3, 4, 16, 16)  # 4 KiB per image
    EmbeddingCache(('k', ), disk_dir=str(tmp_path))(x, encode)
    fresh = EmbeddingCache(('k', ), disk_dir=str(tmp_path))  # a new process: loads from disk
    torch.testing.assert_close(fresh(x, encode), x * 2)
    assert encode_calls == [3] and not [f for f in os.listdir(tmp_path) if f.endswith('.tmp')]
    small = EmbeddingCache(('k', ), max_bytes=2 * 4096)
    small(x, encode)
    assert len(small) == 2 and small.nbytes <= 2 * 4096  # least recently used dropped


def test_prediction_with_cache_equals_without():
    torch.manual_seed(0)
    model = MODELS.build(model_cfg()).eval()
    plain = copy.deepcopy(model)
    plain.embedding_cache = None
    batch = model.data_preprocessor(data_batch(3, n=2), False)
    with torch.no_grad():
        for _ in range(2):
            a = model._forward(batch['inputs'], batch['data_samples'])
            b = plain._forward(batch['inputs'], batch['data_samples'])
            assert torch.equal(a, b)
    assert model.embedding_cache.stats()['hits'] == 2


def test_random_pipeline_turns_the_cache_off_for_training():
    assert random_transforms([dict(type='LoadImageFromFile'), dict(type='RandomFlip', prob=0.5),
                              dict(type='PhotoMetricDistortion'), dict(type='Resize')]) == \
        ['RandomFlip', 'PhotoMetricDistortion']
    model = MODELS.build(model_cfg())

    class FakeRunner:
        cfg = Config(dict(train_dataloader=dict(dataset=dict(pipeline=[dict(type='RandomFlip', prob=0.5)]))))
        logger = type('L', (), dict(info=lambda self, msg: None))()

    FakeRunner.model = model
    EmbeddingCacheHook().before_train(FakeRunner())
    assert model.cache_in_training is False
    calls = counting(model)
    model.train()
    batch = model.data_preprocessor(data_batch(0), True)
    model.loss(batch['inputs'], batch['data_samples'])
    model.loss(batch['inputs'], batch['data_samples'])
    assert sum(calls) == 2 and len(model.embedding_cache) == 0


def test_autocast_and_random_weights_are_part_of_the_key():
    calls = []

    def encode(x):
        calls.append(torch.is_autocast_enabled('cpu'))
        return torch.nn.functional.avg_pool2d(x, 2).to(torch.get_autocast_dtype('cpu') if calls[-1] else x.dtype)

    cache = EmbeddingCache(('owner', ))
    x = torch.rand(2, 3, 8, 8)
    fp32 = cache(x, encode)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        low = cache(x, encode)  # not the fp32 entries
    assert calls == [False, True] and low.dtype == torch.bfloat16 and fp32.dtype == torch.float32
    assert torch.equal(cache(x, encode), fp32) and len(calls) == 2 and len(cache) == 4
    # two random-weight encoders (no checkpoint file) have different keys; the same weights the same key
    torch.manual_seed(0)
    a = MODELS.build(model_cfg(sam_checkpoint=None).backbone)
    torch.manual_seed(1)
    b = MODELS.build(model_cfg(sam_checkpoint=None).backbone)
    assert a.cache_key != b.cache_key and a.cache_key == copy.deepcopy(a).cache_key


@pytest.mark.parametrize('kind', ['sam', 'sam2'])
def test_the_encoder_runs_in_micro_batches_and_an_image_never_depends_on_its_batch(kind):
    """model.backbone.max_batch (default 1): a batch is encoded max_batch images at a time, so an image's embedding
    (and so its cache entry, whichever images it was first seen with) is the same bits alone and in any batch."""
    from mmseg_amsam.models.backbones.encoder_batches import in_micro_batches
    cfg = dict(type='SAMImageEncoder', arch='tiny', img_size=64) if kind == 'sam' else \
        dict(type='SAM2ImageEncoder', arch='tiny', img_size=64)
    torch.manual_seed(0)
    encoder = MODELS.build(cfg)
    assert encoder.max_batch == 1
    images = torch.randn(5, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    sizes = []
    encode = encoder.encoder if kind == 'sam' else encoder._encode

    def spy(x):
        sizes.append(x.shape[0])
        return encode(x)

    with torch.no_grad():
        together = in_micro_batches(spy, images, 1)
        alone = [encoder(images[i:i + 1]) for i in range(5)]
        assert sizes == [1] * 5
        outputs = together if isinstance(together, tuple) else (together, )
        for i, one in enumerate(alone):
            one = one if isinstance(one, tuple) else (one, )
            assert all(torch.equal(o[i:i + 1], a) for o, a in zip(outputs, one))
        assert all(torch.equal(a, b) for a, b in zip(outputs, encoder(images) if kind == 'sam2'
                                                      else (encoder(images), )))
        sizes.clear()
        chunks = in_micro_batches(spy, images, 2)  # chunks of 2, 2, 1, concatenated in order
        assert sizes == [2, 2, 1]
        chunks = chunks if isinstance(chunks, tuple) else (chunks, )
        for n, parts in enumerate(zip(*[(encode(images[s:s + 2]) if kind == 'sam2' else (encode(images[s:s + 2]), ))
                                        for s in (0, 2, 4)])):
            assert torch.equal(chunks[n], torch.cat(parts))


def test_max_batch_is_checked_and_part_of_the_cache_key():
    with pytest.raises(ValueError, match=r'SAMImageEncoder: model.backbone.max_batch must be a whole number >= 1 '
                                         r"\(images per encoder pass\) or None \(the whole batch at once\), got 0"):
        MODELS.build(dict(type='SAMImageEncoder', arch='tiny', img_size=64, max_batch=0))
    torch.manual_seed(0)
    one = MODELS.build(dict(type='SAMImageEncoder', arch='tiny', img_size=64))
    torch.manual_seed(0)
    whole = MODELS.build(dict(type='SAMImageEncoder', arch='tiny', img_size=64, max_batch=None))
    assert one.cache_key != whole.cache_key and one.cache_key[:-1] == whole.cache_key[:-1]


def test_encoder_memory_tool_reports_each_batch_from_its_own_process():
    import subprocess
    import sys
    out = subprocess.run([sys.executable, 'tools/encoder_memory.py', '--arch', 'tiny', '--img-size', '64',
                          '--batches', '1', '3'], capture_output=True, text=True, timeout=300,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.returncode == 0, out.stderr[-1500:]
    lines = out.stdout.splitlines()
    assert lines[0] == 'SAM tiny encoder, 64 px, max_batch 1, cpu: peak RSS per batch'
    assert lines[1].startswith('  batch 1: ') and '(1.00x the first row)' in lines[1]
    assert lines[2].startswith('  batch 3: ') and len(lines) == 3
