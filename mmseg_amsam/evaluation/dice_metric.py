"""Dice score (AM-SAM paper, eq. 13) as an mmengine metric for mmseg val/test loops."""
import os
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log
from mmseg.registry import METRICS
from PIL import Image
from prettytable import PrettyTable


@METRICS.register_module()
class DiceMetric(BaseMetric):
    """Dice = 2|A ∩ B| / (|A| + |B|) between predicted and ground-truth masks, per class, in percent.

    Used like mmseg's ``IoUMetric``: ``val_evaluator = dict(type='DiceMetric')``. It reads
    ``data_sample['pred_sem_seg']['data']`` and ``data_sample['gt_sem_seg']['data']`` and evaluates at the
    resolution they are given in (mmseg models return predictions at the original image size, where the test
    pipeline keeps the ground truth). Pixels whose ground truth is ``ignore_index`` are excluded.

    Reported values (percent, not rounded):

    * ``mDice``: mean over images of the per-image Dice (the paper's protocol). The per-image Dice is the mean
      over the evaluated classes (1..C-1, plus 0 with ``include_background``); for a binary task it is simply
      the Dice of class 1 in that image.
    * ``aDice``: aggregated Dice, 2·Σ|A∩B| / Σ(|A|+|B|) over the whole dataset, per class, then averaged over
      the evaluated classes. Large objects weigh more; predicted pixels in images without that class count as
      false positives whatever ``empty_gt`` says.
    * ``Dice.<class>`` / ``aDice.<class>``: the two quantities for each evaluated class.

    With a box prompter (samples carrying ``prompt_fallback`` / ``prompt_iou``, see ``BoxPrompter``) the printed
    table gains the prompt columns: ``Prompt det. %`` (images with a detected box), ``Fallbacks`` (images
    without), ``Box IoU`` (mean IoU of the prompt SAM got with the ground-truth mask's box) and ``IoU>=0.5 %``;
    with class prompts (multi-class AM-SAM) each class's row has its own prompts' columns.
    They are also logged as ``{val,test}/prompt_*`` scalars by ``PromptTelemetryHook``; the returned metrics are
    unchanged.

    Args:
        ignore_index (int): Ground-truth label excluded from evaluation. Defaults to 255.
        include_background (bool): Also evaluate class 0. Defaults to False (foreground Dice).
        empty_gt (str): Per-image Dice of a class absent from the ground truth (|B| = 0):
            ``'one_if_empty_pred'`` (default): 100 if the prediction is empty too, 0 if it predicts any pixel;
            ``'skip'``: the image is left out of that class' per-image mean (and of ``mDice`` when no evaluated
            class is present in it). A class absent from every image and every prediction has ``aDice`` 100
            under the first policy and NaN under ``'skip'``.
        num_classes (int, optional): Used only when no ``dataset_meta`` with ``classes`` is set (the runner
            sets it from the dataset). Defaults to None.
        output_dir (str, optional): as mmseg's ``IoUMetric`` (mmseg's ``tools/test.py --out DIR`` sets it): each
            image's predicted label map is written to ``DIR/<image name>.png`` (uint8 class indices at the original
            size; +1 with ``reduce_zero_label``). The folder is made at the first write. Defaults to None.
        format_only (bool): as ``IoUMetric``: only write the PNGs (needs ``output_dir``), no ground truth is read
            and no metric computed (test sets without masks). Defaults to False.
        keep_results (bool): accepted as ``IoUMetric`` accepts it (mmseg's ``tools/test.py --out`` sets it): the
            written PNGs are always kept. Defaults to False.
        collect_device (str): 'cpu' or 'gpu', for collecting results across ranks. Defaults to 'cpu'.
        prefix (str, optional): Prefix of the metric names. Defaults to None.
    """
    EMPTY_GT_POLICIES = ('one_if_empty_pred', 'skip')

    def __init__(self,
                 ignore_index: int = 255,
                 include_background: bool = False,
                 empty_gt: str = 'one_if_empty_pred',
                 num_classes: Optional[int] = None,
                 output_dir: Optional[str] = None,
                 format_only: bool = False,
                 keep_results: bool = False,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 **kwargs) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix, **kwargs)
        if empty_gt not in self.EMPTY_GT_POLICIES:
            raise ValueError(f'empty_gt must be one of {self.EMPTY_GT_POLICIES}, got {empty_gt!r}')
        if format_only and not output_dir:
            raise ValueError('DiceMetric: format_only=True writes the predictions and computes no metric, so it '
                             'needs output_dir (test_evaluator.output_dir=DIR, or tools/test.py --out DIR).')
        self.output_dir, self.format_only, self.keep_results = output_dir, format_only, keep_results
        self.ignore_index = ignore_index
        self.include_background = include_background
        self.empty_gt = empty_gt
        self.num_classes = num_classes

    # ------------------------------------------------------------------------------------------ helpers
    def _class_names(self) -> List[str]:
        classes = (self.dataset_meta or {}).get('classes')
        if classes is not None:
            return list(classes)
        if self.num_classes is None:
            raise ValueError('DiceMetric needs dataset_meta with "classes" (set by the runner) or num_classes')
        return [str(i) for i in range(self.num_classes)]

    @staticmethod
    def image_stats(pred: torch.Tensor, gt: torch.Tensor, num_classes: int, ignore_index: int) -> np.ndarray:
        """Per-class (intersection, predicted area, ground-truth area) of one image, shape (3, num_classes).

        Pixels where ``gt == ignore_index`` are dropped; labels outside [0, num_classes) are not counted.
        (mmseg's ``IoUMetric.intersect_and_union`` gives the same areas but counts with float32 ``torch.histc``,
        which stops counting exactly above 2**24 pixels of a class -- ISIC 2018 originals reach 6688 x 4439 =
        29.7M pixels; these are int64 counts.)
        """
        if pred.shape != gt.shape:
            raise ValueError(f'pred_sem_seg {tuple(pred.shape)} and gt_sem_seg {tuple(gt.shape)} differ in size; '
                             'DiceMetric compares them pixel by pixel at the resolution they are given in')
        valid = gt != ignore_index
        pred, gt = pred[valid].long(), gt[valid].long()

        def area(labels: torch.Tensor) -> torch.Tensor:
            labels = labels[(labels >= 0) & (labels < num_classes)]
            return torch.bincount(labels, minlength=num_classes)

        stats = torch.stack([area(pred[pred == gt]), area(pred), area(gt)])
        return stats.cpu().numpy().astype(np.int64)

    # ------------------------------------------------------------------------------------------ metric API
    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Store the per-class counts of every sample of the batch."""
        num_classes = len(self._class_names())
        for data_sample in data_samples:
            pred = data_sample['pred_sem_seg']['data'].squeeze()
            if self.output_dir:
                written = self.write_prediction(pred, data_sample)
                if self.format_only:
                    self.results.append(written)
                    continue
            gt = data_sample['gt_sem_seg']['data'].squeeze().to(pred)
            stats = self.image_stats(pred, gt, num_classes, self.ignore_index)
            if data_sample.get('prompt_fallback') is None:
                self.results.append(stats)
            else:  # a box prompter was used: keep what it did (per class with class prompts) with the counts
                fallback, iou = data_sample['prompt_fallback'], data_sample.get('prompt_iou')
                per_class = isinstance(fallback, (list, tuple))
                self.results.append(dict(stats=stats, fallback=[bool(f) for f in fallback] if per_class else
                                         [bool(fallback)], iou=list(iou) if per_class else [iou]))

    def write_prediction(self, pred: torch.Tensor, data_sample: dict) -> str:
        """``output_dir/<image name>.png``: the label map as ``IoUMetric`` writes it; returns the path."""
        os.makedirs(self.output_dir, exist_ok=True)
        name = osp.splitext(osp.basename(data_sample['img_path']))[0]
        path = osp.abspath(osp.join(self.output_dir, f'{name}.png'))
        mask = pred.cpu().numpy() + (1 if data_sample.get('reduce_zero_label', False) else 0)
        Image.fromarray(mask.astype(np.uint8)).save(path)
        return path

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Turn the per-image counts into ``mDice``, ``aDice`` and per-class values (percent)."""
        logger: MMLogger = MMLogger.get_current_instance()
        if self.format_only:
            print_log(f'DiceMetric: format_only: {len(results)} predicted masks written to {self.output_dir}, no '
                      'metric computed', logger=logger)
            return OrderedDict()
        if self.output_dir:
            print_log(f'DiceMetric: {len(results)} predicted masks written to {self.output_dir}', logger=logger)
        names = self._class_names()
        first = 0 if self.include_background else 1
        evaluated = names[first:]
        prompts = [r for r in results if isinstance(r, dict)]
        results = [r['stats'] if isinstance(r, dict) else r for r in results]
        stats = np.stack(results)[:, :, first:].astype(np.float64)  # (images, 3, evaluated classes)
        inter, pred_area, gt_area = stats[:, 0], stats[:, 1], stats[:, 2]
        denom = pred_area + gt_area

        with np.errstate(divide='ignore', invalid='ignore'):
            dice = 2 * inter / denom  # NaN where both are empty
            if self.empty_gt == 'one_if_empty_pred':
                dice[denom == 0] = 1.0  # empty GT and empty prediction; empty GT + prediction is already 0
            else:
                dice[gt_area == 0] = np.nan
            agg = 2 * inter.sum(0) / denom.sum(0)
        if self.empty_gt == 'one_if_empty_pred':
            agg[denom.sum(0) == 0] = 1.0

        per_image = _nanmean(dice, axis=1)
        per_class = _nanmean(dice, axis=0)
        metrics: Dict[str, float] = OrderedDict(mDice=float(_nanmean(per_image) * 100),
                                                aDice=float(_nanmean(agg) * 100))
        for name, d, a in zip(evaluated, per_class, agg):
            metrics[f'Dice.{name}'] = float(d * 100)
            metrics[f'aDice.{name}'] = float(a * 100)
        skipped_images = int(np.isnan(per_image).sum())
        if skipped_images:
            print_log(f'DiceMetric: {skipped_images} image(s) without any evaluated class in the ground truth '
                      'were left out of mDice (empty_gt="skip")', logger=logger)

        table = PrettyTable()
        table.add_column('Class', evaluated)
        table.add_column('Dice', [_fmt(v) for v in per_class * 100])
        table.add_column('aDice', [_fmt(v) for v in agg * 100])
        if prompts:  # one prompt per image: one value per run, in the first row; class prompts: one per class row
            fallback = np.array([p['fallback'] for p in prompts], bool)  # (images, prompts per image)
            iou = np.array([[np.nan if v is None else v for v in p['iou']] for p in prompts], np.float64)
            columns = [(fallback, iou)] if fallback.shape[1] == 1 else \
                [(fallback[:, c:c + 1], iou[:, c:c + 1]) for c in range(fallback.shape[1])]
            if len(columns) > 1 and len(columns) != len(evaluated):
                columns = [(fallback, iou)]  # class prompts with include_background: all prompts together
            rows = [_prompt_row(f, i) for f, i in columns]
            rows += [[''] * 4] * (len(evaluated) - len(rows))
            for name, values in zip(('Prompt det. %', 'Fallbacks', 'Box IoU', 'IoU>=0.5 %'), zip(*rows)):
                table.add_column(name, list(values))
        print_log(f'per class results ({len(results)} images, Dice = mean over images):', logger=logger)
        print_log('\n' + table.get_string(), logger=logger)
        return metrics


def _prompt_row(fallback: np.ndarray, iou: np.ndarray) -> List[str]:
    """Detection %, fallbacks, mean box IoU and share of IoU >= 0.5 of some prompts (NaN IoU: no ground truth)."""
    iou = iou[~np.isnan(iou)]
    return [_fmt(100 * (1 - fallback.mean())), str(int(fallback.sum())),
            f'{iou.mean():.3f}' if len(iou) else 'nan', _fmt(100 * (iou >= 0.5).mean()) if len(iou) else 'nan']


def _nanmean(x: np.ndarray, axis: Optional[int] = None):
    """``np.nanmean`` without the 'Mean of empty slice' warning (all-NaN slices give NaN)."""
    with np.errstate(invalid='ignore'):
        count = np.sum(~np.isnan(x), axis=axis)
        total = np.nansum(x, axis=axis)
        return total / np.where(count == 0, np.nan, count)


def _fmt(value: float) -> str:
    return 'nan' if np.isnan(value) else f'{value:.2f}'
