# AM-SAM on SAM 2.1 Hiera-B+ ('hiera_b+'; the file name avoids the '+'): as amsam_sam2_hiera_t.py with the base-plus
# encoder (https://dl.fbaipublicfiles.com/segment_anything_2/092824/sam2.1_hiera_base_plus.pt).
_base_ = ['./amsam_sam2_hiera_t.py']
model = dict(sam_checkpoint='checkpoints/sam2.1_hiera_base_plus.pt', backbone=dict(arch='hiera_b+'))
