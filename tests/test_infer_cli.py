"""tools/infer.py's arguments (issue 19): out-of-range values are refused by argparse (one message, exit 2), and
CHECKPOINT `none` means what it means to tools/test.py: the model as built from the config, nothing trained."""
import glob
import json
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from cfg_helpers import demo_cfg, load_tool
from mmseg_amsam.apis.cli_errors import run_cli


@pytest.fixture(scope='module')
def infer():
    return load_tool('infer')


@pytest.mark.parametrize('option, value, message', [
    ('--batch-size', '0', 'must be >= 1 (images per forward pass), got 0'),
    ('--batch-size', '-2', 'must be >= 1 (images per forward pass), got -2'),
    ('--batch-size', '1.5', "expected a whole number >= 1, got '1.5'"),
    ('--opacity', '-1', 'must be between 0 (image only) and 1 (mask colour only), got -1'),
    ('--opacity', '5', 'must be between 0 (image only) and 1 (mask colour only), got 5'),
    ('--opacity', 'nan', 'must be between 0 (image only) and 1 (mask colour only), got nan'),
    ('--opacity', 'half', "expected a number between 0 and 1, got 'half'"),
])
def test_out_of_range_values_are_refused_with_one_message(infer, option, value, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        infer.parse_args(['cfg.py', 'ckpt.pth', 'images', '--out', 'out', option, value])
    assert exit_info.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if 'error' in line]
    assert len(errors) == 1 and errors[0].endswith(f': error: argument {option}: {message}')  # PROG: error: ...


def test_limits_of_the_ranges_are_accepted(infer):
    args = infer.parse_args(['cfg.py', 'ckpt.pth', 'images', '--out', 'out', '--batch-size', '1', '--opacity', '0'])
    assert (args.batch_size, args.opacity) == (1, 0.0)
    assert infer.parse_args(['cfg.py', 'c.pth', 'images', '--out', 'o', '--opacity', '1']).opacity == 1.0


def test_checkpoint_none_segments_with_the_untrained_model_as_tools_test_py(infer, demo_root, tmp_path):
    cfg = demo_cfg(demo_root, tmp_path / 'work')
    cfg.test_evaluator = dict(type='DiceMetric')
    cfg_path = str(tmp_path / 'demo_small.py')
    cfg.dump(cfg_path)
    images = osp.join(demo_root, 'img_dir', 'test')
    assert infer.main([cfg_path, 'None', images, '--out', str(tmp_path / 'infer'), '--device', 'cpu']) == 0
    record = json.load(open(tmp_path / 'infer' / 'predictions.json'))
    assert record['checkpoint'] is None and len(record['images']) == 2
    test = load_tool('test')
    assert run_cli(test.main, [cfg_path, 'none', '--work-dir', str(tmp_path / 'test'), '--out',
                               str(tmp_path / 'test_out')]) == 0
    names = sorted(osp.basename(p) for p in glob.glob(osp.join(images, '*.png')))
    for name in names:  # the same masks, pixel for pixel
        ours = np.array(Image.open(tmp_path / 'infer' / name))
        theirs = np.array(Image.open(tmp_path / 'test_out' / name))
        assert ours.shape == theirs.shape and np.array_equal(ours, theirs), name
        assert 0 < (ours > 0).mean() < 1  # a real mask, not an empty or full one
