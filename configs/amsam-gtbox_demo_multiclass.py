# AM-SAM on the toy multi-class task with the "human" reference prompt: each class's box is the box of its
# ground-truth pixels (MaskBoxPrompter; an absent class gets no box, only its learned prompt). The upper bound of
# automated prompting in the toy multi-class table (README, `tools/run_cells.py`).
_base_ = ['./amsam_demo_multiclass.py']
custom_imports = dict(imports=['mmseg_amsam'], allow_failed_imports=False)
default_scope = 'mmseg'
model = dict(prompter=dict(_delete_=True, type='MaskBoxPrompter', fallback='none'))
