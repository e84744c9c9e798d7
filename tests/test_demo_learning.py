"""The embedded default learns: from the committed toy SAM / YOLO (toy_world/), the demo's two few-shot stages on its
4 shots (detector adaptation, then its 30-epoch bi-level run: ~1 min on 2 CPU cores) raise the test Dice far above
the untrained model's, what `make demo` prints."""
import glob

from mmengine.config import Config
from mmengine.runner import Runner

from cfg_helpers import ROOT, point_at
from mmseg_amsam.datasets import generate_demo_dataset

# measured on a 2-core x86_64 CPU (the demo's data: 4 train / 20 test images): test Dice zero-shot (plain toy SAM +
# toy YOLO box) 75.9; after adaptation + bi-level training 90.0 (after 3 epochs only: 79.8)
MARGIN = 10.0
ZERO_SHOT = dict(learnable_prompt=None, decode_head=dict(num_classes=1, threshold=0.5, lora_rank=0, calibration='none',
                                                         trainable=[], mask_output='single'))


def demo(root, work_dir, name):
    cfg = Config.fromfile(f'{ROOT}/configs/amsam_demo.py')
    point_at(cfg, root)
    cfg.model.prompter.adapt.update(data_root=str(root), cache_dir=f'{work_dir}/adapted')
    cfg.work_dir, cfg.experiment_name = str(work_dir), name
    return cfg


def test_detector_adaptation_and_a_short_bilevel_run_raise_test_dice(tmp_path):
    root = generate_demo_dataset(tmp_path / 'demo')
    zero = demo(root, tmp_path / 'zero', 'learning_zero')
    zero.model.prompter.adapt = None
    zero.model.merge(ZERO_SHOT)
    before = Runner.from_cfg(zero).test()['mDice']
    Runner.from_cfg(demo(root, tmp_path / 'work', 'learning_train')).train()
    test = demo(root, tmp_path / 'test', 'learning_test')
    test.load_from = sorted(glob.glob(str(tmp_path / 'work' / 'best_mDice_*.pth')))[-1]
    after = Runner.from_cfg(test).test()['mDice']
    print(f'test Dice zero-shot {before:.1f}, after adaptation + bi-level training {after:.1f}')
    assert after >= before + MARGIN, (before, after)
