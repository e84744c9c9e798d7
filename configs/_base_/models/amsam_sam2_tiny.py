# A tiny AM-SAM on SAM 2 for CPU tests: our 'tiny' Hiera (dim 16, 5 blocks) and a YOLOv8n built from its
# yaml, both with random weights (no download). The SAM 2 mask decoder keeps its real size: it is the part that trains.
_base_ = ['./amsam_sam2_hiera_t.py']
model = dict(
    sam_checkpoint=None,
    backbone=dict(arch='tiny'),
    prompter=dict(model='yolov8n.yaml', imgsz=160))
