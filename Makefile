# Two entry points: `make demo` (set up, train + test AM-SAM on the embedded demo) and `make test`.
PY := .venv/bin/python
DEMO_WORK := work_dirs/amsam_demo

.PHONY: setup demo test benchmark clean-demo

setup:
	@bash tools/setup_env.sh

demo: setup
	$(PY) tools/generate_demo_data.py data/demo_shapes
	$(PY) tools/train.py configs/amsam_demo.py --work-dir $(DEMO_WORK)
	$(PY) tools/test.py configs/amsam_demo.py $$(ls -t $(DEMO_WORK)/best_mDice_*.pth | head -n 1) \
		--work-dir $(DEMO_WORK)/test
	$(PY) tools/infer.py configs/amsam_demo.py $$(ls -t $(DEMO_WORK)/best_mDice_*.pth | head -n 1) \
		data/demo_shapes/img_dir/test --out $(DEMO_WORK)/infer --overlay

test: setup
	$(PY) -m pytest -q tests

benchmark: setup
	$(PY) tools/benchmark.py configs/amsam_demo.py --arch vit_b

clean-demo:
	rm -rf $(DEMO_WORK) data/demo_shapes
