# Two entry points: `make demo` (set up, few-shot transfer of the pretrained toy AM-SAM on the embedded demo) and
# `make test`. `make pretrain-toy` rebuilds the committed toy SAM / YOLO weights (toy_world/, ~20 min on 2 cores);
# `make toy-table` runs Table 4's rows and the baselines at toy scale (3 seeds, 4 and 8 shots) and Fig. 5.
PY := .venv/bin/python
DEMO_WORK := work_dirs/amsam_demo
DEMO_BEST = $$(ls -t $(DEMO_WORK)/best_mDice_*.pth | head -n 1)
# zero-shot: the pretrained SAM and YOLO box, nothing trained or adapted (plain SAM: single-mask output, no learned
# prompt)
ZERO_SHOT := model.prompter.adapt=None model.learnable_prompt=None model.decode_head.num_classes=1 model.decode_head.threshold=0.5 \
	model.decode_head.lora_rank=0 model.decode_head.calibration=none model.decode_head.trainable=[] \
	model.decode_head.mask_output=single

.PHONY: setup demo test benchmark clean-demo pretrain-toy pretrain-toy-check toy-table

setup:
	@bash tools/setup_env.sh

demo: setup
	$(PY) tools/generate_demo_data.py data/demo_shapes
	$(PY) tools/test.py configs/amsam_demo.py none --work-dir $(DEMO_WORK)/zero_shot --cfg-options $(ZERO_SHOT)
	$(PY) tools/train.py configs/amsam_demo.py --work-dir $(DEMO_WORK)
	$(PY) tools/test.py configs/amsam_demo.py $(DEMO_BEST) --work-dir $(DEMO_WORK)/test
	$(PY) tools/infer.py configs/amsam_demo.py $(DEMO_BEST) data/demo_shapes/img_dir/test --out $(DEMO_WORK)/infer \
		--overlay
	$(PY) tools/demo_report.py $(DEMO_WORK)

test: setup
	$(PY) -m pytest -q tests

benchmark: setup
	$(PY) tools/benchmark.py configs/amsam_isic_8shot.py --compare configs/amsam-sam2_isic_8shot.py \
		configs/amsam-sam2_isic_8shot.py@hiera_s

toy-table: setup
	$(PY) tools/toy_table.py --out work_dirs/toy_table

pretrain-toy: setup
	$(PY) tools/pretrain_toy.py

pretrain-toy-check: setup
	$(PY) tools/pretrain_toy.py --check

clean-demo:
	rm -rf $(DEMO_WORK) data/demo_shapes
