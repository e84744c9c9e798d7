# AM-SAM with SAM ViT-B at 256 px (BLO-SAM's input size), YOLOv8 box prompts, LoRA rank 4, calibration alpha 0.7.
# Weights (see README "Checkpoints"): checkpoints/sam_vit_b_01ec64.pth and checkpoints/yolov8n.pt.
# Override from the command line, e.g. --cfg-options model.sam_checkpoint=/path/sam.pth
#   model.prompter.model=/path/yolov8n.pt
img_size = 256
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],  # SAM's pixel mean/std (RGB)
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=(img_size, img_size))
model = dict(
    type='AMSAM',
    data_preprocessor=data_preprocessor,
    img_size=img_size,
    sam_checkpoint='checkpoints/sam_vit_b_01ec64.pth',
    backbone=dict(type='SAMImageEncoder', arch='vit_b'),
    prompt_encoder=dict(type='SAMPromptEncoder'),
    prompter=dict(type='YOLOBoxPrompter', model='checkpoints/yolov8n.pt', conf=0.25, fallback='image'),
    learnable_prompt=dict(type='LearnablePrompt'),
    decode_head=dict(
        type='CalibratedMaskDecoder',
        num_classes=2,
        lora_rank=4,
        calibration='sample',
        alpha=0.7,
        loss_resolution='low_res',
        loss_decode=[  # eq. 5 with lambda = 0.8 (SAMed's class-averaged Dice)
            dict(type='CrossEntropyLoss', use_sigmoid=False, avg_non_ignore=True, loss_weight=0.2),
            dict(type='ClassAveragedDiceLoss', loss_weight=0.8),
        ]),
    train_cfg=dict(unrolled=False),
    test_cfg=dict(mode='whole'))
