# DeepLabV3 (Chen et al. 2017; paper Table 1 "DeepLab" row) exactly as mmsegmentation's
# configs/_base_/models/deeplabv3_r50-d8.py (ResNetV1c-50, output stride 8, ASPP head + FCN auxiliary head), for
# our binary tasks: num_classes=2, and BN instead of SyncBN (single GPU / CPU; SyncBN needs a process group).
# mmseg's own _base_ files are not importable by relative path from this repository, hence the copy.
#
# Pretraining: mmseg initialises the backbone from the ImageNet weights 'open-mmlab://resnet50_v1c'
# (https://download.openmmlab.com/pretrain/third_party/resnet50_v1c-2cccc1ad.pth). Nothing is downloaded here:
# pretrained=None (random init). To use them: --cfg-options model.pretrained=open-mmlab://resnet50_v1c (needs
# internet) or model.pretrained=checkpoints/resnet50_v1c-2cccc1ad.pth.
norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=(256, 256))
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    pretrained=None,  # official: 'open-mmlab://resnet50_v1c' (see above)
    backbone=dict(
        type='ResNetV1c',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        dilations=(1, 1, 2, 4),
        strides=(1, 2, 1, 1),
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch',
        contract_dilation=True),
    decode_head=dict(
        type='ASPPHead',
        in_channels=2048,
        in_index=3,
        channels=512,
        dilations=(1, 12, 24, 36),
        dropout_ratio=0.1,
        num_classes=2,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=dict(
        type='FCNHead',
        in_channels=1024,
        in_index=2,
        channels=256,
        num_convs=1,
        concat_input=False,
        dropout_ratio=0.1,
        num_classes=2,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
