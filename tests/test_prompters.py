"""Automated prompting: one box per image whatever the batch or input type, class names, fallbacks, caching, the
mask-box reference, the learnable prompt."""
import cv2
import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmseg_amsam.models.prompters import LearnablePrompt, MaskBoxPrompter, SAMPromptEncoder, YOLOBoxPrompter


class FakeDetector:
    """Stands in for ultralytics' YOLO at its boundary: fixed boxes, records the image shapes it was given."""

    def __init__(self, xyxy, conf, cls=None):
        self.xyxy, self.conf = np.asarray(xyxy, np.float64).reshape(-1, 4), np.asarray(conf, np.float64)
        self.cls = np.zeros(len(self.conf)) if cls is None else np.asarray(cls, np.float64)
        self.calls = []
        self.names = {0: 'person'}

    def predict(self, image, **kwargs):
        self.calls.append(image.shape)
        keep = self.conf >= kwargs.get('conf', 0.0)
        if kwargs.get('classes') is not None:
            keep &= np.isin(self.cls, kwargs['classes'])
        boxes = type('B', (), dict(xyxy=torch.tensor(self.xyxy[keep]), conf=torch.tensor(self.conf[keep]),
                                   cls=torch.tensor(self.cls[keep]), __len__=lambda s: int(keep.sum())))()
        return [type('R', (), dict(boxes=boxes))()]


def sample(path=None, ori=(100, 200), img=(256, 256), scale=None, **meta):
    meta.update(ori_shape=ori, img_shape=img, pad_shape=img)
    meta['scale_factor'] = scale or (img[1] / ori[1], img[0] / ori[0])
    if path:
        meta['img_path'] = path
    return SegDataSample(metainfo=meta)


def with_fake(prompter, fake):
    object.__setattr__(prompter, 'detector', fake)
    return prompter


def test_highest_confidence_box_mapped_from_non_square_original(tmp_path):
    path = str(tmp_path / 'wide.jpg')
    cv2.imwrite(path, np.full((100, 200, 3), 127, np.uint8))  # h=100, w=200, resized to 256x256 for SAM
    fake = FakeDetector([[10, 20, 50, 60], [100, 25, 200, 75]], [0.3, 0.9])
    prompter = with_fake(YOLOBoxPrompter(model='yolov8n.yaml'), fake)
    s = sample(path)
    boxes, has_box = prompter(torch.zeros(1, 3, 256, 256), [s])
    assert boxes.shape == (1, 4) and boxes.dtype == torch.float32 and bool(has_box[0])
    # the 0.9 box (100, 25, 200, 75) in a 200x100 image -> x * 256/200, y * 256/100
    torch.testing.assert_close(boxes[0], torch.tensor([128.0, 64.0, 256.0, 192.0]))
    assert s.prompt_box == (128.0, 64.0, 256.0, 192.0) and s.prompt_fallback is False and s.prompt_iou is None
    assert fake.calls == [(100, 200, 3)]  # detector saw the original, not the stretched input
    prompter(torch.zeros(1, 3, 256, 256), [sample(path)])
    assert len(fake.calls) == 1  # cached: computed once per image
    flipped = sample(path, flip=True, flip_direction='horizontal')  # same detections, mapped through the flip
    boxes, _ = prompter(torch.zeros(1, 3, 256, 256), [flipped])
    assert boxes[0].tolist() == [0.0, 64.0, 128.0, 192.0] and len(fake.calls) == 1
    prompter.conf = 0.95  # a setting the detections depend on is part of the key: detected again, nothing found
    _, has_box = prompter(torch.zeros(1, 3, 256, 256), [sample(path)])
    assert len(fake.calls) == 2 and not has_box.any()


@pytest.mark.parametrize('fallback', ['image', 'none'])
def test_fallback_is_not_a_found_box(fallback):
    prompter = YOLOBoxPrompter(model='yolov8n.yaml', fallback=fallback, use_original_image=False)
    with_fake(prompter, FakeDetector(np.zeros((0, 4)), np.zeros(0)))
    samples = [sample(ori=(64, 96), img=(64, 96)), sample(ori=(64, 96), img=(64, 96))]
    boxes, has_box = prompter(torch.zeros(2, 3, 64, 96), samples)
    assert has_box.tolist() == [False, False]  # countable: nothing was found
    assert prompter.prompted(has_box).tolist() == [fallback == 'image'] * 2  # what SAM gets
    assert boxes.tolist() == [[0.0, 0.0, 96.0, 64.0] if fallback == 'image' else [0.0] * 4] * 2
    assert [s.prompt_box for s in samples] == [None, None] and all(s.prompt_fallback for s in samples)
    assert prompter.telemetry['train'].summary()['fallbacks'] == 2


def test_real_tiny_yolo_box_does_not_depend_on_the_batch(tmp_path):
    """A real ultralytics detector (random yolov8n, conf 0 keeps its best box): each image of a mixed-size batch
    gets exactly the box it gets alone, from a file or from the same pixels as an array."""
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, shape, dtype=np.uint8) for shape in [(60, 150, 3), (120, 90, 3), (70, 70, 3)]]
    paths = []
    for i, image in enumerate(images):
        paths.append(str(tmp_path / f'{i}.png'))
        cv2.imwrite(paths[-1], image)
    prompter = YOLOBoxPrompter(model='yolov8n.yaml', conf=0.0, imgsz=64, cache=False)
    assert not any(True for _ in prompter.parameters())  # the detector is not a sub-module
    prompter.train()  # must not start an ultralytics training run
    x = torch.zeros(3, 3, 64, 64)

    def samples(**extra):
        return [sample(p, ori=im.shape[:2], img=(64, 64), **{k: v[i] for k, v in extra.items()})
                for i, (p, im) in enumerate(zip(paths, images))]
    batched, found = prompter(x, samples())
    assert found.all()
    alone = torch.cat([prompter(x[i:i + 1], samples()[i:i + 1])[0] for i in range(3)])
    assert torch.equal(batched, alone)
    arrays = [sample(None, ori=im.shape[:2], img=(64, 64), ori_img=im) for im in images]
    assert torch.equal(prompter(x, arrays)[0], batched)  # path vs array: same pixels, same box
    assert (batched[:, 2] > batched[:, 0]).all() and batched.min() >= -1e-3 and batched.max() <= 64 + 1e-3
    strict = YOLOBoxPrompter(model='yolov8n.yaml', conf=1.0, imgsz=64, fallback='none', use_original_image=False)
    _, has_box = strict(torch.randn(2, 3, 64, 64), [sample(img=(64, 64), ori=(64, 64))] * 2)
    assert not has_box.any()


def test_classes_by_name_or_id_checked_at_build():
    assert YOLOBoxPrompter(model='yolov8n.yaml', classes=['person', 'car', 16]).class_ids == [0, 2, 16]
    assert YOLOBoxPrompter(model='yolov8n.yaml', classes='Person').class_ids == [0]  # case-insensitive
    with pytest.raises(ValueError) as err:
        YOLOBoxPrompter(model='yolov8n.yaml', classes=['lesion', 80])
    msg = str(err.value)
    assert "['lesion', 80]" in msg and "0 'person'" in msg and "79 'toothbrush'" in msg and 'classes' in msg


def test_class_filter_reaches_the_detector(tmp_path):
    prompter = YOLOBoxPrompter(model='yolov8n.yaml', classes=['car'], use_original_image=False)
    with_fake(prompter, FakeDetector([[0, 0, 10, 10], [5, 5, 20, 20]], [0.9, 0.5], cls=[0, 2]))
    boxes, _ = prompter(torch.zeros(1, 3, 32, 32), [sample(ori=(32, 32), img=(32, 32))])
    assert boxes[0].tolist() == [5.0, 5.0, 20.0, 20.0]  # the less confident car, not the person


def test_missing_or_text_yolo_weights_error(tmp_path):
    with pytest.raises(FileNotFoundError, match='yolov8n.pt'):
        YOLOBoxPrompter(model='checkpoints/does_not_exist.pt')
    text = tmp_path / 'weights.pt'
    text.write_text('version https://git-lfs.github.com/spec/v1\noid sha256:abc\n')
    with pytest.raises(ValueError) as err:
        YOLOBoxPrompter(model=str(text))
    assert str(text) in str(err.value) and 'text file' in str(err.value) and 'git-lfs' in str(err.value)


def test_mask_box_prompter_in_both_frames_and_its_errors():
    # test pipelines: GT at the original size (50 x 100), input 100 x 200 -> mapped by scale_factor
    gt = torch.zeros(1, 50, 100, dtype=torch.long)
    gt[0, 10:20, 30:60] = 1
    s = sample(ori=(50, 100), img=(100, 200))
    s.gt_sem_seg = PixelData(data=gt)
    boxes, has_box = MaskBoxPrompter().eval()(torch.zeros(1, 3, 100, 200), [s])
    torch.testing.assert_close(boxes[0], torch.tensor([60.0, 20.0, 120.0, 40.0]))  # (30,10,60,20) x 2
    assert s.prompt_iou == 1.0
    # training: keep-ratio resize (50x100 -> 64x128) then padding to 128x128 (label 255): the box is in input
    # pixels already; scaling it by gt.shape -> img_shape would squeeze it
    padded = torch.full((1, 128, 128), 255, dtype=torch.long)
    padded[0, :64, :] = 0
    padded[0, 13:26, 38:77] = 1
    t = sample(ori=(50, 100), img=(128, 128), scale=(1.28, 1.28))
    t.gt_sem_seg = PixelData(data=padded)
    boxes, _ = MaskBoxPrompter().train()(torch.zeros(1, 3, 128, 128), [t])
    assert boxes[0].tolist() == [38.0, 13.0, 77.0, 26.0]
    empty = sample(ori=(100, 200), img=(100, 200))
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
    prompter(torch.randn(1, 3, 64, 64), [sample(img=(64, 64), ori=(64, 64))])
    assert torch.get_num_threads() == 2  # ultralytics would leave the whole process on 1 thread
    torch.set_num_threads(before)


@pytest.mark.parametrize('setting, value', [('imgsz', -64), ('imgsz', 0), ('imgsz', 100), ('imgsz', 64.0),
                                            ('imgsz', [64, -32]), ('iou', 1.5), ('iou', -0.1), ('conf', 2),
                                            ('conf', 'high')])
def test_detector_settings_out_of_range_are_one_message_at_build(setting, value):
    """imgsz=-64 used to make every image fall back silently; each bad value names its setting and the fix."""
    with pytest.raises(ValueError) as err:
        YOLOBoxPrompter(model='yolov8n.yaml', **{setting: value})
    assert str(err.value).startswith(f'YOLOBoxPrompter: model.prompter.{setting}={value!r} ')
    assert f'--cfg-options model.prompter.{setting}=' in str(err.value)


def test_valid_detector_sizes_are_kept():
    assert YOLOBoxPrompter(model='yolov8n.yaml', imgsz=[64, 96], iou=1.0, conf=0.0).imgsz == [64, 96]
