"""How good are a config's automated prompts? Runs only its box prompter (``model.prompter``) over its test set.

    python tools/prompt_quality.py CONFIG [--cfg-options K=V ...] [--batch-size N] [--out FILE.json]

Example (a real detector, no SAM weights needed):
    python tools/prompt_quality.py configs/amsam_humanseg_8shot.py --batch-size 8 --out work_dirs/pq.json \
        --cfg-options model.prompter.model=person_yolov8.pt model.prompter.classes=None

The test dataloader (the config's real test pipeline and data preprocessor; ``--batch-size`` replaces its batch
size) feeds the prompter exactly as ``AMSAM.frozen_features`` does. Printed: images, detection rate, fallbacks,
mean IoU of the prompt box SAM gets (detected box, or the whole-image box of a fallback) with the box of the
ground-truth mask, and the share with IoU >= 0.5 (``PromptTelemetry``). ``--out`` writes per image the detected box
in original-image pixels (null for a fallback, as tools/infer.py), the fallback flag and the IoU, and the summary.
A missing config, weights file or dataset: one message, exit code 2 (``--debug``: the traceback).
"""
import argparse
import copy
import json
import os
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
os.environ.setdefault('YOLO_VERBOSE', 'False')

import torch  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmengine.runner import Runner  # noqa: E402
from mmseg.registry import MODELS  # noqa: E402
from tqdm import tqdm  # noqa: E402

import mmseg_amsam  # noqa: E402,F401  registers the prompters
from mmseg_amsam.apis.cli_errors import held_console, run_cli  # noqa: E402
from mmseg_amsam.apis.prerequisites import check_prerequisites  # noqa: E402
from mmseg_amsam.apis.run_config import load_run_config  # noqa: E402
from mmseg_amsam.models.prompters.box_geometry import prompt_box_in_original  # noqa: E402
from mmseg_amsam.models.prompters.pipeline_geometry import dataset_pipeline  # noqa: E402
from mmseg_amsam.models.prompters.prompt_telemetry import fallback_warning, format_summary  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Measure a config's automated prompts (detection rate, fallbacks, "
                                     'box IoU with the GT box) on its test set, building only model.prompter')
    parser.add_argument('config', help='config file, e.g. configs/amsam_humanseg_8shot.py')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override settings in the config')
    parser.add_argument('--batch-size', type=int, default=1, help='images per prompter call (default 1)')
    parser.add_argument('--out', help='write per-image boxes (original pixels) and the summary to this JSON file')
    parser.add_argument('--device', default='cpu', help="where the detector runs: 'cpu', 'cuda:0' ...")
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    parser.add_argument('--debug', action='store_true', help='show the traceback of known errors')
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f'--batch-size must be >= 1, got {args.batch_size}')
    return args


def check_inputs(cfg: Config) -> None:
    """The prompter and a test set must be configured; only the prompter's weights and the test data must exist."""
    model = cfg.get('model') or {}
    if not model.get('prompter'):
        raise ValueError(f"the config's model ({model.get('type')}) has no prompter (model.prompter): there are no "
                         'automated prompts to measure')
    if not cfg.get('test_dataloader'):
        raise ValueError('the config has no test_dataloader: there is no test set to measure the prompts on')
    # SAM and other weights are not needed here: check the prompter's files and the test data only
    check_prerequisites(Config(dict(model=dict(prompter=model['prompter']), test_dataloader=cfg.test_dataloader)),
                        phases=('test', ))


def build(cfg: Config, batch_size: int, device: str):
    """(prompter, data preprocessor, test dataloader) of ``cfg``; nothing else of the model is built."""
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    prompter = MODELS.build(copy.deepcopy(cfg.model.prompter)).to(device).eval()
    preprocessor = MODELS.build(copy.deepcopy(cfg.model.get('data_preprocessor') or dict(type='SegDataPreProcessor')))
    loader_cfg = copy.deepcopy(cfg.test_dataloader)
    loader_cfg['batch_size'] = batch_size
    if hasattr(prompter, 'check_pipeline'):  # boxes found on the original must follow the pipeline's geometry
        prompter.check_pipeline(dataset_pipeline(loader_cfg['dataset']) or [], 'the test pipeline')
    return prompter, preprocessor.to(device), Runner.build_dataloader(loader_cfg)


def image_record(sample) -> dict:
    """What the prompter recorded for one sample (``BoxPrompter.forward``), its box mapped back to the original
    image through the recorded resize / flip and clipped to it (as ``AMSAMInferencer``)."""
    meta = sample.metainfo
    ori_h, ori_w = (int(v) for v in meta['ori_shape'][:2])
    box = prompt_box_in_original(meta)
    box = list(box) if box is not None else None
    return dict(img_path=meta.get('img_path'), ori_shape=[ori_h, ori_w], box=box,
                fallback=bool(meta['prompt_fallback']), iou=meta.get('prompt_iou'))


def measure(prompter, preprocessor, loader, progress: bool = True):
    """Run the prompter over every batch as ``AMSAM.frozen_features`` does -> (per-image records, summary)."""
    telemetry = prompter.telemetry['eval']
    telemetry.reset()
    records = []
    with torch.no_grad():
        for data in tqdm(loader, desc='prompts', unit='batch', disable=not progress):
            data = preprocessor(data, False)
            prompter(data['inputs'], data['data_samples'])
            records.extend(image_record(s) for s in data['data_samples'])
    return records, telemetry.summary()


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = load_run_config(args.config, args.cfg_options)
    check_inputs(cfg)
    with held_console(not args.debug):  # a refusal while building is the only thing printed
        prompter, preprocessor, loader = build(cfg, args.batch_size, args.device)
    start = time.perf_counter()
    records, summary = measure(prompter, preprocessor, loader, progress=not args.no_progress)
    seconds = time.perf_counter() - start
    print(f'{type(prompter).__name__} on {len(records)} test images (batch size {args.batch_size}, '
          f'{seconds:.1f} s): {format_summary(summary)}')
    warning = fallback_warning(int(summary['fallbacks']), int(summary['prompts']),
                               getattr(prompter, 'warn_fallback_rate', None))
    if records and warning:
        print(f'WARNING: {warning}')
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(dict(config=args.config, cfg_options=args.cfg_options, batch_size=args.batch_size,
                           prompter=type(prompter).__name__, seconds=seconds, summary=summary, images=records),
                      f, indent=1, default=str)
        print(f'per-image prompts: {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
