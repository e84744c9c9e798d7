"""The demo config through mmengine's Runner and through mmseg's own tools/train.py."""
import glob
import os
import os.path as osp
import subprocess
import sys

import mmseg
import pytest
from mmengine.runner import Runner

from cfg_helpers import ROOT, demo_cfg


def test_demo_trains_bilevel_validates_on_d2_and_tests(demo_root, tmp_path):
    cfg = demo_cfg(demo_root, tmp_path / 'work', max_epochs=2, val_interval=1)
    runner = Runner.from_cfg(cfg)
    runner.train()
    best = glob.glob(str(tmp_path / 'work' / 'best_mDice_*.pth'))
    assert len(best) == 1
    # validation ran on D2 (2 of the 4 training images), not on the test split
    assert len(runner.val_loop.dataloader.dataset) == 2
    test_cfg = demo_cfg(demo_root, tmp_path / 'test')
    test_cfg.load_from = best[0]
    metrics = Runner.from_cfg(test_cfg).test()
    assert 0.0 <= metrics['mDice'] <= 100.0 and 0.0 <= metrics['aDice'] <= 100.0
    log = open(glob.glob(str(tmp_path / 'work' / '*' / '*.log'))[0]).read()
    for key in ('lower.loss', 'upper.loss', 'lower.lr', 'upper.lr'):
        assert key in log, key


def test_stock_mmseg_train_script_runs_our_config(demo_root, tmp_path):
    script = osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools', 'train.py')
    if not osp.exists(script):
        pytest.fail(f'mmseg does not ship {script}')
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    opts = [f'{k}.dataset.data_root={demo_root}' for k in ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    opts += ['train_cfg.max_epochs=1', 'model.prompter.imgsz=64', 'model.prompter.adapt=None']
    proc = subprocess.run([sys.executable, script, osp.join(ROOT, 'configs', 'amsam_demo.py'), '--work-dir',
                           str(tmp_path), '--cfg-options', *opts], capture_output=True, text=True, timeout=600,
                          env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert glob.glob(str(tmp_path / 'best_mDice_*.pth'))
