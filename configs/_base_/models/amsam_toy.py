# The embedded toy AM-SAM: a small SAM (the `tiny` encoder, dim 64, 2 blocks; prompt encoder and mask decoder at
# width 96) and a toy YOLOv8 (toy_world/yolov8-toy.yaml), both pretrained on the generated "shapes world" by
# `python tools/pretrain_toy.py` (committed weights: toy_world/weights, see toy_world/README.md). They load exactly
# like official weights, through `model.sam_checkpoint` and `model.prompter.model`. 128 px SAM input.
_base_ = ['./amsam_vit_b.py']
img_size = 128
dim = 96  # mmseg_amsam.apis.toy_sam_pretraining.TOY_SAM
model = dict(
    img_size=img_size,
    data_preprocessor=dict(size=(img_size, img_size)),
    sam_checkpoint='toy_world/weights/toy_sam.pth',
    backbone=dict(arch='tiny', out_chans=dim),
    prompt_encoder=dict(embed_dim=dim),
    prompter=dict(model='toy_world/weights/toy_yolov8.pt', imgsz=128),
    learnable_prompt=dict(embed_dim=dim),
    decode_head=dict(transformer_dim=dim, transformer_mlp_dim=4 * dim, transformer_heads=4))
