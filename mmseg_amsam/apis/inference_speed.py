"""Images per second of a built AM-SAM in PyTorch vs its ONNX export in ONNX Runtime (for tools/benchmark.py).

    from mmseg_amsam.apis.inference_speed import measure_speed
    rows = measure_speed(model, 'exports/demo', batch_sizes=(1, 8))
    # [dict(backend='pytorch', batch_size=1, images_per_s=..., seconds_per_batch=...), dict(backend='onnxruntime',
    #  ...), ..., ] and each ONNX Runtime row has max_abs_diff (its logits vs PyTorch's on the same input)

What is timed, for both backends alike: normalised ``(N, 3, S, S)`` images with one box each -> class logits at
``S x S`` (image encoder + prompt encoder + learned prompt + calibrated decoder + upsampling; SAM and SAM 2 models
alike: a SAM 2 encoder's three features go to the decoder in both backends). The detector, the
data pipeline and the resize to the original size are excluded (the same code runs them for both backends).
PyTorch runs the encoder directly (no embedding cache: the same input would otherwise be a cache hit), under
``torch.inference_mode``, on the model's device; ONNX Runtime on CPU with as many intra-op threads as torch uses.
The first ``warmup`` batches are not timed; every batch uses the same inputs.
"""
import time
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .onnx_inference import ONNXSegmentor


def _pytorch_logits(model, images: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    has_box = torch.ones(images.shape[0], dtype=torch.bool, device=images.device)
    sparse, dense = model.prompt_encoder(boxes, has_box, images.shape[0])
    frozen = dict(sparse=sparse, dense=dense, has_box=has_box, feats=model.backbone(images))
    size = (model.img_size, model.img_size)
    return F.interpolate(model.decode_from(frozen), size=size, mode='bilinear',
                         align_corners=model.decode_head.align_corners)


def _timed(run, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        run()
    start = time.perf_counter()
    for _ in range(repeats):
        run()
    return (time.perf_counter() - start) / repeats


def measure_speed(model, export_dir: str, batch_sizes: Sequence[int] = (1, 8), repeats: int = 3, warmup: int = 1,
                  threads: Optional[int] = None, seed: int = 0) -> List[Dict]:
    """Rows ``dict(backend, batch_size, images_per_s, seconds_per_batch)`` (module doc); ``threads``: ONNX Runtime
    intra-op threads (default ``torch.get_num_threads()``). ``export_dir`` must be an export of ``model``
    (``onnx_export``) with a box decoder (a model with a prompter)."""
    threads = threads or torch.get_num_threads()
    onnx = ONNXSegmentor(export_dir, threads=threads)
    torch.set_num_threads(threads)  # both backends at the same thread count (loading ultralytics may lower torch's;
    # the caller's count stays set afterwards: it is the one it asked for)
    if 'box_decoder' not in onnx.sessions:
        raise ValueError(f'{export_dir} has no box decoder (a model without prompter): nothing to compare')
    model = model.eval()
    device = next(model.parameters()).device
    s = int(model.img_size)
    rows = []
    for n in batch_sizes:
        rng = np.random.default_rng(seed)
        images = rng.standard_normal((n, 3, s, s)).astype(np.float32)
        xy = rng.uniform(0, s / 2, (n, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(s / 8, s / 2, (n, 2))], axis=1).astype(np.float32)
        images_t, boxes_t = torch.from_numpy(images).to(device), torch.from_numpy(boxes).to(device)
        has_box = np.ones(n, bool)
        outputs = {}

        def run_pytorch():
            with torch.inference_mode():
                outputs['pytorch'] = _pytorch_logits(model, images_t, boxes_t)
                if device.type == 'cuda':
                    torch.cuda.synchronize(device)

        def run_onnx():
            outputs['onnxruntime'] = onnx.decode(onnx.encode(images), boxes, has_box)

        for backend, run in (('pytorch', run_pytorch), ('onnxruntime', run_onnx)):
            seconds = _timed(run, warmup, repeats)
            rows.append(dict(backend=backend, batch_size=n, images_per_s=n / seconds, seconds_per_batch=seconds))
        diff = np.abs(outputs['pytorch'].float().cpu().numpy() - outputs['onnxruntime']).max()
        rows[-1]['max_abs_diff'] = float(diff)
    return rows
