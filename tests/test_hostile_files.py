"""Hostile and damaged detector files (issue 19, 3): a YOLO .pt whose unpickling would run code is refused with one
message (given as the prompter's model, or planted in the adaptation cache), the real formats still load, and a
truncated file is one message with exit code 2 from a CLI."""
import os
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from cfg_helpers import ROOT, demo_cfg
from mmseg_amsam.models.prompters import YOLOBoxPrompter
from mmseg_amsam.models.prompters import detector_adaptation
from mmseg_amsam.models.prompters.detector_adaptation import adapt_yolo
from mmseg_amsam.models.prompters.yolo_weights import DetectorWeightsError, load_yolo
from mmseg_amsam.utils.file_stamp import file_sha256

TOY_YOLO = osp.join(ROOT, 'toy_world', 'weights', 'toy_yolov8.pt')


class WritesMarker:
    """Unpickling it calls ``open(marker, 'w')``: the file appears if and only if the pickle's code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, 'w'))


def malicious_pt(path, marker):
    torch.save({'model': WritesMarker(marker), 'train_args': {}}, str(path))
    return str(path)


def assert_one_clean_line(message):
    assert '\n' not in message and '\x1b' not in message
    assert 'weights_only=False' not in message and 'will likely succeed' not in message


def test_a_yolo_file_that_would_run_code_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / 'marker'
    bad = malicious_pt(tmp_path / 'yolov8n.pt', marker)
    with pytest.raises(DetectorWeightsError) as err:
        YOLOBoxPrompter(model=bad)
    assert not marker.exists()
    message = str(err.value)
    assert message.startswith(f"YOLO weights '{bad}' refused: besides an ultralytics model, the file names io.open")
    assert 'nothing was run' in message
    assert_one_clean_line(message)


def test_real_yolo_formats_still_load(tmp_path):
    """The committed toy YOLO (an ultralytics training's output) and a yaml; the same network either way."""
    prompter = YOLOBoxPrompter(model=TOY_YOLO, imgsz=128)
    assert prompter.class_names == {0: 'ellipse', 1: 'rectangle', 2: 'triangle', 3: 'star'}
    from ultralytics.nn.tasks import torch_safe_load
    state = torch_safe_load(TOY_YOLO, safe_only=True)[0]['model'].float().state_dict()
    loaded = prompter.detector.model.state_dict()
    assert sorted(loaded) == sorted(state) and all(torch.equal(loaded[k], state[k]) for k in state)
    assert len(YOLOBoxPrompter(model='yolov8n.yaml').class_names) == 80


def test_trust_weights_file_is_the_explicit_switch_for_a_legacy_file(tmp_path):
    """With the switch, ultralytics' default (full unpickling) is used: the file's code runs, as documented."""
    marker = tmp_path / 'marker'
    bad = malicious_pt(tmp_path / 'legacy.pt', marker)
    with pytest.raises(Exception):
        load_yolo(bad, trust_weights_file=True)  # runs the code, then is no model
    assert marker.exists()


def test_a_truncated_yolo_file_is_one_message(tmp_path):
    raw = open(TOY_YOLO, 'rb').read()
    cut = tmp_path / 'cut.pt'
    cut.write_bytes(raw[:len(raw) // 2])
    with pytest.raises(DetectorWeightsError) as err:
        load_yolo(str(cut))
    message = str(err.value)
    assert message.startswith(f"Cannot read YOLO weights '{cut}' (RuntimeError: PytorchStreamReader failed")
    assert 'truncated, corrupt' in message
    assert_one_clean_line(message)


def test_a_damaged_weights_file_given_by_bare_name_is_never_deleted(tmp_path, monkeypatch):
    """ultralytics takes a bare name ('yolov8n.pt', our default) that fails to load for a corrupt download of its
    own and deletes it: the user's file must survive, the message names it."""
    raw = open(TOY_YOLO, 'rb').read()
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'yolov8n.pt').write_bytes(raw[:len(raw) // 2])
    with pytest.raises(DetectorWeightsError, match="Cannot read YOLO weights 'yolov8n.pt'"):
        load_yolo('yolov8n.pt')
    assert (tmp_path / 'yolov8n.pt').read_bytes() == raw[:len(raw) // 2]


@pytest.mark.parametrize('hash_seed', ['0', '5'])
def test_importing_the_plugin_leaves_ultralytics_restricted_loading_intact(tmp_path, hash_seed):
    """ultralytics' restricted loader allows its own builtins.getattr (YOLO11 / segmentation files pickle
    ``Detect.forward`` through it); torch keeps one object per name, so a process-wide getattr of ours would win or
    lose by the hash seed. Each run in a fresh interpreter with a fixed seed."""
    code = ('import sys, torch\n'
            'import mmseg_amsam\n'
            'from ultralytics.nn.modules.head import Detect\n'
            'from ultralytics.nn.tasks import torch_safe_load\n'
            'torch.save({"fwd": Detect.forward}, sys.argv[1])\n'
            'ckpt, _ = torch_safe_load(sys.argv[1], safe_only=True)\n'
            'print(ckpt["fwd"] is Detect.forward)\n')
    out = subprocess.run([sys.executable, '-c', code, str(tmp_path / 'getattr.pt')], capture_output=True, text=True,
                         timeout=300, cwd=ROOT, env=dict(os.environ, PYTHONHASHSEED=hash_seed, YOLO_OFFLINE='1'))
    assert out.returncode == 0 and out.stdout.strip().splitlines()[-1] == 'True', out.stderr[-1500:]


def test_a_truncated_yolo_file_through_the_cli_exits_2_with_one_message(demo_root, tmp_path):
    raw = open(TOY_YOLO, 'rb').read()
    cut = tmp_path / 'cut.pt'
    cut.write_bytes(raw[:len(raw) // 2])
    config = str(tmp_path / 'demo_small.py')
    demo_cfg(demo_root, tmp_path / 'work').dump(config)
    proc = subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'test.py'), config, 'none', '--work-dir',
                           str(tmp_path / 'work'), '--cfg-options', f'model.prompter.model={cut}'],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr and proc.stderr.count('error: ') == 1
    assert proc.stderr.strip().splitlines()[-1].startswith(f"error: Cannot read YOLO weights '{cut}'")


def _tiny_split(root):
    for sub in ('img_dir/train', 'ann_dir/train', 'splits'):
        os.makedirs(root / sub, exist_ok=True)
    for i, (x1, y1, x2, y2) in enumerate([(8, 10, 40, 50), (20, 6, 58, 44)]):
        img = np.full((64, 64, 3), 30, np.uint8)
        img[y1:y2, x1:x2] = (230, 200, 40)
        mask = np.zeros((64, 64), np.uint8)
        mask[y1:y2, x1:x2] = 1
        cv2.imwrite(str(root / 'img_dir' / 'train' / f'{i}.png'), img)
        cv2.imwrite(str(root / 'ann_dir' / 'train' / f'{i}.png'), mask)
    (root / 'splits' / 'train_2shot.txt').write_text('0\n1\n')
    return str(root)


def test_a_planted_adaptation_cache_entry_is_never_loaded(tmp_path, monkeypatch):
    root = _tiny_split(tmp_path / 'data')
    cache = str(tmp_path / 'cache')
    kwargs = dict(epochs=1, imgsz=64, keep_class=0, cache_dir=cache, mosaic=0.0)
    adapted = adapt_yolo(TOY_YOLO, root, 'splits/train_2shot.txt', **kwargs)
    assert open(adapted + '.sha256').read().strip() == file_sha256(adapted)
    assert adapt_yolo(TOY_YOLO, root, 'splits/train_2shot.txt', **kwargs) == adapted  # verified: reused
    logged = []
    monkeypatch.setattr(detector_adaptation, 'print_log', lambda msg, **kw: logged.append(msg))
    marker = tmp_path / 'marker'
    for planted_digest in (False, True):  # planted alone, and planted with a made-up digest beside it
        malicious_pt(adapted, marker)
        if planted_digest:
            open(adapted + '.sha256', 'w').write('0' * 64 + '\n')
        else:
            os.remove(adapted + '.sha256')
        assert adapt_yolo(TOY_YOLO, root, 'splits/train_2shot.txt', **kwargs) == adapted
        assert not marker.exists()
        why = 'does not match the SHA-256 recorded' if planted_digest else 'has no recorded SHA-256'
        assert logged.pop().startswith(f'detector adaptation: cached detector {adapted} {why}')
        assert file_sha256(adapted) == open(adapted + '.sha256').read().strip()  # trained again, replaced
        assert load_yolo(adapted).names == {0: 'ellipse', 1: 'rectangle', 2: 'triangle', 3: 'star'}


def test_an_mmdet_checkpoint_that_would_run_code_is_one_message(tmp_path):
    from mmseg_amsam.models.prompters import MMDetBoxPrompter
    from test_prompt_mmdet import CONFIG
    config = tmp_path / 'tiny_retinanet.py'
    config.write_text(CONFIG)
    marker = tmp_path / 'marker'
    bad = malicious_pt(tmp_path / 'retinanet.pth', marker)
    with pytest.raises(DetectorWeightsError) as err:
        MMDetBoxPrompter(str(config), checkpoint=bad)
    assert not marker.exists()
    message = str(err.value)
    assert message.startswith(f"MMDetBoxPrompter: cannot read checkpoint '{bad}' (UnpicklingError: Unsupported "
                              'global: GLOBAL io.open')
    assert_one_clean_line(message)
