"""Automated prompting: box format, coordinate mapping, fallbacks, caching; the mask-box reference; the prompt."""
import cv2
import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmseg_amsam.models.prompters import (LearnablePrompt, MaskBoxPrompter, SAMPromptEncoder, YOLOBoxPrompter)


class FakeBoxes:

    def __init__(self, xyxy, conf):
        self.xyxy, self.conf = torch.tensor(xyxy, dtype=torch.float32), torch.tensor(conf)

    def __len__(self):
        return len(self.conf)


class FakeDetector:
    """Stands in for ultralytics' YOLO: returns fixed boxes and records what it was given."""

    def __init__(self, xyxy, conf):
        self.xyxy, self.conf, self.calls = xyxy, conf, []

    def predict(self, images, **kwargs):
        self.calls.append([im.shape for im in images])
        return [type('R', (), dict(boxes=FakeBoxes(self.xyxy, self.conf)))() for _ in images]


def sample(path=None, ori=(100, 200), img=(256, 256)):
    meta = dict(ori_shape=ori, img_shape=img, pad_shape=img)
    if path:
        meta['img_path'] = path
    return SegDataSample(metainfo=meta)


def test_highest_confidence_box_mapped_from_non_square_original(tmp_path):
    path = str(tmp_path / 'wide.jpg')
    cv2.imwrite(path, np.full((100, 200, 3), 127, np.uint8))  # h=100, w=200, resized to 256x256 for SAM
    prompter = YOLOBoxPrompter(model='yolov8n.yaml')
    fake = FakeDetector([[10, 20, 50, 60], [100, 25, 200, 75]], [0.3, 0.9])
    object.__setattr__(prompter, 'detector', fake)
    boxes, has_box = prompter(torch.zeros(1, 3, 256, 256), [sample(path)])
    assert boxes.shape == (1, 4) and boxes.dtype == torch.float32 and bool(has_box[0])
    # the 0.9 box (100, 25, 200, 75) in a 200x100 image -> x * 256/200, y * 256/100
    torch.testing.assert_close(boxes[0], torch.tensor([128.0, 64.0, 256.0, 192.0]))
    assert fake.calls == [[(100, 200, 3)]]  # detector saw the original, not the stretched input
    prompter(torch.zeros(1, 3, 256, 256), [sample(path)])
    assert len(fake.calls) == 1  # cached: computed once per image


@pytest.mark.parametrize('fallback,expected_has', [('image', True), ('none', False)])
def test_fallback_when_nothing_detected(fallback, expected_has):
    prompter = YOLOBoxPrompter(model='yolov8n.yaml', fallback=fallback, use_original_image=False)
    object.__setattr__(prompter, 'detector', FakeDetector(np.zeros((0, 4)), np.zeros(0)))
    boxes, has_box = prompter(torch.zeros(2, 3, 64, 96), [sample(img=(64, 96)), sample(img=(64, 96))])
    assert has_box.tolist() == [expected_has] * 2
    if expected_has:
        assert boxes.tolist() == [[0.0, 0.0, 96.0, 64.0]] * 2


def test_real_tiny_yolo_runs_and_respects_conf():
    prompter = YOLOBoxPrompter(model='yolov8n.yaml', conf=0.0, imgsz=64, use_original_image=False)
    assert not any(True for _ in prompter.parameters())  # the detector is not a sub-module
    prompter.train()  # must not start an ultralytics training run
    x = torch.randn(2, 3, 64, 64)
    boxes, has_box = prompter(x, [sample(img=(64, 64)), sample(img=(64, 64))])
    assert boxes.shape == (2, 4) and has_box.all()  # conf 0 keeps the best random box
    assert (boxes[:, 2] >= boxes[:, 0]).all() and (boxes[:, 3] >= boxes[:, 1]).all()
    assert boxes.min() >= -1e-3 and boxes.max() <= 64 + 1e-3
    strict = YOLOBoxPrompter(model='yolov8n.yaml', conf=1.0, imgsz=64, fallback='none', use_original_image=False)
    _, has_box = strict(x, [sample(img=(64, 64)), sample(img=(64, 64))])
    assert not has_box.any()


def test_missing_yolo_weights_error():
    with pytest.raises(FileNotFoundError, match='yolov8n.pt'):
        YOLOBoxPrompter(model='checkpoints/does_not_exist.pt')


def test_mask_box_prompter_and_its_errors():
    gt = torch.zeros(1, 50, 100, dtype=torch.long)
    gt[0, 10:20, 30:60] = 1
    s = sample(ori=(50, 100), img=(100, 200))
    s.gt_sem_seg = PixelData(data=gt)
    boxes, has_box = MaskBoxPrompter().eval()(torch.zeros(1, 3, 100, 200), [s])
    torch.testing.assert_close(boxes[0], torch.tensor([60.0, 20.0, 120.0, 40.0]))  # (30,10,60,20) x 2
    empty = sample(img=(100, 200))
    empty.gt_sem_seg = PixelData(data=torch.zeros(1, 100, 200, dtype=torch.long))
    boxes, has_box = MaskBoxPrompter(fallback='none')(torch.zeros(1, 3, 100, 200), [empty])
    assert not has_box.any()
    with pytest.raises(ValueError, match='needs the ground-truth mask.*YOLOBoxPrompter'):
        MaskBoxPrompter()(torch.zeros(1, 3, 100, 200), [sample(path='x.jpg')])


def test_learnable_prompt_starts_at_the_box_embedding():
    pe = SAMPromptEncoder(img_size=128)
    prompt = LearnablePrompt()
    prompt.init_from(pe.no_mask_embed)
    boxes = torch.tensor([[10.0, 20.0, 60.0, 90.0], [0.0, 0.0, 0.0, 0.0]])
    has_box = torch.tensor([True, False])
    sparse, dense = pe(boxes, has_box, 2)
    box_only = pe.prompt_encoder._embed_boxes(boxes[:1])
    torch.testing.assert_close(sparse[:1], box_only, rtol=1e-5, atol=1e-5)  # batched vs single matmul
    assert torch.equal(sparse[1], pe.prompt_encoder.not_a_point_embed.weight.expand(2, 256))
    s2, d2 = prompt(sparse, dense, has_box)
    assert torch.equal(s2, sparse) and torch.equal(d2, dense)  # step 0: exactly YOLO's box embedding
    with torch.no_grad():
        prompt.box_residual.fill_(1.0)
        prompt.dense_embed.add_(2.0)
    s3, d3 = prompt(sparse, dense, has_box)
    assert torch.equal(s3[0], sparse[0] + 1) and torch.equal(s3[1], sparse[1])  # box-less image untouched
    assert torch.equal(d3, dense + 2)
    sparse0, _ = pe(None, None, 3)
    assert sparse0.shape == (3, 0, 256)


def test_detector_does_not_change_torch_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    prompter = YOLOBoxPrompter(model='yolov8n.yaml', imgsz=64, use_original_image=False)
    prompter(torch.randn(1, 3, 64, 64), [sample(img=(64, 64))])
    assert torch.get_num_threads() == 2  # ultralytics would leave the whole process on 1 thread
    torch.set_num_threads(before)
