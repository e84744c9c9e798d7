# AM-SAM on the toy multi-class task (see amsam_demo_multiclass.py) with the few-shot detector adaptation first, as
# the binary demo: the toy YOLO keeps its classes and head and is fine-tuned on the k shots' per-class mask boxes,
# each class's boxes labelled as the detector class that class_map maps to it (ellipse -> 'ellipse', rectangle ->
# 'rectangle'); cached under work_dirs/adapted_detectors, before / after report per class in the log. The split the
# detector adapts on is the training split (tools/run_cells.py sets both to the seeded k-shot split).
_base_ = ['./amsam_demo_multiclass.py']
custom_imports = dict(imports=['mmseg_amsam'], allow_failed_imports=False)
default_scope = 'mmseg'
model = dict(prompter=dict(adapt=dict(
    _delete_=True, data_root='data/demo_shapes_multiclass', ann_file='splits/train_16shot.txt', epochs=150,
    imgsz=128, lr0=0.004, mosaic=0.0, report_split='test', cache_dir='work_dirs/adapted_detectors')))
