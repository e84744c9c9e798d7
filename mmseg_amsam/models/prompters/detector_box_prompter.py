"""What every detector prompter shares: which image it detects on, per-image detection, caching, box choice and
mapping the box to the network input."""
import copy
import hashlib
import os
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch

from ...utils.file_stamp import file_stamp
from ...utils.sam_input import denormalize_to_uint8
from ...utils.tensor_digest import tensor_digest
from .box_geometry import UnmappableGeometryError, original_to_input
from .box_prior import BoxPrior
from .box_prompter import BoxPrompter
from .detector_classes import resolve_classes
from .pipeline_geometry import check_pipeline

CHOICES = ('confidence', 'prior')


class DetectorBoxPrompter(BoxPrompter):
    """A frozen detector's box per image. Subclasses load the detector and implement :meth:`detect`.

    Guarantees: each image is detected alone (a box never depends on its batch-mates); the image detected on is the
    original (the file at ``img_path``, or the array the inferencer put in ``metainfo['ori_img']`` -- the same
    pixels give the same box) and the box is mapped to the network input through the resize / flip / padding the
    pipeline recorded (``box_geometry``; a crop is refused with a clear error); with ``use_original_image=False`` or
    no original, the network input itself is detected on (no mapping). Detections are cached per image under a key
    made of the detector's settings and the image's identity (file path + mtime + size, or the pixels' digest); the
    choice among them and the geometry are recomputed every call.

    Args:
        classes: names or ids (mixed is fine) checked against the detector's classes at build; None keeps all.
        conf: confidence threshold; boxes below it count as "nothing detected".
        choose: ``'confidence'`` (the paper: the most confident box) or ``'prior'`` (the box most like the k
            training masks' boxes: log prior + log confidence, see ``BoxPrior``; needs ``prior``).
        prior: ``dict(data_root=..., ann_file='splits/train_4shot.txt', seg_map_dir='ann_dir/train')``.
        class_map: multi-class AM-SAM (``AMSAM(class_prompts=True)``): ``{detector class (name or id): dataset
            label}``, e.g. ``{'ellipse': 1, 'rectangle': 2}``; each dataset class gets the most confident box among
            the detector classes mapped to it (several may map to one), a class with none found its fallback.
            Without ``classes``, the detector keeps exactly the mapped classes.
        geometry_neutral: names of custom transforms that move no pixel (see :meth:`check_pipeline`).
        use_original_image, cache, fallback, warn_fallback_rate, ignore_index: see above and ``BoxPrompter``.
    """

    def __init__(self, classes=None, conf: float = 0.25, choose: str = 'confidence', prior: Optional[dict] = None,
                 use_original_image: bool = True, cache: bool = True, fallback: str = 'image',
                 warn_fallback_rate: float = 0.5, geometry_neutral=(), mean=(123.675, 116.28, 103.53),
                 std=(58.395, 57.12, 57.375), ignore_index: int = 255, class_map: Optional[dict] = None,
                 init_cfg=None):
        super().__init__(fallback=fallback, warn_fallback_rate=warn_fallback_rate, ignore_index=ignore_index,
                         init_cfg=init_cfg)
        name = type(self).__name__
        if isinstance(conf, bool) or not isinstance(conf, (int, float)) or not 0.0 <= conf <= 1.0:
            raise ValueError(f'{name}: model.prompter.conf={conf!r} (the detection confidence threshold) must be a '
                             'number in [0, 1]; set --cfg-options model.prompter.conf=0.25')
        if choose not in CHOICES:
            raise ValueError(f'{name}: choose must be one of {CHOICES}, got {choose!r}')
        if choose == 'prior' and not prior:
            raise ValueError(f"{name}: choose='prior' needs prior=dict(data_root=..., ann_file=...) (the k-shot "
                             'split whose masks give the prior)')
        self.conf, self.choose, self.classes = conf, choose, classes
        self.class_map = dict(class_map) if class_map else None
        self.label_of: Optional[Dict[int, int]] = None  # detector class id -> dataset label (from class_map)
        self.prior = BoxPrior.from_split(**prior) if prior else None
        self.use_original_image, self.cache = use_original_image, cache
        self.mean, self.std, self.geometry_neutral = mean, std, tuple(geometry_neutral)
        self._detections: Dict[tuple, Tuple[np.ndarray, Tuple[int, int]]] = {}

    def resolve_classes(self) -> None:
        """Call once the detector is loaded: ``class_ids`` from ``classes`` and ``label_of`` from ``class_map``
        (unknown detector classes raise, listing the detector's)."""
        name = type(self).__name__
        self.class_ids = resolve_classes(self.classes, self.class_names, name)
        if self.class_map is not None:
            self.label_of = {i: int(label) for key, label in self.class_map.items()
                             for i in resolve_classes(key, self.class_names, f'{name} (class_map)')}
            if self.class_ids is None:
                self.class_ids = sorted(self.label_of)

    def set_prompt_labels(self, labels: Sequence[int]) -> None:
        name = type(self).__name__
        if self.class_map is None:
            raise ValueError(f'{name}: a multi-class model (class_prompts=True) needs model.prompter.class_map = '
                             '{detector class: dataset label}, e.g. {"person": 1, "car": 2}, to give each class its '
                             f'box; the detector has: {", ".join(map(str, self.class_names.values()))}')
        if self.choose != 'confidence':
            raise ValueError(f"{name}: choose={self.choose!r} chooses one box per image; with class prompts each "
                             "class takes its most confident box (choose='confidence')")
        unknown = sorted(set(self.label_of.values()) - set(int(v) for v in labels))
        if unknown:
            raise ValueError(f'{name}: class_map maps to dataset labels {unknown}, which the model does not prompt '
                             f'(labels {list(labels)}: 1..num_classes-1); fix model.prompter.class_map')
        super().set_prompt_labels(labels)

    def check_pipeline(self, pipeline, where: str) -> None:
        """Refuse a pipeline whose geometry a box from the original image cannot follow (``pipeline_geometry``)."""
        if self.use_original_image:
            check_pipeline(pipeline, where, type(self).__name__, self.geometry_neutral)

    def __deepcopy__(self, memo):
        """Copies share the frozen detector (ultralytics models hold locks and cannot be deep-copied)."""
        clone = self.__class__.__new__(self.__class__)
        memo[id(self)] = clone
        for key, value in self.__dict__.items():
            clone.__dict__[key] = value if key == 'detector' else copy.deepcopy(value, memo)
        return clone

    # ---- for subclasses ---------------------------------------------------------------------------------------
    @property
    def class_names(self) -> Dict[int, str]:
        raise NotImplementedError

    def settings(self) -> tuple:
        """Everything besides the image that the detections depend on (part of every cache key)."""
        return (type(self).__name__, self.conf, tuple(self.class_ids or ()))  # class_map only sorts detections

    def detect(self, image: np.ndarray, device: str) -> np.ndarray:
        """Detections ``(N, 6)``: x1 y1 x2 y2 conf cls in pixels of ``image`` (BGR uint8), conf and class filtered."""
        raise NotImplementedError

    # ---- the shared path --------------------------------------------------------------------------------------
    def _source(self, inputs: torch.Tensor, i: int, sample) -> Tuple[tuple, object, bool]:
        """(identity key, loader of the BGR image, whether it is the original image) of sample ``i``."""
        meta = sample.metainfo
        if self.use_original_image:
            array = meta.get('ori_img')
            if isinstance(array, np.ndarray):
                digest = hashlib.sha1(np.ascontiguousarray(array).view(np.uint8)).hexdigest()
                return ('array', array.shape, str(array.dtype), digest), lambda: array, True
            path = meta.get('img_path')
            if path and os.path.isfile(path):
                return ('file', file_stamp(path)), lambda: cv2.imread(path, cv2.IMREAD_COLOR), True
        h, w = meta.get('img_shape', inputs.shape[-2:])[:2]
        crop = inputs[i:i + 1, :, :h, :w]

        def from_input():
            rgb = denormalize_to_uint8(crop, self.mean, self.std)[0].permute(1, 2, 0).cpu().numpy()
            return np.ascontiguousarray(rgb[..., ::-1])
        return ('input', tensor_digest(crop, 'sha1')), from_input, False

    def detections_of(self, inputs: torch.Tensor, i: int, sample) -> Tuple[np.ndarray, Tuple[int, int], bool]:
        """(detections, size of the image detected on, is it the original) of sample ``i``, cached."""
        key, load, original = self._source(inputs, i, sample)
        key = (self.settings(), key)
        if self.cache and key in self._detections:
            dets, hw = self._detections[key]
            return dets, hw, original
        image = load()
        if image is None:
            raise FileNotFoundError(f'{type(self).__name__}: cannot read {sample.metainfo.get("img_path")}')
        ori = sample.metainfo.get('ori_shape')
        if original and ori is not None and tuple(image.shape[:2]) != tuple(ori[:2]):
            raise UnmappableGeometryError(
                f"{sample.metainfo.get('img_path', 'an image')}: the original read for detection is "
                f'{image.shape[1]}x{image.shape[0]} but the pipeline loaded it as {ori[1]}x{ori[0]} (ori_shape); '
                'the box cannot be placed. Load images with LoadImageFromFile (cv2 backend) or set '
                'model.prompter.use_original_image=False.')
        device = 'cpu' if inputs.device.type == 'cpu' else str(inputs.device)
        dets = np.asarray(self.detect(image, device), np.float64).reshape(-1, 6)
        hw = tuple(int(v) for v in image.shape[:2])
        if self.cache:
            self._detections[key] = (dets, hw)
        return dets, hw, original

    def pick(self, dets: np.ndarray, hw: Sequence[int]) -> Optional[int]:
        if not len(dets):
            return None
        if self.choose == 'prior':
            return self.prior.choose(dets, hw)
        return int(np.argmax(dets[:, 4]))  # the first of equally confident boxes, as torch's argmax

    def boxes_for(self, inputs: torch.Tensor, data_samples: Sequence) -> List[Optional[tuple]]:
        boxes = []
        for i, sample in enumerate(data_samples):
            dets, hw, original = self.detections_of(inputs, i, sample)
            best = self.pick(dets, hw)
            if best is None:
                boxes.append(None)
                continue
            box = tuple(float(v) for v in dets[best, :4])
            boxes.append(original_to_input(box, sample.metainfo) if original else box)
        return boxes

    def class_boxes_for(self, inputs: torch.Tensor, data_samples: Sequence) -> List[List[Optional[tuple]]]:
        boxes = []
        for i, sample in enumerate(data_samples):
            dets, hw, original = self.detections_of(inputs, i, sample)
            labels = np.array([self.label_of.get(int(c), -1) for c in dets[:, 5]]) if len(dets) else np.zeros(0)
            image_boxes = []
            for label in self.prompt_labels:
                rows = np.flatnonzero(labels == label)
                if not len(rows):
                    image_boxes.append(None)
                    continue
                box = tuple(float(v) for v in dets[rows[int(np.argmax(dets[rows, 4]))], :4])
                image_boxes.append(original_to_input(box, sample.metainfo) if original else box)
            boxes.append(image_boxes)
        return boxes
