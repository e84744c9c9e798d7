"""A checkpoint trained by mmengine's Runner, used by mmseg's and mmengine's own clients (not our tools):
mmseg.apis.init_model + inference_model, MMSegInferencer, mmseg's tools/test.py (--out, --show-dir), the
visualizer as browse_dataset.py builds it, mmengine.analysis (get_flops.py) and the run's scalars.json.
Every mask equals our AMSAMInferencer's."""
import glob
import json
import os
import os.path as osp
import subprocess
import sys

import cv2
import mmseg
import numpy as np
import pytest
import torch
from mmengine.analysis import FlopAnalyzer, get_model_complexity_info
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from mmengine.structures import PixelData
from mmseg.apis import MMSegInferencer, inference_model, init_model
from mmseg.registry import MODELS, VISUALIZERS
from mmseg.structures import SegDataSample
from mmseg.visualization import SegLocalVisualizer
from PIL import Image

from cfg_helpers import ROOT, demo_cfg
from mmseg_amsam.apis import AMSAMInferencer
from mmseg_amsam.engine import build_model
from mmseg_amsam.engine.checkpoint_loading import load_local_checkpoint, plain_history_buffers

MMSEG_TOOLS = osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools')  # mmseg's tools/, installed with the package


@pytest.fixture(scope='module')
def trained(demo_root, tmp_path_factory):
    """One epoch of the demo config through the Runner (its best_mDice checkpoint, trainable-only, with
    mmengine's message hub), the trained weights then moved far enough that they decide the masks."""
    tmp = tmp_path_factory.mktemp('mmseg_clients')
    cfg = demo_cfg(demo_root, tmp / 'work', max_epochs=1, val_interval=1)
    runner = Runner.from_cfg(cfg)
    runner.train()
    ckpt = glob.glob(str(tmp / 'work' / 'best_mDice_*.pth'))[0]
    checkpoint = load_local_checkpoint(ckpt)
    g = torch.Generator().manual_seed(0)
    for key, value in checkpoint['state_dict'].items():
        if value.is_floating_point():
            value.add_(0.05 * torch.randn(value.shape, generator=g))
    with plain_history_buffers():  # as our checkpoint hook writes it
        torch.save(checkpoint, ckpt)
    cfg_path = str(tmp / 'demo_small.py')
    cfg.dump(cfg_path)
    paths = sorted(glob.glob(osp.join(demo_root, 'img_dir', 'test', '*.png')))
    ours = [r.mask for r in AMSAMInferencer(cfg_path, ckpt, device='cpu')(paths)]
    return dict(cfg_path=cfg_path, ckpt=ckpt, paths=paths, ours=ours, runner=runner, tmp=tmp)


def test_the_trained_weights_decide_the_masks(trained):
    """The premise of the comparisons below: without the checkpoint the masks differ."""
    untrained = init_model(trained['cfg_path'], None, device='cpu')
    masks = [inference_model(untrained, p).pred_sem_seg.data[0].numpy() for p in trained['paths']]
    assert any(not np.array_equal(m, o) for m, o in zip(masks, trained['ours']))


def test_init_model_and_inference_model_on_a_path_and_an_array(trained):
    model = init_model(trained['cfg_path'], trained['ckpt'], device='cpu')  # sets model.pretrained = None
    assert model.dataset_meta['classes'] == ('background', 'shape')
    for path, ours in zip(trained['paths'], trained['ours']):
        on_path = inference_model(model, path).pred_sem_seg.data[0].numpy()
        assert on_path.shape == ours.shape == cv2.imread(path).shape[:2] and np.array_equal(on_path, ours)
    # An array: mmseg's pipeline keeps no original image, so the detector sees the network input -- what
    # use_original_image=False does (our inferencer detects on the array itself: the box can differ slightly).
    network_input = dict(model=dict(prompter=dict(use_original_image=False)))
    model = init_model(trained['cfg_path'], trained['ckpt'], device='cpu', cfg_options=network_input)
    arrays = [cv2.imread(path) for path in trained['paths']]
    ours = AMSAMInferencer(trained['cfg_path'], trained['ckpt'], cfg_options=network_input)(arrays)
    for on_array, our in zip(inference_model(model, arrays), ours):
        assert np.array_equal(on_array.pred_sem_seg.data[0].numpy(), our.mask)
    on_one = inference_model(model, arrays[0])  # a single array gives a single result
    assert np.array_equal(on_one.pred_sem_seg.data[0].numpy(), ours[0].mask)


def test_a_pretrained_value_is_refused_naming_sam_checkpoint(trained):
    model_cfg = Config.fromfile(trained['cfg_path']).model
    model_cfg.pretrained = 'weights/backbone.pth'
    with pytest.raises(ValueError, match=r"model.pretrained='weights/backbone.pth' is not used by AM-SAM.*"
                                         r"model.sam_checkpoint='weights/backbone.pth'"), \
            DefaultScope.overwrite_default_scope('mmseg'):
        MODELS.build(model_cfg)


def test_mmseg_inferencer_on_a_folder(trained):
    inferencer = MMSegInferencer(model=trained['cfg_path'], weights=trained['ckpt'], device='cpu')
    folder = osp.dirname(trained['paths'][0])
    results = sorted(inferencer(folder, return_datasamples=True), key=lambda r: r.img_path)
    assert [r.img_path for r in results] == trained['paths']
    for result, ours in zip(results, trained['ours']):
        assert np.array_equal(result.pred_sem_seg.data[0].numpy(), ours)


def test_mmseg_test_script_with_out_and_show_dir(trained, tmp_path):
    """mmseg's own tools/test.py: --out sets test_evaluator.output_dir + keep_results (DiceMetric writes the
    masks), --show-dir the visualizer's save_dir."""
    out, show, work = tmp_path / 'masks', tmp_path / 'show', tmp_path / 'work'
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    proc = subprocess.run([sys.executable, osp.join(MMSEG_TOOLS, 'test.py'), trained['cfg_path'], trained['ckpt'],
                           '--work-dir', str(work), '--out', str(out), '--show-dir', str(show),
                           '--cfg-options', 'default_hooks.visualization.interval=1'],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    masks = sorted(glob.glob(str(out / '*.png')))
    assert [osp.basename(m) for m in masks] == [osp.basename(p) for p in trained['paths']]
    for mask, ours in zip(masks, trained['ours']):
        assert np.array_equal(np.array(Image.open(mask)), ours)
    assert len(glob.glob(str(show / 'vis_data' / 'vis_image' / '*.png'))) == len(trained['paths'])
    results = [json.load(open(p)) for p in glob.glob(str(work / '*' / '*.json'))]
    assert len(results) == 1 and 0 <= results[0]['mDice'] <= 100
    assert 0 <= results[0]['test/prompt_detection_rate'] <= 1  # the telemetry keeps its split in the name


def test_scalars_json_keeps_train_and_val_telemetry_apart(trained):
    runner = trained['runner']
    lines = [json.loads(line) for line in open(osp.join(runner.log_dir, 'vis_data', 'scalars.json'))]
    train = [e for e in lines if 'lower.loss' in e]
    val = [e for e in lines if 'mDice' in e]
    assert len(val) == 1 and not any('prompt_box_iou' in e for e in lines)  # no series mixing the splits
    assert [k for k in val[0] if 'prompt' in k] == ['val/prompt_detection_rate', 'val/prompt_fallbacks',
                                                    'val/prompt_box_iou', 'val/prompt_box_iou_ge_0.5']
    # the epoch's train telemetry is in its last logged iteration (published before LoggerHook writes it)
    assert [k for k in train[-1] if 'prompt' in k] == ['train/prompt_detection_rate', 'train/prompt_fallbacks',
                                                      'train/prompt_box_iou', 'train/prompt_box_iou_ge_0.5']
    assert all(0 <= e[k] <= 1 for e in (train[-1], val[0]) for k in e if 'rate' in k or 'iou' in k)
    assert not any('prompt' in k for e in train[:-1] for k in e)


def test_visualizer_builds_as_browse_dataset_builds_it_and_runs_keep_their_own(trained, tmp_path):
    cfg = Config.fromfile(trained['cfg_path'])
    with DefaultScope.overwrite_default_scope(cfg.default_scope):  # as browse_dataset.py: no name given
        visualizer = VISUALIZERS.build(cfg.visualizer)  # (a Runner gives its experiment name)
    assert isinstance(visualizer, SegLocalVisualizer) and visualizer.instance_name == 'visualizer'
    runner = trained['runner']
    assert runner.visualizer.instance_name == runner.experiment_name and runner.visualizer is not visualizer
    visualizer.dataset_meta = dict(classes=('background', 'shape'), palette=[[0, 0, 0], [255, 0, 0]])
    image = cv2.imread(trained['paths'][0])[..., ::-1].copy()
    sample = SegDataSample()
    sample.gt_sem_seg = PixelData(data=torch.as_tensor(trained['ours'][0])[None])
    out_file = str(tmp_path / 'browse.png')
    visualizer.add_datasample('img', image, sample, draw_pred=False, show=False, out_file=out_file)
    assert np.array(Image.open(out_file)).shape == image.shape


def test_flops_of_the_tensor_mode_without_the_detector(trained):
    """mmseg's get_flops.py traces model(inputs) (mmengine.analysis): tensor mode without data samples prompts
    every image as one where nothing was detected (the detector is not traced), with the same logits."""
    model = build_model(Config.fromfile(trained['cfg_path']).model, seed=0).eval()
    out = get_model_complexity_info(model, (3, 128, 128), show_table=False, show_arch=False)
    by_module = FlopAnalyzer(model, (torch.rand(1, 3, 128, 128), )).by_module()
    assert out['flops'] == by_module[''] > 0 and by_module['backbone'] > 0 and by_module['decode_head'] > 0
    assert out['params'] == sum(p.numel() for p in model.parameters())
    x = torch.rand(1, 3, 128, 128)
    model.prompter.boxes_for = lambda inputs, samples: [None] * len(samples)  # the detector finds nothing
    undetected = model._forward(x, [SegDataSample(metainfo=dict(img_shape=(128, 128)))])
    with torch.no_grad():
        assert torch.equal(model(x), undetected)
