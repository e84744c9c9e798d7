# BLO-SAM on the toy multi-class task (see amsam_demo_multiclass.py): no box prompter, one learned prompt per class
# (class_prompts), no mask calibration. Row of the toy multi-class table (README, `tools/run_cells.py`).
_base_ = ['./amsam_demo_multiclass.py']
custom_imports = dict(imports=['mmseg_amsam'], allow_failed_imports=False)
default_scope = 'mmseg'
model = dict(prompter=None, decode_head=dict(calibration='none'))
