# AM-SAM with few-shot detector adaptation (beyond the paper) on TikTok: before the bi-level stage, the YOLO
# detector is fine-tuned (ultralytics) on the k training images with the boxes of their masks as labels (one class,
# 'object'), then frozen. Cached under work_dirs/adapted_detectors by weights digest + split + settings; the log
# shows the prompt-box IoU before / after on the training images and on the test split (measured, never trained on).
# Shared by configs/amsam-adapt_tiktok_*shot.py (they set the split file in both places below).
_base_ = ['./amsam_tiktok.py']
model = dict(prompter=dict(
    classes=None,  # the adapted detector has one class, 'object'
    adapt=dict(data_root='data/tiktok',  # = the dataset's data_root
               epochs=50, imgsz=640, report_split='test', cache_dir='work_dirs/adapted_detectors')))
