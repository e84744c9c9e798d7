"""Box choice beyond "most confident": the prior from the k training masks' boxes; box+point prompts."""
import math

import cv2
import numpy as np
import pytest
import torch
from mmseg.structures import SegDataSample

from mmseg_amsam.models.prompters import SAMBoxPointPromptEncoder, SAMPromptEncoder, YOLOBoxPrompter
from mmseg_amsam.models.prompters.box_prior import BoxPrior, box_features


def test_prior_statistics_and_likelihood_by_hand():
    prior = BoxPrior([((10, 10, 30, 50), (100, 100)), ((50, 10, 70, 50), (100, 100))], min_std=0.1)
    size, aspect = 0.5 * math.log(20 * 40 / 100 ** 2), math.log(20 / 40)
    np.testing.assert_allclose(prior.mean, [0.4, 0.3, size, aspect])
    np.testing.assert_allclose(prior.std, [0.2, 0.1, 0.1, 0.1])  # only x varies; the rest get the floor
    np.testing.assert_allclose(box_features((10, 10, 30, 50), (100, 100)), [0.2, 0.3, size, aspect])
    # a box at the mean: -sum(log std); one std away in x: minus another 1/2
    at_mean = -math.log(0.2) - 3 * math.log(0.1)
    assert prior.log_likelihood((30, 10, 50, 50), (100, 100)) == pytest.approx(at_mean)
    assert prior.log_likelihood((50, 10, 70, 50), (100, 100)) == pytest.approx(at_mean - 0.5)


def test_prior_picks_the_box_most_like_the_training_masks(tmp_path):
    root = tmp_path / 'data'
    (root / 'ann_dir' / 'train').mkdir(parents=True)
    (root / 'splits').mkdir()
    for name, cols in (('a', slice(10, 30)), ('b', slice(50, 70))):
        mask = np.zeros((100, 100), np.uint8)
        mask[10:50, cols] = 1
        cv2.imwrite(str(root / 'ann_dir' / 'train' / f'{name}.png'), mask)
    (root / 'splits' / 'train_2shot.txt').write_text('a\nb\n')
    prior = BoxPrior.from_split(str(root), 'splits/train_2shot.txt')
    np.testing.assert_allclose(prior.mean, BoxPrior([((10, 10, 30, 50), (100, 100)),
                                                     ((50, 10, 70, 50), (100, 100))]).mean)
    # a confident bystander filling the image vs a less confident box shaped like the training masks
    dets = np.array([[0, 0, 100, 100, 0.9, 0], [30, 10, 50, 50, 0.4, 0]], np.float64)
    picks = {}
    for choose in ('confidence', 'prior'):
        prompter = YOLOBoxPrompter(model='yolov8n.yaml', choose=choose, use_original_image=False,
                                   prior=dict(data_root=str(root), ann_file='splits/train_2shot.txt'))
        prompter.detect = lambda image, device: dets
        s = SegDataSample(metainfo=dict(ori_shape=(100, 100), img_shape=(100, 100)))
        picks[choose] = prompter(torch.zeros(1, 3, 100, 100), [s])[0][0].tolist()
    assert picks == dict(confidence=[0.0, 0.0, 100.0, 100.0], prior=[30.0, 10.0, 50.0, 50.0])
    with pytest.raises(ValueError, match="choose='prior' needs prior"):
        YOLOBoxPrompter(model='yolov8n.yaml', choose='prior')


def test_box_plus_point_adds_the_centre_as_a_positive_point():
    plain, with_point = SAMPromptEncoder(img_size=128), SAMBoxPointPromptEncoder(img_size=128)
    with_point.load_state_dict(plain.state_dict())
    boxes = torch.tensor([[10.0, 20.0, 60.0, 90.0], [0.0, 0.0, 0.0, 0.0]])
    has_box = torch.tensor([True, False])
    sparse, _ = plain(boxes, has_box, 2)
    sparse3, _ = with_point(boxes, has_box, 2)
    assert sparse3.shape == (2, 3, 256) and torch.equal(sparse3[:, :2], sparse)
    pe = plain.prompt_encoder
    # segment-anything's point embedding: positional encoding of the pixel centre + the "foreground" embedding
    expected = pe.pe_layer.forward_with_coords(torch.tensor([[[35.5, 55.5]]]), (128, 128))[0, 0] + \
        pe.point_embeddings[1].weight[0]
    torch.testing.assert_close(sparse3[0, 2], expected)
    assert torch.equal(sparse3[1, 2], pe.not_a_point_embed.weight[0])
    assert with_point(None, None, 2)[0].shape == (2, 0, 256)
