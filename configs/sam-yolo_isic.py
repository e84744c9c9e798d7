# Plain SAM ViT-B (256 px) prompted with the YOLOv8 box, NO training: test only, no checkpoint needed
# (the official SAM and YOLO weights are loaded by the model itself). ISIC 2018 Task 1 test split.
# Reproduces: no paper cell (vanilla SAM is reported on TikTok only): extra baseline, same test split; test Dice (%)
# = mDice.
#   python tools/dataset_converters/isic2018.py /path/to/ISIC2018 data/isic2018
#   python tools/test.py configs/sam-yolo_isic.py none
_base_ = [
    './_base_/models/sam-yolo_vit_b.py', './_base_/datasets/isic2018.py',
    './_base_/default_runtime.py', './_base_/schedules/test_only.py'
]
custom_imports = dict(imports=['mmseg_amsam'], allow_failed_imports=False)
default_scope = 'mmseg'

# YOLO class filter: none. A COCO-trained YOLOv8 has no lesion class: unfiltered it gives the
# highest-confidence box of ANY COCO class (on dermoscopy often none above conf 0.25), and with no
# detection the prompter falls back to 'image' = the whole-image box.
model = dict(prompter=dict(classes=None, fallback='image'))
# Test only (see _base_/schedules/test_only.py): no training set and no validation.
train_dataloader = None
val_dataloader = None
val_evaluator = None
