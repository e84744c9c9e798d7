"""tools/toy_table.py's cells: each paper method's config, made toy-sized on the demo domain (no training here)."""
import os.path as osp

import pytest
from mmengine.config import Config
from mmseg.registry import MODELS

from cfg_helpers import ROOT, load_tool
from mmseg_amsam.apis.toy_experiments import TOY_METHODS, toy_experiment

CONFIGS = osp.join(ROOT, 'configs')
DEMO = Config.fromfile(osp.join(CONFIGS, 'amsam_demo.py'))


@pytest.mark.parametrize('method', list(TOY_METHODS))
def test_cell_keeps_the_method_and_takes_toy_sizes_data_and_schedule(method, tmp_path):
    paper = Config.fromfile(osp.join(CONFIGS, TOY_METHODS[method]))
    shots = None if method == 'sam-yolo' else 8
    cfg = toy_experiment(method, CONFIGS, '/data/toy', shots, 2, str(tmp_path))
    model, toy = cfg.model, DEMO.model
    # the method: prompter or not, calibration, LoRA placement, learnable prompt, trainable parts, loop
    assert (model.get('prompter') is None) == (paper.model.get('prompter') is None)
    for key in ('calibration', 'lora_rank', 'num_classes', 'trainable'):
        assert model.decode_head.get(key) == paper.model.decode_head.get(key), key
    assert model.backbone.get('lora_rank') == paper.model.backbone.get('lora_rank')
    assert (model.get('learnable_prompt') is None) == (paper.model.get('learnable_prompt') is None)
    assert (cfg.train_cfg or {}).get('type') == (paper.train_cfg or {}).get('type')
    # the toy world: sizes and weights of the demo, its data and schedule length, the seeded split
    assert (model.img_size, model.sam_checkpoint, model.backbone.arch) == (toy.img_size, toy.sam_checkpoint, 'tiny')
    assert model.decode_head.transformer_dim == toy.decode_head.transformer_dim
    if model.get('prompter'):
        assert (model.prompter.model, model.prompter.classes) == (toy.prompter.model, None)
    assert cfg.test_dataloader.dataset.data_root == '/data/toy' and cfg.randomness == dict(seed=2)
    if shots:
        epochs = DEMO.train_cfg.max_epochs
        assert cfg.train_cfg.max_epochs == epochs
        assert cfg.train_dataloader.dataset.ann_file == 'splits/train_8shot_seed2.txt'
        schedulers = cfg.param_scheduler.values() if isinstance(cfg.param_scheduler, dict) else [cfg.param_scheduler]
        assert {s.end for level in schedulers for s in level} == {epochs}
    else:
        assert cfg.get('train_cfg') is None
    MODELS.build(model)  # builds with the committed toy weights


def test_cells_are_every_method_shot_and_seed_and_the_baseline_once_per_seed():
    tool = load_tool('toy_table')
    args = tool.parse_args(['--shots', '4', '8', '--seeds', '0', '1', '--methods', 'amsam', 'sam-yolo'])
    assert [c[3] for c in tool.cells(args)] == [
        'amsam_demo_4shot_seed0', 'amsam_demo_8shot_seed0', 'amsam_demo_4shot_seed1', 'amsam_demo_8shot_seed1',
        'sam-yolo_demo_seed0', 'sam-yolo_demo_seed1']
