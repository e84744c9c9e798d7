"""Counts of what the automated prompter did: detections, fallbacks, and how well the prompt box fits the GT box."""
from typing import Dict, Iterable, Optional

import numpy as np

IOU_GOOD = 0.5  # a prompt box "fits" when its IoU with the ground-truth box is at least this


class PromptTelemetry:
    """Per-image prompt records summed into a few numbers.

    ``add(detected, iou)`` once per prompt (an image, or an image's class with class prompts): ``detected`` False
    means the prompter fell back (whole-image box or no box); ``iou`` is the IoU of the prompt SAM got with the box
    of the ground-truth mask (None when the image has no ground truth or an empty one). :meth:`summary` gives:

    * ``prompts``: images prompted; ``detections`` / ``fallbacks``: with / without a detected box;
    * ``detection_rate`` = detections / prompts;
    * ``box_iou``: mean IoU over the images with ground truth; ``box_iou_ge_0.5``: share of them with IoU >= 0.5;
      ``iou_images``: how many images these two are over.
    """

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.prompts = self.detections = 0
        self.ious = []
        self.per_class: Dict[int, 'PromptTelemetry'] = {}

    def add(self, detected: bool, iou: Optional[float] = None, label: Optional[int] = None) -> None:
        """One prompt; ``label`` (multi-class: the dataset class prompted) also counts it under that class."""
        self.prompts += 1
        self.detections += int(bool(detected))
        if iou is not None:
            self.ious.append(float(iou))
        if label is not None:
            self.per_class.setdefault(int(label), PromptTelemetry()).add(detected, iou)

    def class_counts(self, labels) -> np.ndarray:
        """``(len(labels), 5)``: :meth:`counts` of each class (zeros for a class never prompted)."""
        return np.stack([self.per_class[c].counts() if c in self.per_class else np.zeros(5) for c in labels]) \
            if len(labels) else np.zeros((0, 5))

    def counts(self) -> np.ndarray:
        """``[prompts, detections, iou_images, sum of IoU, images with IoU >= 0.5]`` (summable across ranks)."""
        ious = np.asarray(self.ious, np.float64)
        return np.array([self.prompts, self.detections, len(ious), ious.sum(), (ious >= IOU_GOOD).sum()],
                        np.float64)

    def summary(self) -> Dict[str, float]:
        return summarize_counts(self.counts())


def summarize_counts(counts: Iterable[float]) -> Dict[str, float]:
    prompts, detections, n_iou, iou_sum, good = (float(v) for v in counts)
    return dict(prompts=int(prompts), detections=int(detections), fallbacks=int(prompts - detections),
                detection_rate=detections / prompts if prompts else float('nan'),
                fallback_rate=(prompts - detections) / prompts if prompts else float('nan'),
                box_iou=iou_sum / n_iou if n_iou else float('nan'),
                **{'box_iou_ge_0.5': good / n_iou if n_iou else float('nan')}, iou_images=int(n_iou))


def format_summary(summary: Dict[str, float]) -> str:
    """One line for logs: ``100 prompts: 97 detected (97.0%), 3 fallbacks; box IoU with GT 0.712, 84.0% >= 0.5``."""
    text = (f"{summary['prompts']} prompts: {summary['detections']} detected "
            f"({100 * summary['detection_rate']:.1f}%), {summary['fallbacks']} fallbacks")
    if summary['iou_images']:
        text += (f"; prompt-box IoU with the GT box {summary['box_iou']:.3f} (mean over {summary['iou_images']}), "
                 f"{100 * summary['box_iou_ge_0.5']:.1f}% >= {IOU_GOOD}")
    return text


def fallback_warning(fallbacks: int, prompts: int, threshold: Optional[float], where: str = '') -> Optional[str]:
    """The one warning for a run where the prompter fell back on more than ``threshold`` of its images, or None."""
    if threshold is None or not prompts or fallbacks / prompts <= threshold:
        return None
    return (f'the prompter FELL BACK on {fallbacks} of {prompts} images ({100 * fallbacks / prompts:.1f}% > '
            f'warn_fallback_rate {100 * threshold:.0f}%){where}: those images got no detected box (whole-image box '
            'or none). Check model.prompter.classes against the detector, lower model.prompter.conf, or adapt the '
            'detector to this domain (tools/adapt_detector.py).')
