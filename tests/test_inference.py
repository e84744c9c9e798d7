"""AMSAMInferencer (masks, prompt boxes in original coordinates, probabilities) and tools/infer.py."""
import glob
import json
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from cfg_helpers import demo_cfg, load_tool
from mmseg_amsam.apis import AMSAMInferencer, ImageLoadError
from mmseg_amsam.datasets import DemoShapesDataset
from mmseg_amsam.engine import build_model
from mmseg_amsam.models.prompters.prompt_checks import MissingPromptError


@pytest.fixture(scope='module')
def demo_model(demo_root, tmp_path_factory):
    """The tiny demo config (128 px) dumped to a file, and a full checkpoint with perturbed trained weights."""
    tmp = tmp_path_factory.mktemp('infer_model')
    cfg = demo_cfg(demo_root, tmp / 'work')
    cfg_path = str(tmp / 'demo_small.py')
    cfg.dump(cfg_path)
    model = build_model(cfg.model, seed=0)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.02 * torch.randn(p.shape, generator=g))
    ckpt = str(tmp / 'model.pth')
    torch.save(dict(meta=dict(seed=0, dataset_meta=dict(DemoShapesDataset.METAINFO)), state_dict=model.state_dict()),
               ckpt)
    return cfg, cfg_path, ckpt


@pytest.fixture(scope='module')
def inferencer(demo_model):
    cfg, _, ckpt = demo_model
    return AMSAMInferencer(cfg, ckpt, device='cpu')


def test_masks_and_probabilities_at_the_original_size(inferencer, demo_root):
    paths = sorted(glob.glob(osp.join(demo_root, 'img_dir', 'test', '*.png')))
    array = np.random.default_rng(0).integers(0, 255, (70, 120, 3), dtype=np.uint8)
    results = inferencer(paths + [array], batch_size=2)
    assert len(results) == 3
    for result, shape in zip(results, [cv2.imread(p).shape[:2] for p in paths] + [(70, 120)]):
        assert result.ok and result.mask.shape == shape and result.mask.dtype == np.uint8
        assert set(np.unique(result.mask)) <= {0, 1}
        assert result.probability.shape == shape and result.probability.dtype == np.float32
        assert 0.0 <= result.probability.min() and result.probability.max() <= 1.0
        # binary softmax: class 1 <=> foreground probability > 0.5
        assert np.array_equal(result.mask == 1, result.probability > 0.5)
        assert isinstance(result.fallback, bool) and (result.box is None) == result.fallback  # null = fell back
        if result.box is not None:
            x1, y1, x2, y2 = result.box
            assert 0 <= x1 < x2 <= shape[1] and 0 <= y1 < y2 <= shape[0]
    assert results[0].img_path == paths[0] and results[2].img_path is None
    single = inferencer(paths[0])  # a single input gives a single result, identical to the batched one
    np.testing.assert_allclose(single.probability, results[0].probability, atol=1e-5)
    assert np.array_equal(single['mask'], results[0]['mask'])


def test_prompt_box_is_mapped_back_to_original_pixels(inferencer, monkeypatch):
    prompter = inferencer.model.prompter
    # network input is 128 x 128; a box there maps to the original image by its own x / y scales
    monkeypatch.setattr(prompter, 'boxes_for', lambda inputs, samples: [(32.0, 16.0, 96.0, 64.0), None])
    monkeypatch.setattr(prompter, 'fallback', 'none')
    wide = np.full((64, 192, 3), 127, np.uint8)
    first, second = inferencer([wide, wide], batch_size=2)
    assert first.box == pytest.approx((48.0, 8.0, 144.0, 32.0)) and first.fallback is False
    assert second.box is None and not second.has_box and second.fallback  # no box: the learned prompt alone


def test_same_box_for_a_file_and_its_pixels_as_an_array(demo_model, tmp_path):
    """The detector sees the original pixels either way (file, or the array put in ori_img): same box, mapped back
    to the same original pixels; the random tiny YOLO at conf 0 always finds one."""
    cfg, _, ckpt = demo_model
    inf = AMSAMInferencer(cfg, ckpt, cfg_options={'model.prompter.conf': 0.0})
    image = np.random.default_rng(3).integers(0, 255, (70, 150, 3), dtype=np.uint8)
    path = str(tmp_path / 'pixels.png')
    cv2.imwrite(path, image)
    from_file, from_array = inf([path, cv2.imread(path)], batch_size=2)
    assert from_file.box is not None and from_file.box == from_array.box and from_file.fallback is False
    alone = inf(path)
    assert alone.box == from_file.box


def test_no_box_without_learned_prompt_is_one_clear_error(demo_model, demo_root, monkeypatch):
    cfg, _, _ = demo_model
    inf = AMSAMInferencer(cfg, None, cfg_options={'model.prompter.fallback': 'none', 'model.learnable_prompt': None})
    monkeypatch.setattr(inf.model.prompter, 'boxes_for', lambda inputs, samples: [None] * len(samples))
    path = sorted(glob.glob(osp.join(demo_root, 'img_dir', 'test', '*.png')))[0]
    with pytest.raises(MissingPromptError) as err:
        inf(path)
    msg = str(err.value)
    assert path in msg and "fallback='image'" in msg and 'learnable_prompt' in msg


def test_unreadable_image_raises_naming_it(inferencer, tmp_path):
    bad = tmp_path / 'broken.jpg'
    bad.write_bytes(b'not a jpeg')
    with pytest.raises(ImageLoadError, match='broken.jpg'):
        inferencer([str(bad)])
    results = list(inferencer.predict_iter([str(bad), np.zeros((20, 30, 3), np.uint8)], errors='skip'))
    assert not results[0].ok and 'broken.jpg' in results[0].error and results[1].mask.shape == (20, 30)


def test_infer_cli_writes_masks_overlays_and_reports_corrupt_files(demo_model, demo_root, tmp_path, capsys):
    _, cfg_path, ckpt = demo_model
    images = tmp_path / 'images'
    images.mkdir()
    sizes = {}
    for i, src in enumerate(sorted(glob.glob(osp.join(demo_root, 'img_dir', 'test', '*.png')))):
        img = cv2.imread(src)
        img = cv2.resize(img, (80 + 20 * i, 60 + 10 * i))  # non-square, different sizes
        cv2.imwrite(str(images / f'img{i}.jpg'), img)
        sizes[f'img{i}'] = img.shape[:2]
    (images / 'corrupt.png').write_bytes(b'\x89PNG\r\n\x1a\n' + b'\x00' * 20)
    (images / 'notes.txt').write_text('not an image, ignored')
    out = tmp_path / 'out'
    infer = load_tool('infer')
    code = infer.main([cfg_path, ckpt, str(images), '--out', str(out), '--overlay', '--batch-size', '2',
                       '--device', 'cpu'])
    err = capsys.readouterr().err
    assert code == 1  # non-zero because one file failed ...
    assert 'corrupt.png' in err and 'skipped' in err
    for name, (h, w) in sizes.items():  # ... but the others were processed
        mask = np.array(Image.open(out / f'{name}.png'))
        assert mask.shape == (h, w) and set(np.unique(mask)) <= {0, 1}
        assert Image.open(out / f'{name}_overlay.png').size == (w, h)
    assert not (out / 'corrupt.png').exists()
    record = json.load(open(out / 'predictions.json'))
    assert [osp.basename(f) for f in record['failed']] == ['corrupt.png']
    assert len(record['images']) == 2
    for r in record['images']:  # a detected box, or null + fallback true
        assert (r['box'] is None and r['fallback'] is True) or (len(r['box']) == 4 and r['fallback'] is False)
    flags = [r['fallback'] for r in record['images']]
    assert record['prompts'] == dict(images=2, detections=flags.count(False), fallbacks=flags.count(True))
    # a glob input, palette masks, all readable -> exit 0
    code = infer.main([cfg_path, ckpt, str(images / 'img*.jpg'), '--out', str(tmp_path / 'pal'), '--palette',
                       '--device', 'cpu'])
    assert code == 0
    pal = Image.open(tmp_path / 'pal' / 'img0.png')
    assert pal.mode == 'P' and pal.getpalette()[3:6] == list(DemoShapesDataset.METAINFO['palette'][1])
    assert infer.main([cfg_path, ckpt, str(tmp_path / 'nothing*.png'), '--out', str(tmp_path / 'x')]) == 2
