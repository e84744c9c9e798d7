"""Export a trained AM-SAM to ONNX (run it with ``tools/infer.py --backend onnxruntime OUT_DIR INPUT --out DIR``).

    python tools/export_onnx.py CONFIG CHECKPOINT OUT_DIR [--opset 17] [--cfg-options k=v ...] [--force] [--debug]

Writes into OUT_DIR: image_encoder.onnx, prompt_decoder.onnx (box prompts; LoRA merged, calibration folded, the
learned prompt baked in; logits at the SAM input size), prompt_decoder_boxless.onnx (when the model decodes
box-less images: no prompter, or fallback='none'), yolo.onnx (ultralytics' export of the prompter's detector) and
manifest.json (preprocessing, classes / palette, prompter settings, SHA-256 of every file, versions). OUT_DIR is
written complete or not at all (a temporary directory next to it, then renamed); an existing OUT_DIR is replaced
only when it is empty or a previous export (--force: anything). CHECKPOINT may be `none` (the model as built).
Models that cannot be exported (baselines, calibration='batch', non-YOLO prompters, class prompts) are refused.
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.config import DictAction  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Export a trained AM-SAM to ONNX (encoder, decoder, YOLO, manifest)')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint (full or trainable-only), or `none`')
    parser.add_argument('out_dir', help='output directory (created; replaced when it holds a previous export)')
    parser.add_argument('--opset', type=int, default=17, help='ONNX opset (default 17)')
    parser.add_argument('--force', action='store_true', help='replace OUT_DIR even if it is not a previous export')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='config overrides, key=value')
    parser.add_argument('--debug', action='store_true', help='show the traceback of known errors')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault('YOLO_VERBOSE', 'False')
    from mmseg_amsam.apis.cli_errors import held_console
    from mmseg_amsam.apis.onnx_export import export_from_config

    checkpoint = None if args.checkpoint.lower() == 'none' else args.checkpoint
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config file not found: {args.config!r}')
    if checkpoint and not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {checkpoint!r}')
    if args.opset < 14:
        raise ValueError(f'--opset must be 14 or more (the decoder graphs need it), got {args.opset}')
    with held_console(not args.debug):  # a refusal is the only thing printed
        manifest = export_from_config(args.config, checkpoint, args.out_dir, opset=args.opset,
                                      cfg_options=args.cfg_options, force=args.force)
    print(f'exported to {args.out_dir}: {", ".join(manifest["files"])} + manifest.json')
    return 0


if __name__ == '__main__':
    from mmseg_amsam.apis.cli_errors import run_cli  # known user errors: one message, exit code 2 (--debug: traceback)
    sys.exit(run_cli(main))
