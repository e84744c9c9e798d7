# AM-SAM ablation, YOLO box prompt WITHOUT mask calibration, bi-level, on ISIC 2018 Task 1.
# Shared by configs/amsam-yolo_isic_*shot.py (they only choose the split file).
_base_ = [
    '../models/amsam-yolo_vit_b.py', '../datasets/isic2018.py', '../default_runtime.py',
    '../schedules/blo_100e.py'
]
# YOLO class filter: none. A COCO-trained YOLOv8 has no lesion class: unfiltered it gives the
# highest-confidence box of ANY COCO class (on dermoscopy often none above conf 0.25), and with no
# detection the prompter falls back to 'image' = the whole-image box.
model = dict(prompter=dict(classes=None, fallback='image'))
