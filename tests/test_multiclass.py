"""Multi-class AM-SAM (class_prompts): one prompt per class reaches the decoder, per-class boxes and telemetry,
the semantic map from the per-class logits, binary unchanged."""
import copy
import re

import numpy as np
import pytest
import torch
from mmengine.logging import MMLogger
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from cfg_helpers import model_cfg
from mmseg_amsam.evaluation import DiceMetric
from mmseg_amsam.models.prompters import MaskBoxPrompter, YOLOBoxPrompter
from test_prompters import FakeDetector, with_fake

SIZE = 128
CLASS_BOXES = {1: (10, 20, 50, 60), 2: (70, 30, 120, 100)}  # x1 y1 x2 y2 of each class's pixels in the fixture


def build(num_classes=3, seed=0, **overrides):
    torch.manual_seed(seed)
    overrides.setdefault('prompter', dict(type='MaskBoxPrompter'))
    return MODELS.build(model_cfg(class_prompts=num_classes > 2 or overrides.pop('force_class_prompts', False),
                                  decode_head=dict(num_classes=num_classes), **overrides))


def fixture(n=2, labels=(1, 2)):
    """``n`` images whose GT has class 1 and class 2 rectangles (:data:`CLASS_BOXES`); image 1 lacks class 2."""
    g = torch.Generator().manual_seed(0)
    inputs = torch.randn(n, 3, SIZE, SIZE, generator=g)
    samples = []
    for i in range(n):
        gt = torch.zeros(1, SIZE, SIZE, dtype=torch.long)
        for label in labels:
            if label == 2 and i == 1:
                continue
            x1, y1, x2, y2 = CLASS_BOXES[label]
            gt[0, y1:y2, x1:x2] = label
        s = SegDataSample(metainfo=dict(ori_shape=(SIZE, SIZE), img_shape=(SIZE, SIZE), pad_shape=(SIZE, SIZE),
                                        padding_size=[0, 0, 0, 0]))
        s.gt_sem_seg = PixelData(data=gt)
        samples.append(s)
    return inputs, samples


def test_each_class_prompt_reaches_the_decoder_with_its_box_and_learned_prompt():
    model = build(prompter=dict(type='MaskBoxPrompter', fallback='none'))
    with torch.no_grad():  # distinct learned prompts per class, to see which one reaches which decoder pass
        model.learnable_prompt.dense_embed[1] += 1.0
        model.learnable_prompt.box_residual.normal_()
    seen = []
    model.decode_head.register_forward_hook(lambda m, args, out: seen.append([a.clone() for a in args]))
    inputs, samples = fixture()
    logits = model._forward(inputs, samples)
    assert logits.shape == (2, 3, SIZE // 4, SIZE // 4)
    # image 0 has both classes (one batched pass of its 2 prompts + image 1's class-1 prompt); image 1's class 2 is
    # absent: no box, decoded in the box-less pass
    (feats, _, sparse, dense), (feats_nobox, _, sparse_nobox, dense_nobox) = seen
    assert sparse.shape[:2] == (3, 2) and sparse_nobox.shape[:2] == (1, 0)
    embeddings = model.extract_feat(inputs)
    torch.testing.assert_close(feats, embeddings[[0, 0, 1]])
    torch.testing.assert_close(feats_nobox, embeddings[[1]])
    encoder, prompt = model.prompt_encoder, model.learnable_prompt
    for row, (label, cls) in enumerate([(1, 0), (2, 1), (1, 0)]):
        box, _ = encoder(torch.tensor([CLASS_BOXES[label]], dtype=torch.float32), torch.tensor([True]), 1)
        torch.testing.assert_close(sparse[row], box[0] + prompt.box_residual[cls])
        torch.testing.assert_close(dense[row, :, 0, 0], prompt.dense_embed[cls])
    torch.testing.assert_close(dense_nobox[0, :, 0, 0], prompt.dense_embed[1])
    assert [s.prompt_box for s in samples] == [[CLASS_BOXES[1], CLASS_BOXES[2]], [CLASS_BOXES[1], None]]
    assert [s.prompt_fallback for s in samples] == [[False, False], [False, True]]
    assert samples[0].prompt_iou == [1.0, 1.0] and samples[1].prompt_iou == [1.0, None]


def test_semantic_map_is_background_zero_and_per_class_scores():
    head = build().decode_head
    per_prompt = torch.tensor([[[1.0]], [[3.0]],  # image 0, class 1: bg 1, fg 3 -> s = 2
                               [[0.5]], [[-1.0]],  # image 0, class 2: s = -1.5
                               [[2.0]], [[1.0]],  # image 1, class 1: s = -1
                               [[0.0]], [[0.5]]]).reshape(4, 2, 1, 1)  # image 1, class 2: s = 0.5
    merged = head.merge_class_prompts(per_prompt)
    torch.testing.assert_close(merged.flatten(1), torch.tensor([[0.0, 2.0, -1.5], [0.0, -1.0, 0.5]]))
    # each prompt's own (background, class) softmax is the sigmoid of its score
    torch.testing.assert_close(per_prompt.softmax(1)[:, 1].flatten(), torch.sigmoid(torch.tensor(
        [2.0, -1.5, -1.0, 0.5])))


def test_one_class_with_class_prompts_is_the_binary_model():
    binary = build(num_classes=2)
    per_class = build(num_classes=2, force_class_prompts=True)
    assert per_class.class_prompts and not binary.class_prompts
    per_class.load_state_dict(binary.state_dict())  # same parameters, same shapes
    inputs, samples = fixture(labels=(1, ))
    with torch.no_grad():
        a, b = binary._forward(inputs, copy.deepcopy(samples)), per_class._forward(inputs, copy.deepcopy(samples))
        loss_a = binary.loss(inputs, copy.deepcopy(samples))
        loss_b = per_class.loss(inputs, copy.deepcopy(samples))
    torch.testing.assert_close(a.softmax(1), b.softmax(1), rtol=0, atol=1e-6)
    for key in ('decode.loss_ce', 'decode.loss_dice'):
        torch.testing.assert_close(loss_a[key], loss_b[key], rtol=0, atol=1e-6)


def test_class_map_gives_each_class_its_most_confident_box():
    # detector classes 0 'ellipse', 1 'rectangle', 2 'star'; dataset labels: ellipse 1, rectangle and star 2
    fake = FakeDetector([[0, 0, 10, 10], [5, 5, 40, 40], [1, 1, 20, 20], [50, 50, 90, 90], [2, 2, 9, 9]],
                        [0.5, 0.7, 0.9, 0.8, 0.95], cls=[0, 1, 0, 2, 3])
    fake.names = {0: 'ellipse', 1: 'rectangle', 2: 'star', 3: 'triangle'}
    with pytest.raises(ValueError, match=r"\(class_map\): classes \['ellipse'\] are not classes of this detector"):
        YOLOBoxPrompter(model='yolov8n.yaml', class_map={'ellipse': 1})  # checked at build (an 80-class COCO yaml)
    prompter = with_fake(YOLOBoxPrompter(model='yolov8n.yaml', use_original_image=False), fake)
    prompter.class_map = {'ellipse': 1, 1: 2, 'star': 2}
    prompter.resolve_classes()  # what the build does once the detector is loaded
    assert prompter.label_of == {0: 1, 1: 2, 2: 2} and prompter.class_ids == [0, 1, 2]  # triangle filtered out
    prompter.set_prompt_labels([1, 2, 3])
    boxes, has_box = prompter(torch.zeros(1, 3, 128, 128), [SegDataSample(metainfo=dict(img_shape=(128, 128)))])
    assert boxes.shape == (1, 3, 4) and has_box.tolist() == [[True, True, False]]
    assert boxes[0, :2].tolist() == [[1, 1, 20, 20], [50, 50, 90, 90]]  # conf 0.9 of label 1, 0.8 of label 2
    assert boxes[0, 2].tolist() == [0, 0, 128, 128]  # label 3: nothing maps to it, the whole-image fallback
    with pytest.raises(ValueError, match='needs model.prompter.class_map'):
        with_fake(YOLOBoxPrompter(model='yolov8n.yaml'), fake).set_prompt_labels([1, 2])
    with pytest.raises(ValueError, match='does not prompt'):
        prompter.set_prompt_labels([1])  # class_map maps to label 2, which a 2-class model does not have


def test_mask_box_prompter_and_telemetry_per_class():
    prompter = MaskBoxPrompter()
    prompter.set_prompt_labels([1, 2])
    prompter.eval()
    _, samples = fixture()
    boxes, has_box = prompter(torch.zeros(2, 3, SIZE, SIZE), samples)
    assert has_box.tolist() == [[True, True], [True, False]]
    assert boxes[1, 1].tolist() == [0, 0, SIZE, SIZE]
    summary = prompter.telemetry['eval'].summary()
    assert (summary['prompts'], summary['detections']) == (4, 3)
    per_class = prompter.telemetry['eval'].class_counts([1, 2])
    assert per_class[:, :3].tolist() == [[2, 2, 2], [2, 1, 1]]  # prompts, detections, images with an IoU


def test_dice_table_has_each_class_prompt_columns(tmp_path):
    log_file = tmp_path / 'dice_mc.log'
    MMLogger.get_instance('test_dice_mc_table', log_file=str(log_file))
    metric = DiceMetric()
    metric.dataset_meta = dict(classes=('background', 'ellipse', 'rectangle'))
    gt = np.array([[1, 1, 2, 2], [0, 0, 0, 0]])
    pred = np.array([[1, 2, 2, 2], [0, 0, 0, 1]])
    samples = []
    for fallback, iou in (([False, True], [0.8, None]), ([False, False], [0.6, 0.3])):
        samples.append(dict(pred_sem_seg=dict(data=torch.as_tensor(pred)[None]),
                            gt_sem_seg=dict(data=torch.as_tensor(gt)[None]), prompt_fallback=fallback,
                            prompt_iou=iou))
    metric.process({}, samples)
    result = metric.evaluate(2)
    # class 1: |A| 2, |B| 2, inter 1 -> 50 %; class 2: |A| 3, |B| 2, inter 2 -> 80 % (in both images)
    assert result['Dice.ellipse'] == pytest.approx(50.0) and result['Dice.rectangle'] == pytest.approx(80.0)
    text = re.sub(' +', ' ', log_file.read_text())
    assert '| ellipse | 50.00 | 50.00 | 100.00 | 0 | 0.700 | 100.00 |' in text
    assert '| rectangle | 80.00 | 80.00 | 50.00 | 1 | 0.300 | 0.00 |' in text


def test_inference_outputs_one_box_per_class_in_original_pixels():
    from mmseg_amsam.apis.drawing import overlay
    from mmseg_amsam.models.prompters.box_geometry import prompt_box_in_original
    meta = dict(ori_shape=(64, 256), img_shape=(128, 128), scale_factor=(0.5, 2.0),
                prompt_box=[(10.0, 20.0, 50.0, 60.0), None])
    assert prompt_box_in_original(meta) == [(20.0, 10.0, 100.0, 30.0), None]  # x / 0.5, y / 2
    drawn = overlay(np.zeros((64, 256, 3), np.uint8), None, [(20.0, 10.0, 100.0, 30.0), (0, 0, 8, 8)],
                    thickness=1)
    assert drawn[10, 20:100].any(axis=1).all() and drawn[0, 0:8].any(axis=1).all() and not drawn[40, 150].any()


def test_multiclass_config_trains_every_class_prompt_through_the_runner(tmp_path):
    import os.path as osp

    from mmengine.config import Config
    from mmengine.runner import Runner

    from cfg_helpers import ROOT, point_at, shrink
    from mmseg_amsam.datasets import generate_demo_dataset
    root = generate_demo_dataset(tmp_path / 'data', num_train=4, num_test=2, size=64, multiclass=True)
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'amsam-gtbox_demo_multiclass.py'))
    point_at(cfg, root)
    shrink(cfg, 64)
    cfg.model.sam_checkpoint = None  # the tiny random SAM: this checks the wiring, the toy table the learning
    cfg.train_cfg.max_epochs = 2
    cfg.work_dir = str(tmp_path / 'run')
    cfg.default_hooks.logger.interval = 1
    runner = Runner.from_cfg(cfg)
    before = runner.model.learnable_prompt.dense_embed.detach().clone()
    runner.train()
    after = runner.model.learnable_prompt.dense_embed.detach()
    assert before.shape == (2, 96) and bool((after != before).any(dim=1).all())  # both classes' prompts learned
    metrics = runner.test()
    assert {'Dice.ellipse', 'Dice.rectangle'} <= set(metrics)
    hub = runner.message_hub  # the telemetry hook's scalars: per class, and their sum over the classes

    def fallbacks(suffix=''):
        return hub.get_scalar(f'test/test/prompt_fallbacks{suffix}').current()  # hook's hub_key
    assert fallbacks() == fallbacks('.1') + fallbacks('.2')
    import cv2
    masks = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in sorted((root / 'ann_dir' / 'test').glob('*.png'))]
    for label in (1, 2):  # GT boxes: a class is "detected" exactly in the images where it is present
        present = sum(bool((m == label).any()) for m in masks) / len(masks)
        assert hub.get_scalar(f'test/test/prompt_detection_rate.{label}').current() == present


def test_class_prompt_logits_do_not_depend_on_the_batch():
    model = build(prompter=dict(type='MaskBoxPrompter', fallback='none')).eval()  # image 1 mixes box / no box
    inputs, samples = fixture(n=3)
    with torch.no_grad():
        together = model._forward(inputs, copy.deepcopy(samples))
        alone = [model._forward(inputs[i:i + 1], copy.deepcopy(samples[i:i + 1])) for i in range(3)]
    for i in range(3):
        torch.testing.assert_close(together[i:i + 1], alone[i], rtol=1e-4, atol=1e-4)
