# Plain SAM ViT-B (256 px) prompted with the YOLOv8 box, NO training: test only, no checkpoint needed
# (the official SAM and YOLO weights are loaded by the model itself). TikTok Dancing (full body) test split.
# Reproduces: Table 1 "SAM / 4 Examples" and "SAM / 8 Examples" (26.0, 26.0: no training, so one run gives both);
# test Dice (%) = mDice.
#   python tools/dataset_converters/tiktok.py /path/to/tiktok_raw data/tiktok
#   python tools/test.py configs/sam-yolo_tiktok.py none
_base_ = [
    './_base_/models/sam-yolo_vit_b.py', './_base_/datasets/tiktok.py',
    './_base_/default_runtime.py', './_base_/schedules/test_only.py'
]
custom_imports = dict(imports=['mmseg_amsam'], allow_failed_imports=False)
default_scope = 'mmseg'

# YOLO class filter by name: 'person' (COCO id 0; checked against the detector's classes at build: a detector
# without a 'person' class is refused with its class list). No person detected -> whole-image box (fallback 'image').
# Those fallbacks are counted and logged (PromptTelemetryHook).
model = dict(prompter=dict(classes=['person'], fallback='image'))
# Test only (see _base_/schedules/test_only.py): no training set and no validation.
train_dataloader = None
val_dataloader = None
val_evaluator = None
