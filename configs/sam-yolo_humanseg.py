# Plain SAM ViT-B (256 px) prompted with the YOLOv8 box, NO training: test only, no checkpoint needed
# (the official SAM and YOLO weights are loaded by the model itself). Vikram Shenoy HumanSeg test split.
# Reproduces: no paper cell (vanilla SAM is reported on TikTok only): extra baseline, same test split; test Dice (%)
# = mDice.
#   python tools/dataset_converters/humanseg.py /path/to/Human-Segmentation-Dataset data/humanseg
#   python tools/test.py configs/sam-yolo_humanseg.py none
_base_ = [
    './_base_/models/sam-yolo_vit_b.py', './_base_/datasets/humanseg.py',
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
