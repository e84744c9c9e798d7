# AM-SAM on SAM 2.1 Hiera-T (official `sam2` package) at 256 px: the SAM ViT-B model of amsam_vit_b.py with SAM 2's
# three parts swapped in (same YOLOv8 box prompts, learnable prompt, LoRA rank 4 on q/v of the mask decoder's two-way
# transformer, calibration alpha 0.7). Weights (README "SAM 2 checkpoints"): checkpoints/sam2.1_hiera_tiny.pt, from
# https://dl.fbaipublicfiles.com/segment_anything_2/092824/sam2.1_hiera_tiny.pt
# Other sizes: amsam_sam2_hiera_s.py / _bplus.py / _l.py, or --cfg-options model.backbone.arch=hiera_s
#   model.sam_checkpoint=checkpoints/sam2.1_hiera_small.pt
# SAM 2's own input size is 1024: --cfg-options model.img_size=1024 model.data_preprocessor.size="(1024,1024)" and the
# pipelines' Resize scale (see configs/amsam-sam2_isic_8shot.py).
_base_ = ['./amsam_vit_b.py']
model = dict(
    sam_checkpoint='checkpoints/sam2.1_hiera_tiny.pt',
    backbone=dict(type='SAM2ImageEncoder', arch='hiera_t'),
    prompt_encoder=dict(type='SAM2PromptEncoder'),
    decode_head=dict(type='CalibratedSAM2MaskDecoder'))
