"""SAM-style pretraining of the toy SAM (project ``tiny`` encoder + segment-anything prompt encoder / mask decoder).

Each step draws random ``(scene, object)`` pairs of a :class:`~mmseg_amsam.datasets.scene_pool.ScenePool`, flips /
rotates them, and prompts the model as SAM was trained: half the batch with the object's box (jittered; loss on the
single-mask token 0), half with one positive point (loss on the best of the 3 multimask tokens, SAM's ambiguity-aware
rule). Loss: BCE + Dice on the masks upsampled to the input size, plus the IoU head's MSE. The result is saved in the
official SAM layout (``image_encoder.*``, ``prompt_encoder.*``, ``mask_decoder.*``), fp16.
"""
import math
from typing import Callable, Dict, Optional

import numpy as np
import torch
import torch.nn.functional as F
from segment_anything.modeling import MaskDecoder, Sam, TwoWayTransformer

from ..datasets.scene_pool import ScenePool
from ..datasets.shapes_world import mask_box
from ..models.backbones.sam_image_encoder import SAMImageEncoder
from ..models.prompters.sam_prompt_encoder import SAMPromptEncoder

SAM_MEAN, SAM_STD = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)
# The toy SAM's sizes; configs/_base_/models/amsam_toy.py sets the same.
TOY_SAM = dict(img_size=128, dim=96, mlp_dim=384, heads=4)


def build_toy_sam(img_size: int, dim: int, mlp_dim: int, heads: int) -> Sam:
    """A trainable ``Sam`` whose parts are built exactly as AM-SAM's loaders build them (so keys and shapes match)."""
    encoder = SAMImageEncoder(arch='tiny', img_size=img_size, out_chans=dim, frozen=False).encoder
    prompt = SAMPromptEncoder(embed_dim=dim, img_size=img_size).prompt_encoder
    prompt.requires_grad_(True)
    decoder = MaskDecoder(num_multimask_outputs=3, transformer_dim=dim,
                          transformer=TwoWayTransformer(depth=2, embedding_dim=dim, mlp_dim=mlp_dim, num_heads=heads),
                          iou_head_depth=3, iou_head_hidden_dim=256)
    return Sam(encoder, prompt, decoder, pixel_mean=list(SAM_MEAN), pixel_std=list(SAM_STD))


def normalise(images: np.ndarray) -> torch.Tensor:
    """(B, H, W, 3) uint8 RGB -> (B, 3, H, W) float, SAM's pixel normalisation."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    return (x - torch.tensor(SAM_MEAN).view(1, 3, 1, 1)) / torch.tensor(SAM_STD).view(1, 3, 1, 1)


def decode(sam: Sam, feats: torch.Tensor, sparse: torch.Tensor, dense: torch.Tensor):
    """``MaskDecoder.predict_masks`` with one prompt per image (SAM's code repeats one image for many prompts).
    Returns low-res mask logits ``(B, 4, 4h, 4w)`` and IoU predictions ``(B, 4)``."""
    d = sam.mask_decoder
    b, c, h, w = feats.shape
    tokens = torch.cat([d.iou_token.weight, d.mask_tokens.weight], 0).unsqueeze(0).expand(b, -1, -1)
    hs, src = d.transformer(feats + dense, sam.prompt_encoder.get_dense_pe().expand(b, -1, -1, -1),
                            torch.cat([tokens, sparse], 1))
    up = d.output_upscaling(src.transpose(1, 2).reshape(b, c, h, w))
    hyper = torch.stack([d.output_hypernetworks_mlps[i](hs[:, 1 + i]) for i in range(d.num_mask_tokens)], 1)
    masks = (hyper @ up.flatten(2)).view(b, d.num_mask_tokens, *up.shape[-2:])
    return masks, d.iou_prediction_head(hs[:, 0])


def predict(sam: Sam, images: np.ndarray, boxes: Optional[torch.Tensor] = None,
            points: Optional[torch.Tensor] = None) -> tuple:
    """Mask logits at the input size ``(B, 4, H, W)`` and IoU predictions for box (B, 4) or point (B, 2) prompts."""
    x = normalise(images)
    feats = sam.image_encoder(x)
    pe = sam.prompt_encoder
    if boxes is not None:
        sparse, dense = pe(points=None, boxes=boxes, masks=None)
    else:
        sparse, dense = pe(points=(points[:, None], torch.ones(len(points), 1, dtype=torch.int)), boxes=None,
                           masks=None)
    masks, iou = decode(sam, feats, sparse, dense)
    return F.interpolate(masks, size=x.shape[-2:], mode='bilinear', align_corners=False), iou


def _batch(pool: ScenePool, pairs, rng: np.random.Generator, jitter: float, augment: bool):
    images, masks, boxes, points = [], [], [], []
    for n, j in pairs:
        image, mask = pool.images[n], pool.labels[n] == j
        if augment:
            k = int(rng.integers(4))
            image, mask = np.rot90(image, k), np.rot90(mask, k)
            if rng.random() < 0.5:
                image, mask = image[:, ::-1], mask[:, ::-1]
        x1, y1, x2, y2 = mask_box(mask)
        side = np.array([x2 - x1, y2 - y1, x2 - x1, y2 - y1])
        box = np.array([x1, y1, x2, y2]) + rng.normal(0, jitter, 4) * side
        ys, xs = np.nonzero(mask)
        k = int(rng.integers(len(xs)))
        images.append(np.ascontiguousarray(image))
        masks.append(np.ascontiguousarray(mask))
        boxes.append(np.clip(box, 0, mask.shape[0]))
        points.append((xs[k] + 0.5, ys[k] + 0.5))
    return (np.stack(images), torch.from_numpy(np.stack(masks)).float(),
            torch.tensor(np.stack(boxes), dtype=torch.float32), torch.tensor(points, dtype=torch.float32))


def mask_losses(logits: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """BCE + Dice of each mask ``(B, n, H, W)`` against ``gt`` ``(B, H, W)``: ``(B, n)``."""
    target = gt.unsqueeze(1).expand_as(logits)
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction='none').mean((2, 3))
    prob = logits.sigmoid()
    dice = 1 - (2 * (prob * target).sum((2, 3)) + 1) / (prob.sum((2, 3)) + target.sum((2, 3)) + 1)
    return bce + dice


def mask_iou(logits: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    pred = logits > 0
    target = gt.unsqueeze(1).bool().expand_as(pred)
    return (pred & target).sum((2, 3)).float() / (pred | target).sum((2, 3)).clamp(min=1).float()


def train_toy_sam(pool: ScenePool, steps: int, batch_size: int = 16, lr: float = 2e-3, seed: int = 0,
                  jitter: float = 0.08, progress: Optional[Callable[[int, float], None]] = None) -> Sam:
    """Pretrain a toy SAM on ``pool``; deterministic for a seed on a given machine (CPU)."""
    torch.manual_seed(seed)
    sam = build_toy_sam(**TOY_SAM)
    sam.train()
    opt = torch.optim.AdamW(sam.parameters(), lr=lr, weight_decay=0.05, foreach=True)
    warmup = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: min(1.0, (i + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(i, steps) / steps)))
    rng = np.random.default_rng(seed)
    objects = pool.objects()
    half = batch_size // 2
    for step in range(steps):
        pairs = [objects[i] for i in rng.integers(len(objects), size=batch_size)]
        images, gt, boxes, points = _batch(pool, pairs, rng, jitter, augment=True)
        box_logits, box_iou = predict(sam, images[:half], boxes=boxes[:half])
        pt_logits, pt_iou = predict(sam, images[half:], points=points[half:])
        box_loss = mask_losses(box_logits[:, :1], gt[:half])[:, 0]
        pt_losses = mask_losses(pt_logits[:, 1:], gt[half:])
        pt_loss, best = pt_losses.min(1)
        with torch.no_grad():
            box_target = mask_iou(box_logits[:, :1], gt[:half])[:, 0]
            pt_target = mask_iou(pt_logits[:, 1:], gt[half:])
        iou_loss = (F.mse_loss(box_iou[:, 0], box_target) + F.mse_loss(pt_iou[:, 1:], pt_target))
        loss = box_loss.mean() + pt_loss.mean() + iou_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(sam.parameters(), 1.0)
        opt.step()
        sched.step()
        if progress:
            progress(step + 1, loss.item())
    return sam.eval()


@torch.no_grad()
def box_dice(sam: Sam, images: np.ndarray, masks: np.ndarray, boxes=None, batch_size: int = 32) -> float:
    """Mean per-object Dice (%) of the single-mask output (token 0, logit > 0) given each object's box (default:
    the box of its mask)."""
    scores = []
    for s in range(0, len(images), batch_size):
        gt = torch.from_numpy(np.ascontiguousarray(masks[s:s + batch_size])).float()
        if boxes is None:
            b = torch.tensor([mask_box(m) for m in masks[s:s + batch_size]], dtype=torch.float32)
        else:
            b = torch.as_tensor(np.asarray(boxes[s:s + batch_size]), dtype=torch.float32)
        logits, _ = predict(sam, np.ascontiguousarray(images[s:s + batch_size]), boxes=b)
        pred = (logits[:, 0] > 0).float()
        inter = (pred * gt).sum((1, 2))
        scores += (200 * inter / (pred.sum((1, 2)) + gt.sum((1, 2))).clamp(min=1)).tolist()
    return float(np.mean(scores))


def object_arrays(pool: ScenePool) -> Dict[str, np.ndarray]:
    """One (image, mask) row per object of the pool."""
    pairs = pool.objects()
    return dict(images=np.stack([pool.images[n] for n, _ in pairs]),
                masks=np.stack([pool.labels[n] == j for n, j in pairs]))


def sam_state_dict_fp16(sam: Sam) -> Dict[str, torch.Tensor]:
    """The official layout: ``image_encoder.*``, ``prompt_encoder.*``, ``mask_decoder.*``; floats stored fp16."""
    return {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in sam.state_dict().items()}
