"""Few-shot detector adaptation: fine-tune a YOLO detector on the k training images of a prepared dataset, the boxes
of their masks as labels (one class, 'object'), and report its prompt-box quality before and after.

    python tools/adapt_detector.py WEIGHTS DATA_ROOT --split splits/train_8shot.txt [--epochs 50] [--imgsz 640]
        [--cache-dir work_dirs/adapted_detectors] [--report-split test] [--device cpu]

Only the split's images train the detector (never a test image). The adapted weights are cached by split + weights
digest + settings (a second run with the same inputs trains nothing) and their path is printed last. Use them in a
config with ``model.prompter.model=PATH model.prompter.classes=None``, or let a config run the adaptation itself:
``model.prompter.adapt=dict(data_root=..., ann_file=...)`` (the ``amsam-adapt_*`` configs do).
``--report-split test`` also measures (without training on them) the box IoU on that split's images. Every image and
mask of the split is decoded first; WEIGHTS is read weights-only (``--trust-weights-file`` for a legacy file you
trust). Bad input: one message, exit code 2 (``--debug``: the traceback).
"""
import argparse
import json
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Fine-tune a YOLO detector on the k training images (mask boxes)')
    parser.add_argument('weights', help='starting YOLO weights (.pt) or model yaml')
    parser.add_argument('data_root', help='prepared dataset (img_dir/, ann_dir/, splits/)')
    parser.add_argument('--split', required=True, help='few-shot split file, relative to DATA_ROOT')
    parser.add_argument('--epochs', type=int, default=50)
    parser.add_argument('--imgsz', type=int, default=640)
    parser.add_argument('--lr0', type=float, default=0.002)
    parser.add_argument('--mosaic', type=float, default=None, help="ultralytics' mosaic probability (default: "
                        "ultralytics'; 0 often helps with very few images)")
    parser.add_argument('--freeze', type=int, default=None, help="freeze the first N layers (ultralytics' freeze; 10 = "
                        "a YOLOv8's backbone): keeps a pretrained detector from drifting on a handful of images")
    parser.add_argument('--keep-class', type=int, default=None, help="keep the detector's classes and head and label "
                        "the boxes as this class id (default: one new class 'object', head trained afresh)")
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--conf', type=float, default=0.25, help='confidence threshold of the reported boxes')
    parser.add_argument('--cache-dir', default='work_dirs/adapted_detectors')
    parser.add_argument('--report-split', default=None, help="also report on this split's images, e.g. 'test'")
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--trust-weights-file', action='store_true', help='unpickle WEIGHTS fully (its code runs): '
                        'only for a legacy file you made and trust; ultralytics-saved weights never need it')
    parser.add_argument('--debug', action='store_true', help='show the traceback of a refused input')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault('YOLO_VERBOSE', 'False')
    from mmseg_amsam.models.prompters.detector_adaptation import adapt_yolo, adaptation_report, format_report
    from mmseg_amsam.models.prompters.yolo_box_prompter import load_yolo

    before = load_yolo(args.weights, args.trust_weights_file)
    adapted = adapt_yolo(args.weights, args.data_root, args.split, epochs=args.epochs, imgsz=args.imgsz,
                         lr0=args.lr0, seed=args.seed, device=args.device, cache_dir=args.cache_dir,
                         keep_class=args.keep_class, trust_weights_file=args.trust_weights_file,
                         **{k: v for k, v in dict(mosaic=args.mosaic, freeze=args.freeze).items() if v is not None})
    report = adaptation_report(before, load_yolo(adapted), args.data_root, args.split, args.report_split,
                               args.conf, args.imgsz, args.device)
    print('\n'.join(format_report(report)))
    with open(osp.join(osp.dirname(adapted), 'report.json'), 'w') as f:
        json.dump(dict(weights=args.weights, split=args.split, adapted=adapted, report=report), f, indent=1)
    print(adapted)
    return 0


if __name__ == '__main__':
    from mmseg_amsam.apis.cli_errors import run_cli
    sys.exit(run_cli(main))
