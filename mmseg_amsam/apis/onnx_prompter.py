"""The YOLO prompter of an ONNX export: our ``YOLOBoxPrompter`` (detection on the original image, box choice,
mapping to the network input, fallbacks, metainfo) running the exported ``yolo.onnx`` through ultralytics (which
runs it with ONNX Runtime). Only the loading differs: ``YOLOBoxPrompter.__init__`` accepts PyTorch weights."""
import os.path as osp

from ..models.prompters.detector_box_prompter import DetectorBoxPrompter
from ..models.prompters.yolo_box_prompter import YOLOBoxPrompter


class ONNXYOLOBoxPrompter(YOLOBoxPrompter):
    """``YOLOBoxPrompter`` on ``yolo.onnx`` with the exported prompter settings (``manifest['prompter']``)."""

    def __init__(self, onnx_path: str, settings: dict):
        DetectorBoxPrompter.__init__(
            self, classes=settings['class_ids'], conf=settings['conf'], choose=settings['choose'],
            use_original_image=settings['use_original_image'], fallback=settings['fallback'],
            warn_fallback_rate=settings['warn_fallback_rate'], geometry_neutral=settings['geometry_neutral'],
            mean=tuple(settings['mean']), std=tuple(settings['std']), ignore_index=settings['ignore_index'])
        from ultralytics import YOLO
        detector = YOLO(onnx_path, task='detect')
        object.__setattr__(self, 'detector', detector)  # as YOLOBoxPrompter: outside the nn.Module tree
        self.adapted_from = settings.get('adapted_from')
        self.model_path, self.iou, self.imgsz = onnx_path, settings['iou'], settings['imgsz']
        self.model_stamp = (osp.abspath(onnx_path), )  # the export's files are checked by their SHA-256 at load
        self.resolve_classes()

    def detector_module(self):
        return None  # no PyTorch network
