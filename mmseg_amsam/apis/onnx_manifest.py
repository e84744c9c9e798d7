"""``manifest.json`` of an ONNX export: what the runtime needs besides the graphs, and the SHA-256 of every file.

    dict(format='mmseg_amsam.onnx', format_version=1 (SAM) | 2 (SAM 2), img_size=...,
         graphs=dict(encoder='image_encoder.onnx', ...),
         model=dict(family='sam' | 'sam2', backbone=..., arch=..., prompt_encoder=..., decode_head=...),
         features=['image_embeddings'] | ['image_embeddings', 'high_res_feat_s0', 'high_res_feat_s1'],
         preprocess=dict(mean=..., std=..., bgr_to_rgb=..., pad_val=..., data_preprocessor=..., test_pipeline=...),
         dataset_meta=dict(classes=..., palette=...), postprocess=dict(align_corners=..., threshold=...),
         prompter=None | dict(type='YOLOBoxPrompter', detector='yolo.onnx', conf=..., class_ids=..., ...),
         learnable_prompt=bool, source=dict(config=..., checkpoint=..., checkpoint_sha256=...),
         versions=dict(torch=..., onnx=..., ...), files={name: sha256})

:func:`read_manifest` refuses, with one message naming the file, an export with a missing, added-to-the-list or
modified file (:class:`ExportIntegrityError`, a ``ValueError``: the tools report it as a user error).
"""
import hashlib
import json
import os
import os.path as osp
from typing import Dict

FORMAT = 'mmseg_amsam.onnx'
FORMAT_VERSION = 1  # SAM exports: one encoder output (readers of version 1 read them)
FORMAT_VERSION_SAM2 = 2  # SAM 2 exports: three encoder outputs (a version-1 reader would feed one)
READABLE_VERSIONS = (FORMAT_VERSION, FORMAT_VERSION_SAM2)
MANIFEST = 'manifest.json'


class ExportIntegrityError(ValueError):
    """An export directory is incomplete, modified, or not one of ours."""


def sha256_of(path: str) -> str:
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


def package_versions() -> Dict[str, str]:
    """Versions of the packages that made (or run) the export; absent packages are left out."""
    from importlib.metadata import PackageNotFoundError, version
    out = {}
    for name in ('mmseg_amsam', 'torch', 'onnx', 'onnxruntime', 'ultralytics', 'mmsegmentation', 'mmengine',
                 'segment_anything'):
        try:
            out[name] = version(name.replace('_', '-') if name == 'segment_anything' else name)
        except PackageNotFoundError:
            continue
    return out


def write_manifest(out_dir: str, manifest: dict) -> dict:
    """Hash every file of ``out_dir`` (the graphs, any external-data file, the detector) into the manifest and write
    it as ``manifest.json``; returns the written manifest."""
    files = {}
    for root, _, names in os.walk(out_dir):
        for name in sorted(names):
            rel = osp.relpath(osp.join(root, name), out_dir).replace(os.sep, '/')
            if rel != MANIFEST:
                files[rel] = sha256_of(osp.join(root, name))
    version = FORMAT_VERSION if len(manifest.get('features', ('image_embeddings', ))) == 1 else FORMAT_VERSION_SAM2
    manifest = dict(format=FORMAT, format_version=version, **manifest, files=dict(sorted(files.items())))
    with open(osp.join(out_dir, MANIFEST), 'w') as f:
        json.dump(manifest, f, indent=1)
    return manifest


def is_our_export(path: str) -> bool:
    """True when ``path`` holds a ``manifest.json`` written by :func:`write_manifest` and nothing but the files it
    lists (a file added by someone else makes the folder not ours to replace)."""
    try:
        with open(osp.join(path, MANIFEST)) as f:
            manifest = json.load(f)
        if manifest.get('format') != FORMAT:
            return False
        listed = set(manifest.get('files') or {}) | {MANIFEST}
        present = {osp.relpath(osp.join(root, n), path).replace(os.sep, '/') for root, _, names in os.walk(path)
                   for n in names}
        return present <= listed
    except (OSError, ValueError, AttributeError):
        return False


def read_manifest(export_dir: str, verify: bool = True) -> dict:
    """The manifest of ``export_dir``, after checking every listed file against its SHA-256 (``verify``)."""
    if not osp.isdir(export_dir):
        raise FileNotFoundError(f'ONNX export directory not found: {export_dir!r} (make one with tools/export_onnx.py)')
    path = osp.join(export_dir, MANIFEST)
    try:
        with open(path) as f:
            manifest = json.load(f)
    except FileNotFoundError:
        raise ExportIntegrityError(f'{export_dir} is not an ONNX export of mmseg_amsam: it has no {MANIFEST} '
                                   '(make one with tools/export_onnx.py CONFIG CHECKPOINT OUT_DIR)') from None
    except ValueError as exc:
        raise ExportIntegrityError(f'{path} is not valid JSON ({exc}); export the model again') from None
    if not isinstance(manifest, dict) or manifest.get('format') != FORMAT:
        raise ExportIntegrityError(f'{path} is not the manifest of an mmseg_amsam ONNX export')
    if manifest.get('format_version') not in READABLE_VERSIONS:
        raise ExportIntegrityError(f'{path} has format_version {manifest.get("format_version")!r}; this version of '
                                   f'mmseg_amsam reads {" and ".join(map(str, READABLE_VERSIONS))}: export the model '
                                   'again')
    files = manifest.get('files')
    graphs = manifest.get('graphs') or {}
    if verify and (not isinstance(files, dict) or not files):
        raise ExportIntegrityError(f'{path} lists no files with their SHA-256: the export cannot be verified; export '
                                   'the model again')
    unsafe = [n for n in (files or {}) if osp.isabs(n) or '..' in n.replace('\\', '/').split('/')]
    unlisted = [g for g in graphs.values() if isinstance(g, str) and g not in (files or {})]
    if verify and (unsafe or unlisted):
        raise ExportIntegrityError(f'{path} names files outside the export or not verified by it '
                                   f'({", ".join(unsafe + unlisted)}); export the model again')
    if verify:
        for name, digest in files.items():
            file = osp.join(export_dir, name)
            if not osp.isfile(file):
                raise ExportIntegrityError(f'{file} is missing from the ONNX export (listed in {MANIFEST}); export '
                                           'the model again')
            if sha256_of(file) != digest:
                raise ExportIntegrityError(f'{file} was modified after the export (its SHA-256 differs from '
                                           f'{MANIFEST}); export the model again')
    return manifest
