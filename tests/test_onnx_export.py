"""Deployment: LoRA merge, ONNX export (encoder, decoders, YOLO, manifest), the ONNX Runtime backend and the CLIs."""
import copy
import glob
import json
import os
import os.path as osp
import shutil

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from cfg_helpers import demo_cfg, load_tool, model_cfg
from mmseg_amsam.apis import AMSAMInferencer, ONNXInferencer, ONNXSegmentor, check_exportable, export_model
from mmseg_amsam.apis.cli_errors import run_cli
from mmseg_amsam.datasets import DemoShapesDataset
from mmseg_amsam.engine import build_model
from mmseg_amsam.models.decode_heads.lora import LoRALinear, LoRAQKV, merge_lora


def _perturb(model, seed=1, scale=0.05):
    """Non-zero LoRA B (and every other trained tensor) so that merging and baking change something."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(scale * torch.randn(p.shape, generator=g))
    return model


def cv2_shape(path):
    return cv2.imread(path).shape[:2]


def _frozen(model, x, boxes, has_box):
    sparse, dense = model.prompt_encoder(boxes, has_box, x.shape[0])
    return dict(sparse=sparse, dense=dense, has_box=has_box, feats=model.backbone(x))


@pytest.fixture(scope='module')
def tiny():
    """The tiny AM-SAM (random yolov8n from its yaml) with box-less images (fallback='none') and learned weights."""
    model = build_model(model_cfg(prompter=dict(fallback='none'), embedding_cache=None), seed=0)
    return _perturb(model).eval()


def test_merged_lora_equals_unmerged():
    model = _perturb(build_model(model_cfg(backbone=dict(lora_rank=2), embedding_cache=None), seed=0)).eval()
    merged = copy.deepcopy(model)
    count = merge_lora(merged)
    assert count == model.decode_head.num_lora_layers + model.backbone.num_lora_layers > 0
    assert not any(isinstance(m, (LoRALinear, LoRAQKV)) for m in merged.modules())
    x = torch.randn(2, 3, 128, 128)
    boxes, has_box = torch.tensor([[10., 20., 90., 110.], [0., 0., 128., 128.]]), torch.tensor([True, False])
    with torch.no_grad():
        ref = model.decode_from(_frozen(model, x, boxes, has_box))
        out = merged.decode_from(_frozen(merged, x, boxes, has_box))
    assert (ref - out).abs().max() <= 1e-5 and ref.abs().max() > 0.01


@pytest.mark.parametrize('calibration', ['sample', 'learned'])
def test_onnx_graphs_match_pytorch_with_and_without_box(tiny, tmp_path, calibration):
    model = tiny
    if calibration == 'learned':
        model = _perturb(build_model(model_cfg(prompter=None, embedding_cache=None,
                                               decode_head=dict(calibration='learned')), seed=0), seed=2).eval()
    manifest = export_model(model, str(tmp_path / 'export'), [dict(type='LoadImageFromFile')],
                            dict(DemoShapesDataset.METAINFO))
    expected = {'image_encoder.onnx', 'prompt_decoder_boxless.onnx'}
    expected |= {'prompt_decoder.onnx', 'yolo.onnx'} if model.prompter is not None else set()
    assert set(manifest['files']) == expected and manifest['calibration'] == calibration
    assert os.listdir(tmp_path) == ['export']  # no partial directory left
    onnx = ONNXSegmentor(str(tmp_path / 'export'))
    x = torch.randn(3, 3, 128, 128)
    boxes = torch.tensor([[10., 20., 90., 110.], [0., 0., 128., 128.], [30., 5., 60., 50.]])
    has_box = torch.tensor([True, False, True]) if model.prompter is not None else None
    with torch.no_grad():
        frozen = _frozen(model, x, boxes if has_box is not None else None, has_box)
        ref = F.interpolate(model.decode_from(frozen), size=(128, 128), mode='bilinear', align_corners=False)
    emb = onnx.encode(x.numpy())
    assert np.abs(emb - frozen['feats'].numpy()).max() <= 1e-4
    for batch in ([0, 1, 2], [1], [2, 0]):  # mixed, box-less alone, boxed alone: dynamic batch
        hb = None if has_box is None else has_box[batch].numpy()
        out = onnx.decode(emb[batch], boxes[batch].numpy(), hb)
        assert np.abs(out - ref[batch].numpy()).max() <= 1e-4
        assert np.array_equal(out.argmax(1), ref[batch].numpy().argmax(1))


def test_refuses_what_it_cannot_export(tiny, monkeypatch):
    with pytest.raises(ValueError, match='AM-SAM'):
        check_exportable(torch.nn.Linear(2, 2))
    monkeypatch.setattr(tiny, 'class_prompts', True, raising=False)
    with pytest.raises(ValueError, match='not supported yet'):
        check_exportable(tiny)
    monkeypatch.setattr(tiny, 'class_prompts', False)
    monkeypatch.setattr(tiny.decode_head.calibration, 'mode', 'batch')
    with pytest.raises(ValueError, match="calibration='batch'"):
        check_exportable(tiny)
    monkeypatch.setattr(tiny.decode_head.calibration, 'mode', 'sample')
    masks = build_model(model_cfg(prompter=dict(type='MaskBoxPrompter'), embedding_cache=None), seed=0)
    with pytest.raises(ValueError, match='MaskBoxPrompter'):
        check_exportable(masks)
    point = build_model(model_cfg(prompt_encoder=dict(type='SAMBoxPointPromptEncoder'), embedding_cache=None), seed=0)
    with pytest.raises(ValueError, match='SAMBoxPointPromptEncoder'):  # its traced point embedding fails at batch > 1
        check_exportable(point)


def test_a_manifest_that_cannot_verify_its_files_is_refused(demo_export, tmp_path):
    from mmseg_amsam.apis.onnx_manifest import ExportIntegrityError, is_our_export, read_manifest
    export_dir = demo_export[2]
    assert is_our_export(export_dir) and read_manifest(export_dir)['files']
    for edit, match in ((lambda m: m.pop('files'), 'lists no files'),
                        (lambda m: m['files'].pop(m['graphs']['encoder']), 'not verified by it'),
                        (lambda m: m['files'].update({'../x.onnx': '0'}), 'outside the export')):
        copy_dir = tmp_path / f'copy{len(os.listdir(tmp_path))}'
        shutil.copytree(export_dir, copy_dir)
        manifest = json.load(open(copy_dir / 'manifest.json'))
        edit(manifest)
        json.dump(manifest, open(copy_dir / 'manifest.json', 'w'))
        with pytest.raises(ExportIntegrityError, match=match):
            read_manifest(str(copy_dir))
    extra = tmp_path / 'extra'
    shutil.copytree(export_dir, extra)
    (extra / 'notes.txt').write_text('mine')
    assert not is_our_export(str(extra))  # a file the export did not write: not ours to replace without --force


@pytest.fixture(scope='module')
def demo_export(demo_root, tmp_path_factory):
    """The demo model (toy SAM + toy YOLO .pt, 128 px; fallback='none': box-less images too) with perturbed trained
    weights as a checkpoint, exported by tools/export_onnx.py."""
    tmp = tmp_path_factory.mktemp('onnx_demo')
    cfg = demo_cfg(demo_root, tmp / 'work')
    cfg.model.prompter.fallback = 'none'
    cfg_path, ckpt = str(tmp / 'demo.py'), str(tmp / 'model.pth')
    cfg.dump(cfg_path)
    model = _perturb(build_model(cfg.model, seed=0), scale=0.02)
    torch.save(dict(meta=dict(seed=0, dataset_meta=dict(DemoShapesDataset.METAINFO)), state_dict=model.state_dict()),
               ckpt)
    out = str(tmp / 'export')
    assert run_cli(load_tool('export_onnx').main, [cfg_path, ckpt, out]) == 0
    return cfg_path, ckpt, out


def test_onnx_runtime_inferencer_matches_pytorch(demo_export, demo_root):
    cfg_path, ckpt, out = demo_export
    manifest = json.load(open(osp.join(out, 'manifest.json')))
    assert manifest['prompter']['fallback'] == 'none' and manifest['preprocess']['bgr_to_rgb'] is True
    assert manifest['dataset_meta']['classes'] == list(DemoShapesDataset.METAINFO['classes'])
    paths = sorted(glob.glob(osp.join(demo_root, 'img_dir', 'test', '*.png')))
    images = paths + [np.random.default_rng(0).integers(0, 255, (70, 120, 3), dtype=np.uint8)]
    ref = AMSAMInferencer(cfg_path, ckpt)(images, batch_size=2)
    got = ONNXInferencer(out)(images, batch_size=2)
    for r, g in zip(ref, got):
        assert np.abs(r.probability - g.probability).max() <= 1e-4 and np.array_equal(r.mask, g.mask)
        assert r.fallback == g.fallback and (r.box is None) == (g.box is None)
        if r.box is not None:
            assert g.box == pytest.approx(r.box, abs=1e-3)


def test_infer_cli_onnxruntime_writes_the_same_masks(demo_export, demo_root, tmp_path, capsys):
    cfg_path, ckpt, out = demo_export
    images = sorted(glob.glob(osp.join(demo_root, 'img_dir', 'test', '*.png')))
    infer = load_tool('infer')
    assert infer.main([cfg_path, ckpt, images[0], '--out', str(tmp_path / 'pt'), '--device', 'cpu']) == 0
    assert infer.main([cfg_path, ckpt, images[1], '--out', str(tmp_path / 'pt')]) == 0
    src = osp.dirname(images[0])
    assert infer.main(['--backend', 'onnxruntime', out, src, '--out', str(tmp_path / 'ort'), '--batch-size', '2']) == 0
    for path in images:
        name = osp.splitext(osp.basename(path))[0] + '.png'
        pt, ort = (np.array(Image.open(tmp_path / backend / name)) for backend in ('pt', 'ort'))
        assert pt.shape == cv2_shape(path) and np.array_equal(pt, ort)
    record = json.load(open(tmp_path / 'ort' / 'predictions.json'))
    assert record['backend'] == 'onnxruntime' and len(record['images']) == len(images)
    capsys.readouterr()


def test_cli_bad_input_is_one_message(demo_export, demo_root, tmp_path, capsys):
    cfg_path, ckpt, out = demo_export
    export_tool, infer = load_tool('export_onnx'), load_tool('infer')
    assert run_cli(export_tool.main, [cfg_path, str(tmp_path / 'missing.pth'), str(tmp_path / 'x')]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'missing.pth' in err[0] and not osp.exists(tmp_path / 'x')
    foreign = tmp_path / 'foreign'
    foreign.mkdir()
    (foreign / 'notes.txt').write_text('mine')
    assert run_cli(export_tool.main, [cfg_path, ckpt, str(foreign)]) == 2
    assert 'not an ONNX export' in capsys.readouterr().err and os.listdir(foreign) == ['notes.txt']
    assert [f for f in os.listdir(tmp_path) if 'partial' in f] == []
    tampered = tmp_path / 'tampered'
    os.makedirs(tampered)
    for name in os.listdir(out):
        with open(osp.join(out, name), 'rb') as src, open(tampered / name, 'wb') as dst:
            dst.write(src.read())
    with open(tampered / 'prompt_decoder.onnx', 'ab') as f:
        f.write(b'\0')
    image = sorted(glob.glob(osp.join(demo_root, 'img_dir', 'test', '*.png')))[0]
    assert run_cli(infer.main, ['--backend', 'onnxruntime', str(tampered), image, '--out', str(tmp_path / 'o')]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'prompt_decoder.onnx' in err[0] and 'modified' in err[0]
