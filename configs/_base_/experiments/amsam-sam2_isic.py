# AM-SAM on SAM 2.1 Hiera-T (256 px) + YOLOv8 box prompt + learnable prompt + LoRA decoder + mask calibration
# ('sample', alpha 0.7), bi-level, on ISIC 2018 Task 1.
# Shared by configs/amsam-sam2_isic_*shot.py (they only choose the split file); the model is
# ../models/amsam_sam2_hiera_t.py, the rest as ./amsam_isic.py.
_base_ = [
    '../models/amsam_sam2_hiera_t.py', '../datasets/isic2018.py', '../default_runtime.py',
    '../schedules/blo_100e.py'
]
# YOLO class filter: none. A COCO-trained YOLOv8 has no lesion class: unfiltered it gives the
# highest-confidence box of ANY COCO class (on dermoscopy often none above conf 0.25), and with no
# detection the prompter falls back to 'image' = the whole-image box.
model = dict(prompter=dict(classes=None, fallback='image'))
