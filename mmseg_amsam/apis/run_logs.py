"""Reading finished mmengine runs: validation curves, test metrics and the experiment a run belongs to.

What mmengine 0.10.7 writes in a work dir (one ``TIMESTAMP`` folder per ``Runner``)::

    WORK_DIR/CONFIG_NAME.py                          the config (Runner.dump_config)
    WORK_DIR/TIMESTAMP/TIMESTAMP.log                 the log
    WORK_DIR/TIMESTAMP/vis_data/scalars.json         training: one JSON object per line (LocalVisBackend);
                                                     validation lines hold the metrics and ``step`` = epoch
    WORK_DIR/TIMESTAMP/TIMESTAMP.json                ``runner.test()``: the test metrics (one JSON object)
"""
import glob
import json
import os.path as osp
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

TIMESTAMP = re.compile(r'^\d{8}_\d{6}$')
TRAIN_KEYS = ('loss', 'lr', 'iter', 'epoch')  # present in training lines, absent from validation lines

# config-name tokens -> dataset shown in tables (paper order), and method prefixes -> names used in the paper
DATASETS = {'tiktok': 'TikTok', 'humanseg': 'HumanSeg', 'human': 'HumanSeg', 'vikram': 'HumanSeg',
            'isic': 'ISIC 2018', 'isic2018': 'ISIC 2018', 'demo': 'Demo shapes', 'demoshapes': 'Demo shapes'}
DATASET_ORDER = ['TikTok', 'HumanSeg', 'ISIC 2018', 'Demo shapes']
METHODS = {'deeplab': 'DeepLab', 'deeplabv3': 'DeepLab', 'deeplabv3plus': 'DeepLabV3+', 'swinunet': 'SwinUnet',
           'swin-unet': 'SwinUnet', 'hsnet': 'HSNet', 'ssp': 'SSP', 'sam': 'SAM', 'sam-yolo': 'SAM + YOLO',
           'medsa': 'Med-SA', 'med-sa': 'Med-SA', 'samed': 'SAMed', 'blosam': 'BLO-SAM', 'blo-sam': 'BLO-SAM',
           'amsam': 'AM-SAM', 'am-sam': 'AM-SAM',
           # Table 4 ablations (configs/amsam-yolo_*: YOLO box, no calibration; amsam-calib_*: the reverse)
           'amsam-yolo': 'AM-SAM (YOLO only)', 'amsam-calib': 'AM-SAM (calibration only)'}
METHOD_ORDER = ['DeepLab', 'DeepLabV3+', 'SwinUnet', 'HSNet', 'SSP', 'SAM', 'SAM + YOLO', 'Med-SA', 'SAMed',
                'BLO-SAM', 'AM-SAM']


class RunError(RuntimeError):
    """A work dir does not hold what was asked for."""


@dataclass
class Experiment:
    name: str  # config name, e.g. amsam_isic_8shot
    method: str  # display name, e.g. AM-SAM
    dataset: Optional[str]  # display name, e.g. ISIC 2018
    shots: Optional[int]


def timestamp_dirs(work_dir: str) -> List[str]:
    return sorted(d for d in glob.glob(osp.join(work_dir, '*')) if osp.isdir(d) and TIMESTAMP.match(osp.basename(d)))


def _read_json_lines(path: str) -> List[dict]:
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a line cut by an interrupted run
    return out


def val_curve(work_dir: str, metric: str = 'mDice') -> List[Tuple[int, float]]:
    """``[(step, value)]`` of the validation metric over every run in ``work_dir`` (a resumed run's later values
    replace earlier ones at the same step). Raises :class:`RunError` when there is none."""
    files = [osp.join(d, 'vis_data', 'scalars.json') for d in timestamp_dirs(work_dir)]
    files = [f for f in files if osp.isfile(f)]
    if not files:
        raise RunError(f'{work_dir}: no TIMESTAMP/vis_data/scalars.json: not an mmengine work dir, or the run had no '
                       "LocalVisBackend (visualizer.vis_backends=[dict(type='LocalVisBackend')]).")
    points: Dict[int, float] = {}
    seen = set()
    for path in files:
        for entry in _read_json_lines(path):
            seen.update(entry)
            if metric in entry and 'step' in entry and not any(k in entry for k in TRAIN_KEYS):
                points[int(entry['step'])] = float(entry[metric])
    if not points:
        metrics = sorted(k for k in seen if k not in ('step', 'time', 'data_time') and not k.startswith(
            ('lower.', 'upper.', 'decode.')) and k not in TRAIN_KEYS)
        raise RunError(f'{work_dir}: no validation {metric!r} in {", ".join(files)} (validation metrics found: '
                       f'{metrics or "none"}). Did the run validate (train_cfg.val_interval) and is the metric '
                       'name right (--metric)?')
    return sorted(points.items())


def find_test_runs(work_dir: str, metric: str = 'mDice') -> List[Tuple[str, dict]]:
    """``[(json path, metrics)]`` of every ``runner.test()`` under ``work_dir`` (searched two levels deep, so a
    training work dir with its ``test/`` sub-folder works), oldest first."""
    found = []
    for path in glob.glob(osp.join(work_dir, '**', '*.json'), recursive=True):
        stem, parent = osp.splitext(osp.basename(path))[0], osp.basename(osp.dirname(path))
        if not TIMESTAMP.match(stem) or parent != stem:
            continue
        entries = _read_json_lines(path)
        if entries and metric in entries[-1]:
            found.append((path, entries[-1]))
    return sorted(found, key=lambda item: osp.basename(item[0]))


def config_name(run_dir: str, near: Optional[str] = None) -> str:
    """The config name of the run in ``run_dir`` (the work dir holding the TIMESTAMP folders): the dumped
    ``CONFIG_NAME.py`` (the one written closest to ``near``'s time when several), else the folder name."""
    configs = glob.glob(osp.join(run_dir, '*.py'))
    if configs:
        if near and len(configs) > 1:
            t = osp.getmtime(near)
            configs.sort(key=lambda c: abs(osp.getmtime(c) - t))
        return osp.splitext(osp.basename(configs[0]))[0]
    name = osp.basename(osp.normpath(run_dir))
    if name in ('test', 'eval') and osp.dirname(osp.normpath(run_dir)):
        name = osp.basename(osp.dirname(osp.normpath(run_dir)))
    return name


def parse_experiment(name: str) -> Experiment:
    """``amsam_isic_8shot`` -> AM-SAM / ISIC 2018 / 8; the method is everything before the dataset token."""
    tokens = name.lower().split('_')
    idx = next((i for i, t in enumerate(tokens) if t in DATASETS), None)
    shots = None
    for t in tokens:
        m = re.fullmatch(r'(\d+)-?shots?', t)
        if m:
            shots = int(m.group(1))
    if idx is None:
        return Experiment(name, _method_name(tokens), None, shots)
    return Experiment(name, _method_name(tokens[:idx] or [name]), DATASETS[tokens[idx]], shots)


def _method_name(tokens: List[str]) -> str:
    if not tokens:
        return '?'
    joined = '_'.join(tokens)
    if joined in METHODS or joined.replace('_', '-') in METHODS:
        return METHODS.get(joined, METHODS.get(joined.replace('_', '-')))
    head, rest = tokens[0], tokens[1:]
    if head in METHODS:  # a variant: amsam_nocalib -> AM-SAM (nocalib)
        return METHODS[head] + f' ({" ".join(rest)})'
    base, _, variant = head.partition('-')
    if base in METHODS and variant:  # amsam-lowalpha -> AM-SAM (lowalpha)
        return METHODS[base] + f' ({" ".join([variant] + rest)})'
    return joined
