# Swin-Unet baseline (Cao et al. 2022, "Swin-Unet: Unet-like Pure Transformer for Medical Image
# Segmentation") as an mmseg EncoderDecoder: mmseg Swin encoder (``SwinUnetEncoder``, a SwinTransformer
# subclass) + symmetric Swin decoder with patch expanding and skip connections (``SwinUnetHead``).
# Both live in mmseg_amsam/models/baselines/swin_unet_{encoder,head}.py; top-level configs must add
#   custom_imports = dict(imports=['mmseg_amsam'], allow_failed_imports=False)
#   default_scope = 'mmseg'
#
# Defaults are Swin-T widths with the Swin-Unet depths (2, 2, 2, 2), patch size 4, 256x256 inputs and
# window 8 (every stage, 64/32/16/8 tokens, is a multiple of 8). Loss: 0.2 * CE + 0.8 * Dice.
#
# Pretraining: the paper initialises the encoder from ImageNet Swin-T, ``swin_tiny_patch4_window7_224.pth``
# (microsoft/Swin-Transformer GitHub releases). It is NOT downloaded here (``pretrained=None``). To use it:
#   * convert the official keys to mmseg's layout with mmseg's tools/model_converters/swin2mmseg.py
#     (or use OpenMMLab's converted swin_tiny_patch4_window7_224_20220317-1cdeb081.pth), then set
#     ``model.pretrained='checkpoints/<converted>.pth'`` (or backbone.init_cfg=dict(type='Pretrained', ...));
#   * keep the window size consistent with the checkpoint: window_size=7 with 224x224 inputs
#     (data_preprocessor.size=(224, 224), backbone/decode_head window_size=7, pretrain_img_size=224).
#     With window 8 mmseg resizes the relative-position tables on load, which departs from the paper.
#   (The official code also copies encoder stage weights into the mirrored decoder stages; SwinUnetHead
#   is randomly initialised.)
norm_cfg = dict(type='SyncBN', requires_grad=True)  # unused by Swin-Unet (LayerNorm only); kept for overrides
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],  # ImageNet mean/std (RGB, 0-255)
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=(256, 256))
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    pretrained=None,  # path to an mmseg-format Swin-T checkpoint (see above); None = random init
    backbone=dict(
        type='SwinUnetEncoder',
        out_mode='swin_unet',
        pretrain_img_size=256,
        in_channels=3,
        embed_dims=96,
        patch_size=4,
        strides=(4, 2, 2, 2),
        window_size=8,
        mlp_ratio=4,
        depths=(2, 2, 2, 2),
        num_heads=(3, 6, 12, 24),
        qkv_bias=True,
        qk_scale=None,
        patch_norm=True,
        drop_rate=0.,
        attn_drop_rate=0.,
        drop_path_rate=0.1,
        use_abs_pos_embed=False,
        act_cfg=dict(type='GELU'),
        norm_cfg=dict(type='LN')),
    decode_head=dict(
        type='SwinUnetHead',
        in_channels=[96, 192, 384, 768],
        in_index=[0, 1, 2, 3],
        input_transform='multiple_select',
        channels=96,
        depths=(2, 2, 2, 2),
        num_heads=(3, 6, 12, 24),
        window_size=8,
        mlp_ratio=4,
        drop_path_rate=0.1,
        final_upscale=4,
        dropout_ratio=0.,
        num_classes=2,
        align_corners=False,
        loss_decode=[
            dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.2),
            dict(type='ClassAveragedDiceLoss', loss_weight=0.8),  # per-class mean, as Swin-Unet's own Dice
        ]),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
