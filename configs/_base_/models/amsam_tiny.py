# A tiny AM-SAM for CPU tests and the demo: 2-block ViT (dim 64) encoder and a YOLOv8n built from its yaml, both with
# random weights (no download). The mask decoder keeps SAM's real size: it is the part that trains.
_base_ = ['./amsam_vit_b.py']
model = dict(
    sam_checkpoint=None,
    backbone=dict(arch='tiny'),
    prompter=dict(model='yolov8n.yaml', imgsz=160))
