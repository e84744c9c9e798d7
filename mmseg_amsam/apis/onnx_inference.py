"""ONNX Runtime backend: segment images with an export of ``onnx_export`` (no PyTorch model is built).

    from mmseg_amsam.apis import ONNXInferencer
    inferencer = ONNXInferencer('exports/demo')      # checks every file against manifest.json first
    result = inferencer('photo.jpg')                 # the same InferenceResult as AMSAMInferencer

The path is the PyTorch one with the networks replaced: the config's test pipeline and ``SegDataPreProcessor``
(from the manifest), our YOLO prompter on ``yolo.onnx`` (``ONNXYOLOBoxPrompter``: same detection, box choice and
mapping code), the encoder graph, the decoder graphs (a batch mixing images with and without a box is split as
``AMSAM.decode_from`` splits it) and mmseg's ``postprocess_result`` (padding, flip, resize to the original size).
SAM 2 exports: the encoder's three outputs (manifest ``features``) are passed to the decoders by name, split alike.
"""
import os.path as osp
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.registry import init_default_scope
from mmseg.models.segmentors.base import BaseSegmentor

from ..models.prompters.prompt_checks import require_prompts
from ..models.segmentors.amsam import check_input_size
from .inferencer import AMSAMInferencer
from .onnx_manifest import read_manifest
from .onnx_prompter import ONNXYOLOBoxPrompter

FEATURES_SAM = ('image_embeddings', )  # exports whose manifest has no 'features' (before SAM 2 support)
Features = Union[np.ndarray, Tuple[np.ndarray, ...]]


def _tuples(obj):
    """JSON gave lists where the config had tuples (``Resize.scale``): give them back."""
    if isinstance(obj, dict):
        return {k: _tuples(v) for k, v in obj.items()}
    if isinstance(obj, list):
        items = [_tuples(v) for v in obj]
        return tuple(items) if items and all(isinstance(v, (int, float)) for v in items) else items
    return obj


def ort_session(path: str, providers: Optional[Sequence[str]] = None, threads: Optional[int] = None):
    import onnxruntime as ort
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = int(threads)
    return ort.InferenceSession(path, options, providers=list(providers or ['CPUExecutionProvider']))


class ONNXSegmentor(BaseSegmentor):
    """An exported AM-SAM behind mmseg's segmentor interface (``data_preprocessor``, ``predict``, ``prompter``).

    Args:
        export_dir: a directory written by ``onnx_export`` (its manifest and SHA-256 digests are checked).
        providers: ONNX Runtime execution providers (default CPU).
        threads: ONNX Runtime intra-op threads (default: its own choice).
    """

    def __init__(self, export_dir: str, providers: Optional[Sequence[str]] = None, threads: Optional[int] = None):
        manifest = read_manifest(export_dir)
        init_default_scope('mmseg')
        super().__init__(data_preprocessor=_tuples(manifest['preprocess']['data_preprocessor']))
        self.manifest, self.export_dir = manifest, export_dir
        self.img_size = int(manifest['img_size'])
        post = manifest['postprocess']
        self.align_corners = bool(post['align_corners'])
        self.decode_head = type('ExportedHead', (), dict(threshold=post.get('threshold')))()  # postprocess_result
        self.dataset_meta = dict(classes=tuple(manifest['dataset_meta']['classes']),
                                 palette=[list(c) for c in manifest['dataset_meta']['palette']])
        graphs = manifest['graphs']
        self.features = list(manifest.get('features', FEATURES_SAM))  # the encoder's outputs, by name
        self.family = manifest.get('model', {}).get('family', 'sam')
        self.sessions = {name: ort_session(osp.join(export_dir, graphs[name]), providers, threads)
                         for name in ('encoder', 'box_decoder', 'boxless_decoder') if name in graphs}
        settings = manifest.get('prompter')
        self.prompter = None if settings is None else ONNXYOLOBoxPrompter(
            osp.join(export_dir, graphs['detector']), settings)
        self.learnable_prompt = 'baked into the decoder graphs' if manifest['learnable_prompt'] else None
        self.test_pipeline = _tuples(manifest['preprocess']['test_pipeline'])

    # ---- the exported graphs ----------------------------------------------------------------------------------
    def encode(self, images: np.ndarray) -> Features:
        """Normalised ``(N, 3, S, S)`` images -> the image embeddings (SAM), or the tuple ``(image_embeddings,
        high_res_feat_s0, high_res_feat_s1)`` (SAM 2: ``self.features``)."""
        outputs = self.sessions['encoder'].run(self.features, {'image': np.ascontiguousarray(images, np.float32)})
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    def decode(self, embeddings: Features, boxes: Optional[np.ndarray], has_box: Optional[np.ndarray]) -> np.ndarray:
        """Class logits ``(N, K, S, S)`` from what :meth:`encode` gives; ``has_box`` False (or None: no prompter)
        decodes with no sparse token. A mixed batch is split between the two decoder graphs, every feature alike."""
        features = tuple(embeddings) if isinstance(embeddings, (tuple, list)) else (embeddings, )
        if len(features) != len(self.features):
            raise ValueError(f'this export decodes {len(self.features)} encoder outputs ({", ".join(self.features)}), '
                             f'got {len(features)}')
        n = features[0].shape[0]
        with_box = np.zeros(n, bool) if has_box is None else np.asarray(has_box, bool)
        out = None
        for rows, name in ((np.flatnonzero(with_box), 'box_decoder'), (np.flatnonzero(~with_box), 'boxless_decoder')):
            if not len(rows):
                continue
            if name not in self.sessions:
                raise ValueError(f'this export has no {name} graph: the model never decodes '
                                 f"{'box-less' if name == 'boxless_decoder' else 'boxed'} images")
            wanted = {i.name for i in self.sessions[name].get_inputs()}  # a feature the head ignores is no input
            feeds = {key: np.ascontiguousarray(f[rows], np.float32) for key, f in zip(self.features, features)
                     if key in wanted}
            if name == 'box_decoder':
                feeds['boxes'] = np.ascontiguousarray(boxes[rows], np.float32)
            logits = self.sessions[name].run(None, feeds)[0]
            if out is None:
                out = np.empty((n, ) + logits.shape[1:], np.float32)
            out[rows] = logits
        return out

    # ---- mmseg segmentor API ----------------------------------------------------------------------------------
    def predict(self, inputs: torch.Tensor, data_samples: Optional[List] = None) -> List:
        check_input_size(inputs, self.img_size)
        boxes = has_box = None
        if self.prompter is not None:
            boxes, has_box = self.prompter(inputs, data_samples)  # metainfo: prompt_box / fallback / iou
            require_prompts(self, has_box, data_samples)
            has_box = self.prompter.prompted(has_box)
            boxes, has_box = boxes.cpu().numpy(), has_box.cpu().numpy()
        logits = self.decode(self.encode(inputs.cpu().numpy()), boxes, has_box)
        return self.postprocess_result(torch.from_numpy(logits).to(inputs.device), data_samples)

    def extract_feat(self, inputs):
        features = self.encode(inputs.cpu().numpy())
        if isinstance(features, tuple):
            return tuple(torch.from_numpy(f) for f in features)
        return torch.from_numpy(features)

    def encode_decode(self, inputs, batch_img_metas):
        raise NotImplementedError('ONNXSegmentor: use predict()')

    def loss(self, inputs, data_samples):
        raise NotImplementedError('an ONNX export does not train')

    def _forward(self, inputs, data_samples=None):
        raise NotImplementedError('ONNXSegmentor: use predict()')


class ONNXInferencer(AMSAMInferencer):
    """:class:`~.inferencer.AMSAMInferencer` on an ONNX export: same inputs, same :class:`InferenceResult` s."""

    def __init__(self, export_dir: str, batch_size: int = 1, providers: Optional[Sequence[str]] = None,
                 threads: Optional[int] = None):
        self.model = ONNXSegmentor(export_dir, providers, threads).eval()
        self.cfg, self.device, self.batch_size = None, 'cpu', batch_size
        self.checkpoint, self.export_dir = None, export_dir
        self._set_pipelines(self.model.test_pipeline)
