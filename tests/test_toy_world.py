"""The committed toy SAM / YOLO (toy_world/, built by tools/pretrain_toy.py): what they are and that they learned."""
import hashlib
import json
import os.path as osp

import numpy as np
import pytest
import torch

from cfg_helpers import ROOT
from mmseg_amsam.apis.toy_sam_pretraining import TOY_SAM, box_dice, build_toy_sam, object_arrays
from mmseg_amsam.apis.toy_yolo_pretraining import best_boxes, box_iou, mean_best_box_iou
from mmseg_amsam.datasets.scene_pool import make_scene_pool
from mmseg_amsam.datasets.shapes_world import PRETRAIN_FAMILIES, make_demo_sample, mask_box
from mmseg_amsam.models.backbones import SAMImageEncoder
from mmseg_amsam.models.decode_heads import CalibratedMaskDecoder
from mmseg_amsam.models.prompters import SAMPromptEncoder

WEIGHTS = osp.join(ROOT, 'toy_world', 'weights')
SAM, YOLO = osp.join(WEIGHTS, 'toy_sam.pth'), osp.join(WEIGHTS, 'toy_yolov8.pt')
RECORD = json.load(open(osp.join(ROOT, 'toy_world', 'metrics.json')))
# Floors the committed models must reach on scenes the tests generate (not the ones pretraining was scored on).
SAM_BOX_DICE_FLOOR = 80.0
YOLO_BOX_IOU_FLOOR = 70.0


@pytest.fixture(scope='module')
def scenes():
    """24 single-object scenes of the pretraining domain (unseen seed) and 24 of the held-out (demo) domain."""
    pre = object_arrays(make_scene_pool(24, 77, 5, num_objects=(1, 1)))
    held = [make_demo_sample(np.random.default_rng([77, 6, i])) for i in range(24)]
    return pre, dict(images=np.stack([h[0] for h in held]), masks=np.stack([h[1].astype(bool) for h in held]))


@pytest.fixture(scope='module')
def toy_sam():
    sam = build_toy_sam(**TOY_SAM)
    sam.load_state_dict({k: v.float() for k, v in torch.load(SAM, weights_only=True).items()})
    return sam.eval()


def test_committed_files_match_their_record_and_stay_small():
    total = 0
    for name in ('toy_sam.pth', 'toy_yolov8.pt'):
        data = open(osp.join(WEIGHTS, name), 'rb').read()
        assert hashlib.sha256(data).hexdigest() == RECORD['files'][name]['sha256'], name
        assert len(data) == RECORD['files'][name]['bytes']
        total += len(data)
    assert total <= 10 * 2**20
    state = torch.load(SAM, weights_only=True)
    assert {k.split('.')[0] for k in state} == {'image_encoder', 'prompt_encoder', 'mask_decoder'}
    assert {v.dtype for v in state.values() if v.is_floating_point()} == {torch.float16}


def test_project_loaders_read_the_toy_sam_like_an_official_checkpoint(toy_sam):
    size, dim = TOY_SAM['img_size'], TOY_SAM['dim']
    encoder = SAMImageEncoder(arch='tiny', img_size=size, out_chans=dim, checkpoint=SAM)
    prompt = SAMPromptEncoder(embed_dim=dim, img_size=size, checkpoint=SAM)
    head = CalibratedMaskDecoder(num_classes=2, transformer_dim=dim, transformer_mlp_dim=TOY_SAM['mlp_dim'],
                                 transformer_heads=TOY_SAM['heads'], img_size=size, checkpoint=SAM)
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    assert torch.equal(encoder(x), toy_sam.image_encoder(x))
    assert torch.equal(prompt.no_mask_embed, toy_sam.prompt_encoder.no_mask_embed.weight)
    # AM-SAM's class tokens 1, 2 are SAM's multimask tokens 1, 2 (token 0 = the single-mask output)
    assert torch.equal(head.decoder.mask_tokens.weight, toy_sam.mask_decoder.mask_tokens.weight[:3])


def test_toy_sam_segments_generated_objects_given_their_box(toy_sam, scenes):
    pre, held = scenes
    assert box_dice(toy_sam, pre['images'], pre['masks']) >= SAM_BOX_DICE_FLOOR


def test_toy_yolo_finds_the_objects_of_generated_images(scenes):
    pre, held = scenes  # on the held-out demo domain it is weak (toy_world/README.md): the few-shot stage's job
    assert mean_best_box_iou(YOLO, pre['images'], pre['masks']) >= YOLO_BOX_IOU_FLOOR


def test_toy_yolo_names_the_shape_families():
    from ultralytics import YOLO as UltralyticsYOLO
    assert list(UltralyticsYOLO(YOLO, task='detect').names.values()) == list(PRETRAIN_FAMILIES)


def test_box_iou_and_mask_box_reference_values():
    mask = np.zeros((10, 10), bool)
    mask[2:5, 3:9] = True
    assert mask_box(mask) == (3.0, 2.0, 9.0, 5.0)
    assert box_iou((0, 0, 2, 2), (1, 1, 3, 3)) == pytest.approx(1 / 7)
    assert box_iou((0, 0, 1, 1), (2, 2, 3, 3)) == 0.0
    assert best_boxes(YOLO, np.zeros((1, 64, 64, 3), np.uint8)) == [None]  # nothing to find on a black image
