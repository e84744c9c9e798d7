"""Segment images with a trained AM-SAM: masks, the automatic prompt box and the foreground probability.

    from mmseg_amsam.apis import AMSAMInferencer
    inferencer = AMSAMInferencer('configs/amsam_demo.py', 'work_dirs/amsam_demo/best_mDice_epoch_40.pth')
    result = inferencer('photo.jpg')            # or a list of paths / numpy arrays (BGR, as cv2.imread gives)
    result.mask          # (H, W) uint8 class map at the original size (0 background, 1 foreground)
    result.box           # (x1, y1, x2, y2) detected prompt box in original image pixels, or None
    result.fallback      # True when the prompter found no box (the whole-image box, or none, was used)
    result.probability   # (H, W) float32 foreground probability (1 - P(background))

Works with full and trainable-only checkpoints (see ``TrainableOnlyCheckpointHook``): the model is built from the
config under the seed recorded in the checkpoint, then the checkpoint is loaded strictly. Other mmseg segmentors
(the baselines) work too; they have no prompt box (``box=None``).
"""
import copy
import os.path as osp
from dataclasses import dataclass, field
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import init_default_scope

from ..engine.trainable_checkpoint import build_model, checkpoint_seed, load_trained_checkpoint, read_checkpoint
from ..models.prompters.box_geometry import prompt_box_in_original

ImageInput = Union[str, np.ndarray]


class ImageLoadError(RuntimeError):
    """An input image could not be read or prepared."""


@dataclass
class InferenceResult:
    """Prediction for one image (all at the original image size)."""
    mask: Optional[np.ndarray] = None  # (H, W) uint8 predicted class per pixel
    box: Optional[Tuple[float, float, float, float]] = None  # detected box x1, y1, x2, y2 (original pixels) or None
    fallback: Optional[bool] = None  # True: no box found (whole-image box or none used); None: model without prompter
    # (multi-class models, class_prompts: box and fallback are lists, one entry per foreground class)
    probability: Optional[np.ndarray] = None  # (H, W) float32 foreground probability
    img_path: Optional[str] = None
    ori_shape: Optional[Tuple[int, int]] = None
    error: Optional[str] = None  # set (and nothing else) when the image could not be processed
    extra: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def has_box(self) -> bool:
        return self.box is not None

    def __getitem__(self, key):  # result['mask'] as well as result.mask
        return getattr(self, key)


def _pipeline_cfg(cfg: Config) -> list:
    # the pipeline the test run used first (top-level `test_pipeline` may be stale after overrides)
    pipeline = cfg.get('test_dataloader', {}).get('dataset', {}).get('pipeline') or cfg.get('test_pipeline')
    if not pipeline:
        raise ValueError('the config has no test pipeline (test_pipeline or test_dataloader.dataset.pipeline)')
    return [copy.deepcopy(t) for t in pipeline if t.get('type') != 'LoadAnnotations']


def _dataset_meta(cfg: Config, checkpoint: Optional[dict]) -> dict:
    meta = (checkpoint or {}).get('meta', {}).get('dataset_meta')
    if meta:
        return dict(meta)
    try:
        from mmseg.registry import DATASETS
        ds_type = cfg.test_dataloader.dataset.type
        cls = DATASETS.get(ds_type) if isinstance(ds_type, str) else ds_type
        return dict(cls.METAINFO)
    except Exception:  # no dataset in the config: a binary default
        return dict(classes=('background', 'foreground'), palette=[[0, 0, 0], [255, 255, 255]])


def _to_bgr3(img: np.ndarray) -> np.ndarray:
    if not isinstance(img, np.ndarray) or img.ndim not in (2, 3):
        raise ImageLoadError(f'an image array must be (H, W) or (H, W, C), got {getattr(img, "shape", type(img))}')
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    elif img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    elif img.shape[2] == 4:
        img = img[..., :3]
    if img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(img)


class AMSAMInferencer:
    """Build a segmentor from a config (+ checkpoint) and predict masks, prompt boxes and probabilities.

    Args:
        config: config file or ``Config``.
        checkpoint: a checkpoint file (full or trainable-only), or None for the config's own weights.
        device: ``'cpu'``, ``'cuda:0'`` ...
        cfg_options: overrides merged into the config (as ``--cfg-options``).
        batch_size: default number of images per forward pass.

    ``mmseg.apis.init_model`` is not used: it sets ``model.pretrained``, which AM-SAM does not take, and loads
    non-strictly (a trainable-only checkpoint would silently keep whatever frozen weights were built).
    """

    def __init__(self, config: Union[str, Config], checkpoint: Optional[str] = None, device: str = 'cpu',
                 cfg_options: Optional[dict] = None, batch_size: int = 1):
        cfg = Config.fromfile(config) if isinstance(config, str) else copy.deepcopy(config)
        if cfg_options:
            cfg.merge_from_dict(cfg_options)
        init_default_scope(cfg.get('default_scope', 'mmseg'))
        ckpt = read_checkpoint(checkpoint, map_location='cpu') if checkpoint else None
        model_cfg = copy.deepcopy(cfg.model)
        model_cfg['train_cfg'] = None
        self.model = build_model(model_cfg, checkpoint_seed(ckpt) if ckpt else None)
        if ckpt is not None:
            load_trained_checkpoint(self.model, ckpt, strict=True, source=checkpoint)
        self.model.cfg = cfg
        self.model.dataset_meta = _dataset_meta(cfg, ckpt)
        self.model.to(device).eval()
        self.cfg, self.device, self.batch_size = cfg, device, batch_size
        self.checkpoint = checkpoint
        self._set_pipelines(_pipeline_cfg(cfg))

    def _set_pipelines(self, steps: list) -> None:
        """The test pipeline (without LoadAnnotations) for files and for arrays; ``pipeline_steps`` keeps it."""
        prompter = getattr(self.model, 'prompter', None)
        if hasattr(prompter, 'check_pipeline'):  # boxes found on the original must follow the pipeline's geometry
            prompter.check_pipeline(steps, 'the test pipeline')
        self.pipeline_steps = copy.deepcopy(steps)
        self.file_pipeline = Compose(steps)
        array_steps = copy.deepcopy(steps)
        array_steps[0] = dict(type='LoadImageFromNDArray')
        self.array_pipeline = Compose(array_steps)

    @property
    def dataset_meta(self) -> dict:
        return self.model.dataset_meta

    # ---- public API ---------------------------------------------------------------------------------------------
    def __call__(self, images: Union[ImageInput, Sequence[ImageInput]],
                 batch_size: Optional[int] = None) -> Union[InferenceResult, List[InferenceResult]]:
        """Predict one image (path or array) -> one result; a list -> a list of results, in order.

        Unreadable images raise :class:`ImageLoadError` naming the file (see :meth:`predict_iter` to skip them).
        """
        single = isinstance(images, (str, np.ndarray))
        results = list(self.predict_iter([images] if single else list(images), batch_size, errors='raise'))
        return results[0] if single else results

    def predict_iter(self, images: Sequence[ImageInput], batch_size: Optional[int] = None,
                     errors: str = 'raise') -> Iterator[InferenceResult]:
        """Yield one :class:`InferenceResult` per image, in order, predicting ``batch_size`` images at a time.

        ``errors='skip'``: an image that cannot be read gives a result with ``error`` set (and the others are
        processed); ``'raise'``: :class:`ImageLoadError`.
        """
        if errors not in ('raise', 'skip'):
            raise ValueError(f"errors must be 'raise' or 'skip', got {errors!r}")
        batch_size = max(1, int(batch_size or self.batch_size))
        pending = []
        for item in images:
            try:
                pending.append(self._prepare(item))
            except Exception as exc:
                name = item if isinstance(item, str) else f'array {getattr(item, "shape", "?")}'
                message = f'cannot read image {name}: {exc}'
                if errors == 'raise':
                    raise ImageLoadError(message) from exc
                yield from self._run(pending)  # keep the order of the inputs
                pending = []
                yield InferenceResult(img_path=item if isinstance(item, str) else None, error=message)
                continue
            if len(pending) == batch_size:
                yield from self._run(pending)
                pending = []
        yield from self._run(pending)

    # ---- internals --------------------------------------------------------------------------------------------
    def _prepare(self, item: ImageInput) -> dict:
        if isinstance(item, np.ndarray):
            bgr = _to_bgr3(item)
            packed = self.array_pipeline(dict(img=bgr))
            # the prompter detects on this array as it would on a file's pixels: same image, same box
            packed['data_samples'].set_metainfo(dict(ori_img=bgr))
            return packed
        if not isinstance(item, str):
            raise ImageLoadError(f'expected an image path or a numpy array, got {type(item).__name__}')
        if not osp.isfile(item):
            raise FileNotFoundError(f'no such file: {item}')
        packed = self.file_pipeline(dict(img_path=item))
        if packed is None:
            raise ImageLoadError('the pipeline dropped it (empty or undecodable file)')
        return packed

    def _run(self, packed: List[dict]) -> List[InferenceResult]:
        if not packed:
            return []
        model = self.model
        data = dict(inputs=[p['inputs'] for p in packed], data_samples=[p['data_samples'] for p in packed])
        with torch.inference_mode():
            data = model.data_preprocessor(data, False)
            samples = model.predict(data['inputs'], data['data_samples'])
        return [self._result(sample) for sample in samples]

    def _result(self, sample) -> InferenceResult:
        meta = sample.metainfo
        logits = sample.seg_logits.data.float()
        if logits.shape[0] > 1:
            probability = 1.0 - torch.softmax(logits, dim=0)[0]
        else:  # sigmoid heads: seg_logits already holds the probability
            probability = logits[0]
        mask = sample.pred_sem_seg.data[0].cpu().numpy().astype(np.uint8)
        ori_h, ori_w = (int(v) for v in meta['ori_shape'][:2])
        box = prompt_box_in_original(meta)  # None for baselines and fallbacks
        return InferenceResult(mask=mask, box=box, probability=probability.cpu().numpy().astype(np.float32),
                               img_path=meta.get('img_path'), ori_shape=(ori_h, ori_w),
                               fallback=meta.get('prompt_fallback'))
