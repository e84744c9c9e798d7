"""Segment images with a trained model: one mask PNG per image (+ optional overlays with the prompt box).

    python tools/infer.py CONFIG CHECKPOINT INPUT --out DIR [--overlay] [--palette] [--batch-size N] [--device D]
    python tools/infer.py CONFIG none INPUT --out DIR [...]   (the model as built from the config, as tools/test.py)
    python tools/infer.py --backend onnxruntime EXPORT_DIR INPUT --out DIR [...]   (an export of tools/export_onnx.py)

INPUT is an image file, a folder (its images, not recursive) or a glob pattern (quote it: 'data/**/*.jpg').
Writes, in DIR:
    NAME.png            the mask: pixel value = class (0 background, 1 foreground); with --palette a colour PNG
    NAME_overlay.png    (--overlay) the image with the mask blended in and the prompt box drawn
    predictions.json    per image: mask file, detected prompt box (original pixels) or null, `fallback` (true when
                        the prompter found no box and used the whole image, or nothing; absent without a
                        prompter), foreground fraction; and a `prompts` summary (detections, fallbacks)
The onnxruntime backend runs the exported graphs (and the exported YOLO) with the same pre- and post-processing and
the same prompt-box code, and writes the same files; it checks the export's files against its manifest first.
Unreadable images are skipped with a warning naming them; the others are processed and the exit status is 1 when
any image failed (2 when INPUT matches no image).
"""
import argparse
import glob
import json
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.config import DictAction  # noqa: E402

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
BACKENDS = ('pytorch', 'onnxruntime')
NO_CHECKPOINT = 'none'  # as tools/test.py: the model as built from the config (frozen SAM, nothing trained)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a whole number >= 1, got {text!r}') from None
    if value < 1:
        raise argparse.ArgumentTypeError(f'must be >= 1 (images per forward pass), got {value}')
    return value


def opacity(text: str) -> float:
    """argparse type: a number in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a number between 0 and 1, got {text!r}') from None
    if not 0.0 <= value <= 1.0:  # also refuses nan
        raise argparse.ArgumentTypeError(f'must be between 0 (image only) and 1 (mask colour only), got {text}')
    return value


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Segment images with a trained AM-SAM (or any mmseg) model',
        usage='%(prog)s [--backend pytorch] CONFIG CHECKPOINT INPUT --out DIR [options]\n'
              '       %(prog)s --backend onnxruntime EXPORT_DIR INPUT --out DIR [options]')
    parser.add_argument('paths', nargs='+', metavar='PATH',
                        help='pytorch: config file, checkpoint (full or trainable-only, or `none` for the model as '
                        'built from the config, e.g. configs/sam-yolo_*.py: pretrained SAM + YOLO, nothing trained) '
                        'and INPUT; onnxruntime: the export directory and INPUT. INPUT: an image, a folder of images, '
                        'or a glob pattern')
    parser.add_argument('--backend', choices=BACKENDS, default='pytorch',
                        help='pytorch (default) or onnxruntime (an export of tools/export_onnx.py, CPU)')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--overlay', action='store_true', help='also write NAME_overlay.png with the prompt box')
    parser.add_argument('--palette', action='store_true', help='colour mask PNGs with the dataset palette')
    parser.add_argument('--batch-size', type=positive_int, default=1, help='images per forward pass (default 1)')
    parser.add_argument('--device', default=None,
                        help="'cpu', 'cuda:0' ... (pytorch backend; default: cuda:0 if available)")
    parser.add_argument('--opacity', type=opacity, default=0.5,
                        help='mask opacity in overlays, 0 to 1 (default 0.5)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='config overrides, key=value (pytorch)')
    parser.add_argument('--debug', action='store_true', help='show the traceback of known errors (bad checkpoint ...)')
    args = parser.parse_args(argv)
    wanted = 3 if args.backend == 'pytorch' else 2
    if len(args.paths) != wanted:
        usage = 'CONFIG CHECKPOINT INPUT' if wanted == 3 else 'EXPORT_DIR INPUT'
        parser.error(f'--backend {args.backend} takes {usage}, got {len(args.paths)} path(s): {" ".join(args.paths)}')
    if args.backend == 'onnxruntime' and args.cfg_options:
        parser.error('--cfg-options applies to the pytorch backend (an export is fixed: export again to change it)')
    args.config, args.checkpoint = (args.paths[0], args.paths[1]) if wanted == 3 else (None, None)
    if args.checkpoint is not None and args.checkpoint.lower() == NO_CHECKPOINT:
        args.checkpoint = None  # AMSAMInferencer without a checkpoint: the model as built from the config
    args.export_dir = args.paths[0] if wanted == 2 else None
    args.input = args.paths[-1]
    return args


def collect_inputs(spec: str):
    """Image paths named by a file, a folder or a glob, sorted."""
    if osp.isdir(spec):
        return sorted(osp.join(spec, f) for f in os.listdir(spec)
                      if f.lower().endswith(IMG_EXTENSIONS) and osp.isfile(osp.join(spec, f)))
    if osp.isfile(spec):
        return [spec]
    return sorted(p for p in glob.glob(spec, recursive=True) if osp.isfile(p) and p.lower().endswith(IMG_EXTENSIONS))


def output_names(paths):
    """File stems for the outputs, unique even when two inputs share a stem (a.jpg, a.png -> a_jpg, a_png)."""
    stems = [osp.splitext(osp.basename(p))[0] for p in paths]
    dup = {s for s in stems if stems.count(s) > 1}
    names, used = [], set()
    for path, stem in zip(paths, stems):
        name = f'{stem}_{osp.splitext(path)[1].lstrip(".").lower()}' if stem in dup else stem
        base, k = name, 1
        while name in used:
            k += 1
            name = f'{base}_{k}'
        used.add(name)
        names.append(name)
    return names


def prompt_summary(records, warn_fallback_rate=None):
    """Detections / fallbacks over the images (None without a prompter); warns once when too many fell back.
    A multi-class model prompts each image once per class: ``prompts`` (images x classes) replaces ``images``."""
    per_class = any(isinstance(r.get('fallback'), list) for r in records)
    flags = [f for r in records if 'fallback' in r for f in (r['fallback'] if per_class else [r['fallback']])]
    if not flags:
        return None
    summary = {'prompts' if per_class else 'images': len(flags), 'detections': flags.count(False),
               'fallbacks': flags.count(True)}
    from mmseg_amsam.models.prompters.prompt_telemetry import fallback_warning
    warning = fallback_warning(summary['fallbacks'], len(flags), warn_fallback_rate)
    if warning:
        print(f'WARNING: {warning}', file=sys.stderr)
    return summary


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault('YOLO_VERBOSE', 'False')
    import cv2
    import numpy as np
    import torch
    from tqdm import tqdm

    from mmseg_amsam.apis import AMSAMInferencer, ONNXInferencer
    from mmseg_amsam.apis.drawing import overlay, save_mask

    paths = collect_inputs(args.input)
    if not paths:
        print(f'error: no image matches {args.input!r} (extensions: {" ".join(IMG_EXTENSIONS)})', file=sys.stderr)
        return 2
    if args.backend == 'onnxruntime':
        inferencer = ONNXInferencer(args.export_dir, batch_size=args.batch_size)
    else:
        device = args.device or ('cuda:0' if torch.cuda.is_available() else 'cpu')
        inferencer = AMSAMInferencer(args.config, args.checkpoint, device=device, cfg_options=args.cfg_options,
                                     batch_size=args.batch_size)
    palette = inferencer.dataset_meta.get('palette')
    os.makedirs(args.out, exist_ok=True)
    names = dict(zip(paths, output_names(paths)))
    failed, records = [], []
    with tqdm(total=len(paths), desc='infer', unit='img') as bar:
        for path, result in zip(paths, inferencer.predict_iter(paths, errors='skip')):
            bar.update(1)
            if not result.ok:
                failed.append(path)
                tqdm.write(f'warning: {result.error} -- skipped', file=sys.stderr)
                continue
            name = names[path]
            mask_file = osp.join(args.out, f'{name}.png')
            save_mask(result.mask, mask_file, palette if args.palette else None)
            per_class = isinstance(result.fallback, list)  # class prompts: a box and a fallback per class

            def rounded(box):
                return [round(v, 2) for v in box] if box else None
            record = dict(image=path, mask=osp.basename(mask_file),
                          box=[rounded(b) for b in result.box] if per_class else rounded(result.box),
                          foreground_fraction=round(float((result.mask > 0).mean()), 6))
            if result.fallback is not None:
                record['fallback'] = [bool(f) for f in result.fallback] if per_class else bool(result.fallback)
            if args.overlay:
                bgr = cv2.imread(path, cv2.IMREAD_COLOR)
                if bgr is not None:
                    overlay_file = osp.join(args.out, f'{name}_overlay.png')
                    boxes = [b for b in result.box if b] if per_class else result.box
                    drawn = overlay(bgr[..., ::-1], result.mask, boxes, palette, args.opacity)
                    cv2.imwrite(overlay_file, np.ascontiguousarray(drawn[..., ::-1]))
                    record['overlay'] = osp.basename(overlay_file)
            records.append(record)
    summary = prompt_summary(records, getattr(getattr(inferencer.model, 'prompter', None), 'warn_fallback_rate', None))
    with open(osp.join(args.out, 'predictions.json'), 'w') as f:
        source = dict(config=args.config, checkpoint=args.checkpoint) if args.backend == 'pytorch' else \
            dict(backend=args.backend, export_dir=args.export_dir)
        json.dump(dict(**source, failed=failed, images=records, **(dict(prompts=summary) if summary else {})), f,
                  indent=1)
    print(f'{len(records)} of {len(paths)} images segmented into {args.out}')
    if summary:
        print(f'prompt boxes: {summary["detections"]} detected, {summary["fallbacks"]} fallbacks')
    if failed:
        print(f'error: {len(failed)} image(s) could not be read: {", ".join(failed)}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    from mmseg_amsam.apis.cli_errors import run_cli  # known user errors: one message, exit code 2 (--debug: traceback)
    sys.exit(run_cli(main))
