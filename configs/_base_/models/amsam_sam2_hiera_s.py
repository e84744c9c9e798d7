# AM-SAM on SAM 2.1 Hiera-S: as amsam_sam2_hiera_t.py with the small encoder
# (https://dl.fbaipublicfiles.com/segment_anything_2/092824/sam2.1_hiera_small.pt).
_base_ = ['./amsam_sam2_hiera_t.py']
model = dict(sam_checkpoint='checkpoints/sam2.1_hiera_small.pt', backbone=dict(arch='hiera_s'))
