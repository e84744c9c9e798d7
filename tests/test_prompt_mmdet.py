"""MMDetBoxPrompter: a small mmdet 3.x detector with random weights, same guarantees as the YOLO prompter."""
import cv2
import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope
from mmseg.structures import SegDataSample

from mmseg_amsam.models.prompters import MMDetBoxPrompter
from mmseg_amsam.models.prompters.box_geometry import original_to_input

CONFIG = """
model = dict(
    type='RetinaNet',
    data_preprocessor=dict(type='DetDataPreprocessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                           bgr_to_rgb=True, pad_size_divisor=32),
    backbone=dict(type='ResNet', depth=18, num_stages=4, out_indices=(1, 2, 3), norm_eval=True, style='pytorch',
                  norm_cfg=dict(type='BN', requires_grad=False)),
    neck=dict(type='FPN', in_channels=[128, 256, 512], out_channels=16, start_level=0, num_outs=3),
    bbox_head=dict(
        type='RetinaHead', num_classes=2, in_channels=16, stacked_convs=1, feat_channels=16,
        anchor_generator=dict(type='AnchorGenerator', octave_base_scale=4, scales_per_octave=1, ratios=[1.0],
                              strides=[8, 16, 32]),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0] * 4, target_stds=[1.0] * 4),
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
    test_cfg=dict(nms_pre=100, min_bbox_size=0, score_thr=0.0, nms=dict(type='nms', iou_threshold=0.5),
                  max_per_img=10))
metainfo = dict(classes=('person', 'dog'))
test_pipeline = [dict(type='LoadImageFromFile'), dict(type='Resize', scale=(64, 64), keep_ratio=True),
                 dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                                                       'scale_factor'))]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
"""


@pytest.fixture(scope='module')
def det_config(tmp_path_factory):
    path = tmp_path_factory.mktemp('mmdet') / 'tiny_retinanet.py'
    path.write_text(CONFIG)
    return str(path)


def test_class_names_checked_and_scope_kept(det_config):
    before = DefaultScope.get_current_instance().scope_name
    assert MMDetBoxPrompter(det_config, classes=['dog', 0]).class_ids == [0, 1]
    assert DefaultScope.get_current_instance().scope_name == before  # mmdet's scope does not leak
    with pytest.raises(ValueError, match="\\['cat'\\].*0 'person', 1 'dog'"):
        MMDetBoxPrompter(det_config, classes=['cat'])
    with pytest.raises(FileNotFoundError, match='missing.py'):
        MMDetBoxPrompter('missing.py')


def test_one_box_per_image_mapped_like_yolo(det_config, tmp_path):
    torch.manual_seed(0)
    prompter = MMDetBoxPrompter(det_config, conf=0.0, cache=False).eval()
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 255, shape, dtype=np.uint8) for shape in [(48, 96, 3), (80, 60, 3)]]
    paths = []
    for i, image in enumerate(images):
        paths.append(str(tmp_path / f'{i}.png'))
        cv2.imwrite(paths[-1], image)

    def samples(arrays=False):
        return [SegDataSample(metainfo=dict(
            ori_shape=im.shape[:2], img_shape=(64, 64), pad_shape=(64, 64), scale_factor=(64 / im.shape[1],
                                                                                          64 / im.shape[0]),
            **(dict(ori_img=im) if arrays else dict(img_path=p)))) for p, im in zip(paths, images)]
    x = torch.zeros(2, 3, 64, 64)
    batched, found = prompter(x, samples())
    assert found.all()
    assert torch.equal(batched[1:], prompter(x[1:], samples()[1:])[0])  # alone = in a mixed-size batch
    assert torch.equal(prompter(x, samples(arrays=True))[0], batched)  # path vs array
    # the box is mmdet's most confident detection on the original, mapped through the recorded resize
    from mmdet.apis import inference_detector
    with DefaultScope.overwrite_default_scope('mmdet'):
        inst = inference_detector(prompter.detector, images[0]).pred_instances
    top = inst.bboxes[int(inst.scores.argmax())].tolist()
    assert batched[0].tolist() == pytest.approx(list(original_to_input(top, samples()[0].metainfo)), abs=1e-4)


def test_trained_checkpoints_record_the_mmdet_detector_weights(det_config):
    """The detector is outside the state dict; a trained checkpoint records its digest (as for the YOLO one)."""
    from types import SimpleNamespace

    from mmseg_amsam.engine.trainable_checkpoint import detector_digest, frozen_sources
    digests = []
    for seed in (0, 0, 1):
        torch.manual_seed(seed)
        digests.append(detector_digest(SimpleNamespace(prompter=MMDetBoxPrompter(det_config))))
    assert digests[0] == digests[1] != digests[2] and len(digests[0]) == 64
    assert frozen_sources(dict(prompter=dict(type='MMDetBoxPrompter', config=det_config)))['yolo'] == det_config
