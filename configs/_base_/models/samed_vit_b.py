# SAMed (Zhang and Liu 2023; paper Table 1 "SAMed" row), as its code does it: SAM ViT-B at 256 px with LoRA of rank
# 4 on the q and v parts of every image-encoder block's fused qkv projection (the encoder's own weights frozen; the
# embedding cache is off since the encoder's output changes), the mask decoder fine-tuned (every decoder tensor that
# receives a gradient: transformer, output tokens, upscaling, hypernetwork MLPs; no decoder LoRA) and SAMed's default
# prompt: no box, SAM's no_mask_embed made learnable (LearnablePrompt, initialised from it), no mask calibration.
# Everything trains together under ONE optimizer on all k images (schedules/single_100e.py: AdamW lr 5e-3, betas
# (0.9, 0.999), weight decay 0.1, poly 0.9 -- SAMed's settings; its warm-up is not used), loss 0.2 CE + 0.8 Dice.
_base_ = ['./amsam_vit_b.py']
model = dict(
    prompter=None,
    backbone=dict(lora_rank=4),
    decode_head=dict(
        calibration='none',
        lora_rank=0,
        trainable=('transformer', 'output_upscaling', 'output_hypernetworks_mlps', 'mask_tokens', 'iou_token')))
