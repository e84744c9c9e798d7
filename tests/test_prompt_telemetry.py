"""Prompt telemetry: detection rate, fallbacks and prompt-box IoU with the GT box, on a fixture with known boxes, and
their publication through mmengine (PromptTelemetryHook)."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample
from torch import nn

from mmseg_amsam.engine.hooks import PromptTelemetryHook
from mmseg_amsam.engine.hooks.prompt_telemetry_hook import hub_key
from mmseg_amsam.models.prompters import YOLOBoxPrompter

# image fill value -> (detections x1 y1 x2 y2 conf cls, GT mask rows, GT mask cols); images 100 x 100
FIXTURE = {
    10: ([[10, 10, 50, 50, 0.9, 0]], slice(10, 50), slice(10, 50)),  # IoU 1
    20: ([[0, 0, 50, 100, 0.8, 0]], slice(0, 100), slice(0, 100)),  # IoU 0.5
    30: ([], slice(0, 100), slice(0, 25)),  # nothing detected: whole-image box, IoU 0.25
}


def fixture_prompter(**kwargs):
    prompter = YOLOBoxPrompter(model='yolov8n.yaml', **kwargs)
    prompter.detect = lambda image, device: np.array(FIXTURE[int(image[0, 0, 0])][0], np.float64).reshape(-1, 6)
    return prompter


def fixture_samples():
    samples = []
    for value, (_, rows, cols) in FIXTURE.items():
        gt = torch.zeros(1, 100, 100, dtype=torch.long)
        gt[0, rows, cols] = 1
        s = SegDataSample(metainfo=dict(ori_shape=(100, 100), img_shape=(100, 100), pad_shape=(100, 100),
                                        scale_factor=(1.0, 1.0), ori_img=np.full((100, 100, 3), value, np.uint8)))
        s.gt_sem_seg = PixelData(data=gt)
        samples.append(s)
    return samples


def test_telemetry_numbers_on_known_boxes():
    prompter = fixture_prompter().eval()
    samples = fixture_samples()
    boxes, has_box = prompter(torch.zeros(3, 3, 100, 100), samples)
    assert has_box.tolist() == [True, True, False]
    assert [s.prompt_iou for s in samples] == [1.0, 0.5, 0.25]
    assert [s.prompt_fallback for s in samples] == [False, False, True]
    assert samples[2].prompt_box is None and boxes[2].tolist() == [0.0, 0.0, 100.0, 100.0]
    summary = prompter.telemetry['eval'].summary()
    assert summary == dict(prompts=3, detections=2, fallbacks=1, detection_rate=2 / 3, fallback_rate=1 / 3,
                           box_iou=pytest.approx(1.75 / 3), **{'box_iou_ge_0.5': 2 / 3}, iou_images=3)
    assert prompter.telemetry['train'].summary()['prompts'] == 0  # eval and train are counted apart


class Logger:

    def __init__(self):
        self.infos, self.warnings = [], []

    def info(self, msg):
        self.infos.append(msg)

    def warning(self, msg):
        self.warnings.append(msg)


def test_hook_publishes_scalars_and_warns_once():
    model = nn.Module()
    model.prompter = fixture_prompter(warn_fallback_rate=0.2).eval()
    hub = MessageHub.get_instance('test_prompt_telemetry_hook')
    runner = SimpleNamespace(model=model, logger=Logger(), message_hub=hub, train_loop=object(),
                             train_dataloader=[None, None])  # an epoch of 2 iterations
    hook = PromptTelemetryHook()
    for _ in range(2):  # two validation runs: the counts start afresh, the warning comes once
        hook.before_val_epoch(runner)
        model.prompter(torch.zeros(3, 3, 100, 100), fixture_samples())
        hook.after_val_epoch(runner)
    assert hub.get_scalar(hub_key('val', 'detection_rate')).current() == pytest.approx(2 / 3)
    assert hub.get_scalar(hub_key('val', 'fallbacks')).current() == 1
    assert hub.get_scalar(hub_key('val', 'box_iou')).current() == pytest.approx(1.75 / 3)
    assert hub.get_scalar(hub_key('val', 'box_iou_ge_0.5')).current() == pytest.approx(2 / 3)
    assert runner.logger.infos[-1] == ('YOLOBoxPrompter (val): 3 prompts: 2 detected (66.7%), 1 fallbacks; '
                                       'prompt-box IoU with the GT box 0.583 (mean over 3), 66.7% >= 0.5')
    assert len(runner.logger.warnings) == 1
    assert 'FELL BACK on 1 of 3 images (33.3% > warn_fallback_rate 20%)' in runner.logger.warnings[0]
    hook.before_train_epoch(runner)
    model.prompter.train()(torch.zeros(3, 3, 100, 100), fixture_samples()[:2])
    hook.after_train_iter(runner, batch_idx=0)
    assert hub_key('train', 'detection_rate') not in hub.log_scalars  # published at the epoch's last iteration,
    hook.after_train_iter(runner, batch_idx=1)  # before LoggerHook writes it (it runs after this hook)
    assert hub.get_scalar(hub_key('train', 'detection_rate')).current() == 1.0
    assert hub_key('train', 'detection_rate') == 'train/train/prompt_detection_rate'  # logged: train/prompt_...
    assert len(runner.logger.warnings) == 1
