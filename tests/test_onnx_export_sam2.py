"""ONNX export of AM-SAM on SAM 2 (tiny Hiera): three encoder outputs through the decoder graphs, ONNX Runtime equal
to PyTorch (graphs, a mixed batch split by the runtime, the inferencer, measure_speed), the manifest's model kind."""
import glob
import json
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config

from cfg_helpers import ROOT, demo_cfg, load_tool, model_cfg
from mmseg_amsam.apis import AMSAMInferencer, ONNXInferencer, ONNXSegmentor, check_exportable, export_model
from mmseg_amsam.apis.cli_errors import run_cli
from mmseg_amsam.apis.inference_speed import measure_speed
from mmseg_amsam.datasets import DemoShapesDataset
from mmseg_amsam.engine import build_model

FEATURES = ['image_embeddings', 'high_res_feat_s0', 'high_res_feat_s1']


@pytest.fixture(scope='module')
def sam2_export(demo_root, tmp_path_factory):
    """The demo model (toy YOLO, 128 px, fallback='none': box-less images too) with the tiny SAM 2 parts, every
    weight perturbed (Hiera's position embeddings start at zero), saved as a full checkpoint and exported by
    tools/export_onnx.py. Returns (config, checkpoint, export dir, the model in memory)."""
    tmp = tmp_path_factory.mktemp('onnx_sam2')
    cfg = demo_cfg(demo_root, tmp / 'work')
    tiny = Config.fromfile(osp.join(ROOT, 'configs', '_base_', 'models', 'amsam_sam2_tiny.py')).model
    cfg.model.sam_checkpoint = None
    for part in ('backbone', 'prompt_encoder', 'learnable_prompt', 'decode_head'):
        cfg.model[part] = tiny[part]
    cfg.model.prompter.fallback = 'none'
    cfg_path, ckpt = str(tmp / 'demo_sam2.py'), str(tmp / 'model.pth')
    cfg.dump(cfg_path)
    model = build_model(cfg.model, seed=0)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    torch.save(dict(meta=dict(seed=0, dataset_meta=dict(DemoShapesDataset.METAINFO)), state_dict=model.state_dict()),
               ckpt)
    out = str(tmp / 'export')
    assert run_cli(load_tool('export_onnx').main, [cfg_path, ckpt, out]) == 0
    model.embedding_cache = None  # the same input in several tests: always encode
    return cfg_path, ckpt, out, model.eval()


def test_sam2_manifest_says_what_was_exported(sam2_export):
    _, _, out, model = sam2_export
    check_exportable(model)
    manifest = json.load(open(osp.join(out, 'manifest.json')))
    assert manifest['format_version'] == 2 and manifest['features'] == FEATURES
    assert manifest['model'] == dict(family='sam2', backbone='SAM2ImageEncoder', arch='tiny',
                                     prompt_encoder='SAM2PromptEncoder', decode_head='CalibratedSAM2MaskDecoder')
    assert set(manifest['files']) == {'image_encoder.onnx', 'prompt_decoder.onnx', 'prompt_decoder_boxless.onnx',
                                      'yolo.onnx'}
    onnx = ONNXSegmentor(out)
    assert [o.name for o in onnx.sessions['encoder'].get_outputs()] == FEATURES
    assert [i.name for i in onnx.sessions['box_decoder'].get_inputs()] == FEATURES + ['boxes']
    assert [i.name for i in onnx.sessions['boxless_decoder'].get_inputs()] == FEATURES


def test_sam2_graphs_match_pytorch_with_and_without_box(sam2_export):
    _, _, out, model = sam2_export
    onnx = ONNXSegmentor(out)
    x = torch.randn(3, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    boxes = torch.tensor([[10., 20., 90., 110.], [0., 0., 128., 128.], [30., 5., 60., 50.]])
    has_box = torch.tensor([True, False, True])
    with torch.no_grad():
        sparse, dense = model.prompt_encoder(boxes, has_box, 3)
        feats = model.backbone(x)
        frozen = dict(sparse=sparse, dense=dense, has_box=has_box, feats=feats)
        ref = F.interpolate(model.decode_from(frozen), size=(128, 128), mode='bilinear', align_corners=False)
    emb = onnx.encode(x.numpy())
    assert isinstance(emb, tuple) and [e.shape for e in emb] == [tuple(f.shape) for f in feats]
    for e, f in zip(emb, feats):
        assert np.abs(e - f.numpy()).max() <= 1e-4 and f.abs().max() > 0.1
    one = onnx.encode(x[1:2].numpy())  # dynamic batch (exported at 2)
    assert all(np.abs(a - b[1:2]).max() <= 1e-4 for a, b in zip(one, emb))
    for batch in ([0, 1, 2], [1], [2, 0]):  # mixed (split by the runtime), box-less alone, boxed alone
        out_b = onnx.decode(tuple(e[batch] for e in emb), boxes[batch].numpy(), has_box[batch].numpy())
        assert np.abs(out_b - ref[batch].numpy()).max() <= 1e-4
        assert np.array_equal(out_b.argmax(1), ref[batch].numpy().argmax(1))
    with pytest.raises(ValueError, match='3 encoder outputs'):
        onnx.decode(emb[0], boxes.numpy(), has_box.numpy())


def test_sam2_onnx_runtime_inferencer_matches_pytorch(sam2_export, demo_root):
    cfg_path, ckpt, out, _ = sam2_export
    paths = sorted(glob.glob(osp.join(demo_root, 'img_dir', 'test', '*.png')))
    noise = np.random.default_rng(0).integers(0, 255, (70, 120, 3), dtype=np.uint8)  # not square
    images = [paths[1], paths[0], noise]  # batches of 2: (box, no box) mixed, then one
    ref = AMSAMInferencer(cfg_path, ckpt)(images, batch_size=2)
    got = ONNXInferencer(out)(images, batch_size=2)
    assert ref[0].box is not None and ref[1].box is None  # the first batch is split between the decoder graphs
    for r, g in zip(ref, got):
        assert np.abs(r.probability - g.probability).max() <= 1e-4 and np.array_equal(r.mask, g.mask)
        assert r.fallback == g.fallback and (r.box is None) == (g.box is None)
        if r.box is not None:
            assert g.box == pytest.approx(r.box, abs=1e-3)


def test_measure_speed_on_a_sam2_export(sam2_export):
    _, _, out, model = sam2_export
    rows = measure_speed(model, out, batch_sizes=(1, 2), repeats=1, warmup=0, threads=2)
    assert [(r['backend'], r['batch_size']) for r in rows] == [('pytorch', 1), ('onnxruntime', 1), ('pytorch', 2),
                                                               ('onnxruntime', 2)]
    assert all(r['max_abs_diff'] <= 1e-4 for r in rows if r['backend'] == 'onnxruntime')


def test_sam_exports_keep_their_graphs_and_old_manifests_still_load(tmp_path):
    """A SAM (ViT) export is what it was: format_version 1, one encoder output; a manifest written before SAM 2
    support (no 'model' / 'features') reads as SAM."""
    model = build_model(model_cfg(prompter=None, embedding_cache=None), seed=0).eval()
    out = str(tmp_path / 'export')
    manifest = export_model(model, out, [dict(type='LoadImageFromFile')], dict(DemoShapesDataset.METAINFO))
    assert manifest['format_version'] == 1 and manifest['features'] == ['image_embeddings']
    assert manifest['model']['family'] == 'sam' and manifest['model']['backbone'] == 'SAMImageEncoder'
    old = {k: v for k, v in manifest.items() if k not in ('model', 'features')}
    with open(osp.join(out, 'manifest.json'), 'w') as f:
        json.dump(old, f)
    onnx = ONNXSegmentor(out)
    assert [o.name for o in onnx.sessions['encoder'].get_outputs()] == ['image_embeddings']
    assert [i.name for i in onnx.sessions['boxless_decoder'].get_inputs()] == ['image_embeddings']
    x = torch.randn(2, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    emb = onnx.encode(x.numpy())
    assert isinstance(emb, np.ndarray) and onnx.decode(emb, None, None).shape == (2, 2, 128, 128)
