# AM-SAM on SAM 2.1 Hiera-T (official `sam2` package) at 256 px + YOLOv8 box prompt + learnable prompt + LoRA decoder
# (q/v of SAM 2's two-way transformer) + mask calibration ('sample', alpha 0.7), bi-level.
# Vikram Shenoy HumanSeg, 8 training images (splits/train_8shot.txt), 100 epochs, best checkpoint by mDice on D2.
# Not in the paper (it uses SAM ViT-B: configs/amsam_humanseg_8shot.py); same schedule and hyper-parameters.
#   python tools/dataset_converters/humanseg.py /path/to/Human-Segmentation-Dataset data/humanseg
#   python tools/dataset_converters/make_fewshot_split.py data/humanseg --shots 4 8 16
#   wget -P checkpoints https://dl.fbaipublicfiles.com/segment_anything_2/092824/sam2.1_hiera_tiny.pt
#   python tools/train.py configs/amsam-sam2_humanseg_8shot.py
#   python tools/test.py configs/amsam-sam2_humanseg_8shot.py $(ls work_dirs/amsam-sam2_humanseg_8shot/best_mDice_*.pth)
# Other Hiera sizes: --cfg-options model.backbone.arch=hiera_s model.sam_checkpoint=checkpoints/sam2.1_hiera_small.pt
# (hiera_b+ / sam2.1_hiera_base_plus.pt, hiera_l / sam2.1_hiera_large.pt). Other shots: copy this file and change
# the split file (train_4shot.txt / train_16shot.txt), or --cfg-options train_dataloader.dataset.ann_file=...
_base_ = ['./_base_/experiments/amsam-sam2_humanseg.py']
custom_imports = dict(imports=['mmseg_amsam'], allow_failed_imports=False)
default_scope = 'mmseg'

shots = 8
train_dataloader = dict(dataset=dict(ann_file='splits/train_8shot.txt'))
