"""A box found on the original image, placed in the network input through the pipeline's resize / flip / pad."""
import cv2
import numpy as np
import pytest
import torch
from mmcv.transforms import Compose

from mmseg_amsam.models.prompters.box_geometry import (UnmappableGeometryError, box_iou, input_to_original,
                                                       original_to_input)
from mmseg_amsam.models.prompters.gt_box import mask_box
from mmseg_amsam.models.prompters.pipeline_geometry import check_pipeline


def meta(ori=(100, 200), img=(256, 256), scale=(1.28, 2.56), **extra):
    return dict(ori_shape=ori, img_shape=img, pad_shape=img, scale_factor=scale, **extra)


@pytest.mark.parametrize('extra,expected', [
    ({}, (12.8, 51.2, 64.0, 153.6)),  # stretch 200x100 -> 256x256: x * 1.28, y * 2.56
    (dict(flip=True, flip_direction='horizontal'), (192.0, 51.2, 243.2, 153.6)),  # x -> 256 - x
    (dict(flip=True, flip_direction='vertical'), (12.8, 102.4, 64.0, 204.8)),  # y -> 256 - y
    (dict(flip=True, flip_direction='diagonal'), (192.0, 102.4, 243.2, 204.8)),
    (dict(flip=False, flip_direction=None), (12.8, 51.2, 64.0, 153.6)),
])
def test_stretch_resize_and_flips_against_hand_computed_boxes(extra, expected):
    box = (10.0, 20.0, 50.0, 60.0)
    m = meta(**extra)
    assert original_to_input(box, m) == pytest.approx(expected)
    assert input_to_original(original_to_input(box, m), m) == pytest.approx(box)


def test_keep_ratio_resize_with_padding():
    # 200x100 -> 256x128 (scale 1.28 both ways), padded to 256x256 at the bottom: a vertical flip happens about
    # the resized height 128, not the padded 256
    m = meta(img=(256, 256), scale=(1.28, 1.28))
    assert original_to_input((10, 20, 50, 60), m) == pytest.approx((12.8, 25.6, 64.0, 76.8))
    m.update(flip=True, flip_direction='vertical')
    assert original_to_input((10, 20, 50, 60), m) == pytest.approx((12.8, 128 - 76.8, 64.0, 128 - 25.6))


def test_crops_and_unrecorded_resizes_are_refused():
    with pytest.raises(UnmappableGeometryError, match='cropped.*use_original_image=False'):
        original_to_input((0, 0, 5, 5), dict(meta(img=(200, 256)), img_path='a.jpg'))  # 256 tall once resized
    with pytest.raises(UnmappableGeometryError, match='no scale_factor'):
        original_to_input((0, 0, 5, 5), dict(ori_shape=(100, 200), img_shape=(80, 80)))
    assert original_to_input((1, 2, 3, 4), dict(ori_shape=(80, 80), img_shape=(80, 80))) == (1.0, 2.0, 3.0, 4.0)


@pytest.mark.parametrize('direction', ['horizontal', 'vertical', 'diagonal'])
def test_mapping_matches_the_real_mmcv_transforms(tmp_path, direction):
    """The GT mask goes through the same Resize(keep_ratio) -> RandomFlip -> Pad as the image: its box in the
    packed sample is where the box of the original mask must land."""
    img, ann = str(tmp_path / 'a.png'), str(tmp_path / 'a_mask.png')
    cv2.imwrite(img, np.full((90, 160, 3), 100, np.uint8))
    mask = np.zeros((90, 160), np.uint8)
    mask[20:50, 30:100] = 1
    cv2.imwrite(ann, mask)
    pipeline = Compose([dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
                        dict(type='Resize', scale=(128, 128), keep_ratio=True),
                        dict(type='RandomFlip', prob=1.0, direction=direction),
                        dict(type='Pad', size=(128, 128)), dict(type='PackSegInputs')])
    packed = pipeline(dict(img_path=img, seg_map_path=ann, reduce_zero_label=False, seg_fields=[]))
    s = packed['data_samples']
    gt = s.gt_sem_seg.data[0]
    assert tuple(gt.shape) == (128, 128)
    expected = mask_box(gt == 1)  # (24, 16, 80, 40) before the flip, in a 128x72 image padded to 128x128
    assert original_to_input(mask_box(torch.from_numpy(mask == 1)), s.metainfo) == pytest.approx(expected)


def test_pipeline_check_names_the_transform():
    ok = [dict(type='LoadImageFromFile'), dict(type='RandomResize', scale=(256, 256)), dict(type='RandomFlip'),
          dict(type='PhotoMetricDistortion'), dict(type='Pad', size=(256, 256)), dict(type='PackSegInputs')]
    check_pipeline(ok, 'train pipeline', 'YOLOBoxPrompter')
    with pytest.raises(ValueError, match="train pipeline has the transform 'RandomCrop'.*use_original_image"):
        check_pipeline(ok[:2] + [dict(type='RandomCrop', crop_size=(64, 64))], 'train pipeline', 'YOLOBoxPrompter')
    with pytest.raises(ValueError, match="'MyBlur'.*geometry_neutral=\\['MyBlur'\\]"):
        check_pipeline([dict(type='MyBlur')], 'test pipeline', 'YOLOBoxPrompter')
    check_pipeline([dict(type='MyBlur')], 'test pipeline', 'YOLOBoxPrompter', extra_neutral=['MyBlur'])
    with pytest.raises(ValueError, match='flips after a Pad'):
        check_pipeline([dict(type='Pad', size=(8, 8)), dict(type='RandomFlip')], 'train pipeline', 'P')


def test_box_iou():
    assert box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert box_iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0
    assert box_iou((0, 0, 0, 0), (0, 0, 0, 0)) == 0.0


def test_dataset_pipeline_is_found_through_wrappers():
    from mmseg_amsam.models.prompters.pipeline_geometry import dataset_pipeline
    crop = [dict(type='RandomCrop', crop_size=(8, 8))]
    assert dataset_pipeline(dict(type='RepeatDataset', times=2, dataset=dict(type='X', pipeline=crop))) == crop
    assert dataset_pipeline(dict(type='X', pipeline=crop)) == crop
    assert dataset_pipeline(dict(type='X')) is None and dataset_pipeline(None) is None
