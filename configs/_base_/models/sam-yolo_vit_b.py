# Plain SAM (Kirillov et al. 2023) prompted with the YOLOv8 box, NO training (paper Table 1 "SAM" row is vanilla
# SAM; the paper does not say which prompt it used -- here the same automated box AM-SAM uses). Test only.
#   * no learnable prompt (SAM's own no_mask_embed), no LoRA (lora_rank=0), no mask calibration, nothing trainable;
#   * num_classes=1 + threshold=0.5: ONE mask output, foreground where sigmoid(logit) > 0.5, i.e. SAM's own rule
#     logit > 0 (SamPredictor.mask_threshold = 0.0). With num_classes=2 the decoder would softmax two of SAM's
#     multimask outputs against each other -- both are foreground masks -- which is only meaningful after training.
#     mask_output='single': the mask is SAM's single-mask output (token 0), what SAM returns for one box prompt
#     (SamPredictor with multimask_output=False).
_base_ = ['./amsam_vit_b.py']
model = dict(
    learnable_prompt=None,
    decode_head=dict(num_classes=1, threshold=0.5, lora_rank=0, calibration='none', trainable=(),
                     mask_output='single'))
