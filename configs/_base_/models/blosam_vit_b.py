# BLO-SAM (Zhang et al. 2024a), the paper's main baseline (Tables 1-4, "BLO-SAM" rows): SAM ViT-B at 256 px with
# no box prompt -- the learned default prompt alone (the upper-level LearnablePrompt, initialised from SAM's
# no_mask_embed) -- LoRA rank 4 mask decoder and NO mask calibration (SAM's dot product). Train it bi-level with
# schedules/blo_100e.py. Same weights as amsam_vit_b.py (checkpoints/sam_vit_b_01ec64.pth; no YOLO needed).
_base_ = ['./amsam_vit_b.py']
model = dict(prompter=None, decode_head=dict(calibration='none'))
