"""Export a trained AM-SAM to ONNX: ``image_encoder.onnx``, ``prompt_decoder.onnx`` (box prompts),
``prompt_decoder_boxless.onnx`` (only when the model decodes box-less images), ``yolo.onnx`` (ultralytics' own
export of the prompter's detector) and ``manifest.json`` (``onnx_manifest``). The graphs are ``onnx_graphs``.

    from mmseg_amsam.apis.onnx_export import export_from_config
    manifest = export_from_config('configs/amsam_demo.py', 'work_dirs/amsam_demo/best.pth', 'exports/demo')

SAM (ViT) and SAM 2 (Hiera) models both export; for SAM 2 the encoder graph has three outputs (``image_embeddings``,
``high_res_feat_s0``, ``high_res_feat_s1``), the decoder graphs take them as their first inputs and the manifest
says so (``model.family``, ``features``). The input size is fixed per export (``img_size``), the batch is dynamic.

Refused with one message (``ValueError``): models that are not AM-SAM (the baselines), several prompts per image
(``class_prompts``: not supported yet), ``calibration='batch'`` (mixes the images of a batch), a prompter other
than ``YOLOBoxPrompter`` or none (the GT-mask prompter needs labels; mmdet detectors are not exported), the box
prior (``choose='prior'``). The output directory is written next to itself and renamed when complete.
"""
import os
import os.path as osp
import shutil
import tempfile
import warnings
from typing import Optional

import numpy as np
import torch

from .onnx_graphs import BoxDecoderGraph, BoxlessDecoderGraph, EncoderGraph, feature_names
from .onnx_manifest import is_our_export, package_versions, sha256_of, write_manifest

# (image encoder, decode head) -> the manifest's model family
SUPPORTED_PARTS = {('SAMImageEncoder', 'CalibratedMaskDecoder'): 'sam',
                   ('SAM2ImageEncoder', 'CalibratedSAM2MaskDecoder'): 'sam2'}
GRAPHS = dict(encoder='image_encoder.onnx', box_decoder='prompt_decoder.onnx',
              boxless_decoder='prompt_decoder_boxless.onnx', detector='yolo.onnx')
DEFAULT_OPSET = 17


def check_exportable(model) -> None:
    """Raise ``ValueError`` naming what cannot be exported (module doc)."""
    from ..models.segmentors.amsam import AMSAM
    name = type(model).__name__
    if not isinstance(model, AMSAM):
        raise ValueError(f'ONNX export supports AM-SAM models (type=AMSAM); this config builds {name} (a baseline?)')
    if getattr(model, 'class_prompts', False):
        raise ValueError('ONNX export of multi-class AM-SAM (class_prompts=True: several prompts per image) is not '
                         'supported yet; export a binary model (one prompt per image)')
    parts = (type(model.backbone).__name__, type(model.decode_head).__name__)
    if parts not in SUPPORTED_PARTS:
        raise ValueError('ONNX export supports SAM (SAMImageEncoder + CalibratedMaskDecoder) and SAM 2 '
                         '(SAM2ImageEncoder + CalibratedSAM2MaskDecoder) models, got ' + ' + '.join(parts))
    if model.decode_head.calibration.mode == 'batch':
        raise ValueError("calibration='batch' cannot be exported: it averages over the images of a batch (eq. 11), "
                         "so an image's mask depends on its batch-mates. Use 'sample' (the same at batch size 1, "
                         "fixed per image) or 'learned'.")
    if type(model.prompt_encoder).__name__ not in ('SAMPromptEncoder', 'SAM2PromptEncoder'):  # e.g. the box +
        # centre point encoder: segment-anything's masked point embedding traces to a ScatterND that fails at batch > 1
        raise ValueError(f'ONNX export supports SAMPromptEncoder / SAM2PromptEncoder (box prompts); this model has '
                         f'{type(model.prompt_encoder).__name__}')
    if type(model.data_preprocessor).__name__ != 'SegDataPreProcessor':
        raise ValueError(f'ONNX export needs a SegDataPreProcessor, got {type(model.data_preprocessor).__name__}')
    prompter = model.prompter
    if prompter is None:
        return
    kind = type(prompter).__name__
    if kind != 'YOLOBoxPrompter':
        raise ValueError(f'ONNX export supports the YOLOBoxPrompter (or no prompter); this model has {kind}'
                         + (' (it boxes the ground-truth mask: no labels at deployment)' if 'Mask' in kind else ''))
    if prompter.choose != 'confidence':
        raise ValueError(f"ONNX export of a prompter with choose={prompter.choose!r} is not supported yet; "
                         "use choose='confidence'")
    if getattr(prompter, 'class_map', None):
        raise ValueError('ONNX export of a prompter with class_map (multi-class prompts) is not supported yet')


def preprocess_info(model, test_pipeline) -> dict:
    dp = model.data_preprocessor
    mean = [float(v) for v in dp.mean.flatten()] if getattr(dp, '_enable_normalize', False) else None
    std = [float(v) for v in dp.std.flatten()] if mean is not None else None
    cfg = dict(type='SegDataPreProcessor', mean=mean, std=std, bgr_to_rgb=bool(dp.channel_conversion),
               pad_val=dp.pad_val, seg_pad_val=dp.seg_pad_val, size=list(dp.size) if dp.size else None,
               size_divisor=dp.size_divisor, test_cfg=dp.test_cfg)
    return dict(mean=mean, std=std, bgr_to_rgb=bool(dp.channel_conversion), pad_val=dp.pad_val,
                data_preprocessor=cfg, test_pipeline=list(test_pipeline))


def prompter_info(prompter) -> Optional[dict]:
    if prompter is None:
        return None
    ids = prompter.class_ids
    return dict(type=type(prompter).__name__, detector=GRAPHS['detector'], conf=prompter.conf, iou=prompter.iou,
                imgsz=prompter.imgsz, class_ids=None if ids is None else [int(i) for i in ids],
                class_names={int(k): v for k, v in prompter.class_names.items()}, fallback=prompter.fallback,
                choose=prompter.choose, use_original_image=prompter.use_original_image,
                warn_fallback_rate=prompter.warn_fallback_rate, geometry_neutral=list(prompter.geometry_neutral),
                mean=list(prompter.mean), std=list(prompter.std), ignore_index=prompter.ignore_index,
                source=prompter.model_path, adapted_from=prompter.adapted_from)


def _onnx_export(module, args, path, names, outputs, opset) -> None:
    axes = {name: {0: 'batch'} for name in names + outputs}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter('ignore')  # TracerWarnings of segment-anything's shape checks (batch-independent)
        torch.onnx.export(module, args, path, input_names=names, output_names=outputs, dynamic_axes=axes,
                          opset_version=opset, dynamo=False)


def export_yolo(prompter, out_dir: str, opset: int) -> str:
    """ultralytics' ONNX export of the prompter's (in-memory) detector into ``out_dir/yolo.onnx``: dynamic input
    (ultralytics then letterboxes as for the PyTorch model), no onnxslim (an extra download)."""
    detector = prompter.detector
    net = detector.model
    had, old = hasattr(net, 'pt_path'), getattr(net, 'pt_path', None)
    net.pt_path = osp.join(out_dir, 'yolo.pt')  # ultralytics names the output after it (a yaml: the working dir)
    threads = torch.get_num_threads()
    try:
        path = detector.export(format='onnx', imgsz=prompter.imgsz, dynamic=True, simplify=False, opset=opset,
                               device='cpu', half=False, verbose=False)
    finally:
        torch.set_num_threads(threads)
        if had:
            net.pt_path = old
        else:
            del net.pt_path
    target = osp.join(out_dir, GRAPHS['detector'])
    if osp.abspath(str(path)) != target:
        shutil.move(str(path), target)
    return target


def export_graphs(model, out_dir: str, opset: int = DEFAULT_OPSET) -> dict:
    """Write the encoder / decoder graphs (and the detector) of ``model`` into ``out_dir``; returns the
    ``graphs`` entry of the manifest. The graphs are deep copies in eval mode; the model is only put in eval mode
    (frozen parts already are) for the detector export."""
    check_exportable(model)
    model = model.eval()
    s = int(model.img_size)
    image = torch.from_numpy(np.random.default_rng(0).standard_normal((2, 3, s, s)).astype(np.float32))
    names = list(feature_names(model))  # the encoder's outputs, the decoders' first inputs
    encoder = EncoderGraph(model).cpu().float()
    _onnx_export(encoder, (image, ), osp.join(out_dir, GRAPHS['encoder']), ['image'], names, opset)
    with torch.no_grad():
        features = encoder(image)
    features = tuple(features) if isinstance(features, (tuple, list)) else (features, )
    graphs = dict(encoder=GRAPHS['encoder'])
    if model.prompter is not None:
        boxes = torch.tensor([[0.1 * s, 0.2 * s, 0.7 * s, 0.9 * s], [0.0, 0.0, s, s]])
        _onnx_export(BoxDecoderGraph(model).cpu().float(), (*features, boxes),
                     osp.join(out_dir, GRAPHS['box_decoder']), names + ['boxes'], ['logits'], opset)
        graphs['box_decoder'] = GRAPHS['box_decoder']
        export_yolo(model.prompter, out_dir, opset)
        graphs['detector'] = GRAPHS['detector']
    if model.prompter is None or model.prompter.fallback == 'none':  # box-less images exist
        _onnx_export(BoxlessDecoderGraph(model).cpu().float(), features,
                     osp.join(out_dir, GRAPHS['boxless_decoder']), names, ['logits'], opset)
        graphs['boxless_decoder'] = GRAPHS['boxless_decoder']
    return graphs


def model_info(model) -> dict:
    """Which kind of model was exported: ``family`` 'sam' (SAM ViT) or 'sam2' (SAM 2 Hiera), the parts' types and
    the encoder's arch."""
    parts = (type(model.backbone).__name__, type(model.decode_head).__name__)
    return dict(family=SUPPORTED_PARTS[parts], backbone=parts[0], arch=getattr(model.backbone, 'arch', None),
                prompt_encoder=type(model.prompt_encoder).__name__, decode_head=parts[1])


def manifest_fields(model, graphs: dict, test_pipeline, dataset_meta: dict, opset: int, source: dict) -> dict:
    head = model.decode_head
    meta = dict(classes=list(dataset_meta.get('classes', ())), palette=[list(map(int, c)) for c in
                                                                        dataset_meta.get('palette', ())])
    names = list(feature_names(model))
    inputs = dict(image='(N, 3, S, S) float32, normalised', boxes='(N, 4) float32 xyxy in SAM input px')
    if len(names) > 1:
        inputs.update(high_res_feat_s0='(N, C/8, S/4, S/4) float32', high_res_feat_s1='(N, C/4, S/8, S/8) float32')
    return dict(img_size=int(model.img_size), num_classes=int(head.num_classes), opset=opset, graphs=graphs,
                model=model_info(model), features=names, inputs=inputs,
                preprocess=preprocess_info(model, test_pipeline), dataset_meta=meta,
                postprocess=dict(align_corners=bool(head.align_corners), threshold=getattr(head, 'threshold', None)),
                prompter=prompter_info(model.prompter), learnable_prompt=model.learnable_prompt is not None,
                calibration=head.calibration.mode, lora_merged=True, source=source, versions=package_versions())


def export_model(model, out_dir: str, test_pipeline, dataset_meta: dict, opset: int = DEFAULT_OPSET,
                 source: Optional[dict] = None, force: bool = False) -> dict:
    """Export a built AM-SAM into ``out_dir`` (written next to it, renamed when complete). ``out_dir`` may be absent,
    empty or a previous export of ours; anything else needs ``force``. Returns the manifest."""
    check_exportable(model)
    out_dir = osp.abspath(out_dir)
    protected = {osp.abspath(os.getcwd()), osp.expanduser('~'), osp.abspath(os.sep)}
    if out_dir in protected or osp.abspath(os.getcwd()).startswith(out_dir + os.sep):
        raise FileExistsError(f'{out_dir} is the current directory, a parent of it or the home directory: an export '
                              'replaces OUT_DIR, give a new folder (e.g. exports/NAME)')
    if osp.exists(out_dir):
        if not osp.isdir(out_dir):
            raise FileExistsError(f'{out_dir} exists and is not a directory')
        if os.listdir(out_dir) and not is_our_export(out_dir) and not force:
            raise FileExistsError(f'{out_dir} is not empty and is not an ONNX export of mmseg_amsam (or holds files '
                                  'the export did not write): refusing to replace it (give another OUT_DIR, or '
                                  '--force to replace it)')
    os.makedirs(osp.dirname(out_dir), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f'.{osp.basename(out_dir)}.partial-', dir=osp.dirname(out_dir))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp's 0700 -> what os.makedirs would give
    try:
        graphs = export_graphs(model, tmp, opset)
        manifest = write_manifest(tmp, manifest_fields(model, graphs, test_pipeline, dataset_meta, opset,
                                                       source or {}))
        if osp.exists(out_dir):
            old = tempfile.mkdtemp(prefix=f'.{osp.basename(out_dir)}.old-', dir=osp.dirname(out_dir))
            os.rename(out_dir, osp.join(old, 'export'))
            try:
                os.rename(tmp, out_dir)
            except BaseException:
                os.rename(osp.join(old, 'export'), out_dir)  # put the previous export back
                os.rmdir(old)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def export_from_config(config, checkpoint: Optional[str], out_dir: str, opset: int = DEFAULT_OPSET,
                       cfg_options: Optional[dict] = None, force: bool = False) -> dict:
    """Build the model as :class:`~.inferencer.AMSAMInferencer` does (config + checkpoint, strict) and export it."""
    from .inferencer import AMSAMInferencer
    inferencer = AMSAMInferencer(config, checkpoint, device='cpu', cfg_options=cfg_options)
    check_exportable(inferencer.model)
    source = dict(config=config if isinstance(config, str) else None, checkpoint=checkpoint,
                  checkpoint_sha256=sha256_of(checkpoint) if checkpoint else None)
    return export_model(inferencer.model, out_dir, inferencer.pipeline_steps, inferencer.dataset_meta, opset,
                        source, force)
