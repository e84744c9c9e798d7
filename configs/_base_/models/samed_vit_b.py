# SAMed-style baseline (Zhang and Liu 2023; paper Table 1 "SAMed" row): SAM ViT-B at 256 px, SAM's default prompt
# made learnable (LearnablePrompt, initialised from no_mask_embed; no box), LoRA rank 4 mask decoder, no mask
# calibration. The architecture is BLO-SAM's; the difference is the optimisation: LoRA + trainable decoder parts +
# prompt are trained together by ONE optimizer on all k images (schedules/single_100e.py), no bi-level split.
# (Original SAMed also puts LoRA into the image encoder; here the encoder stays frozen as in BLO-SAM / AM-SAM.)
_base_ = ['./amsam_vit_b.py']
model = dict(prompter=None, decode_head=dict(calibration='none'))
