"""tools/plot_curves.py, tools/summarize.py, tools/visualize.py and tools/test.py --show-dir / --out."""
import csv
import glob
import json
import os.path as osp
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from cfg_helpers import demo_cfg, load_tool
from mmseg_amsam.datasets import DemoShapesDataset
from mmseg_amsam.engine import build_model
from mmseg_amsam.apis.run_logs import parse_experiment, find_test_runs, val_curve


def fake_train_run(work_dir, config_name, val_dice, timestamp='20240101_120000', metric='mDice'):
    """What mmengine writes for a training run: the dumped config and vis_data/scalars.json lines."""
    vis = work_dir / timestamp / 'vis_data'
    vis.mkdir(parents=True)
    (work_dir / f'{config_name}.py').write_text('# dumped config\n')
    lines = []
    for epoch, value in enumerate(val_dice, start=1):
        lines.append(dict(lr=0.005, loss=1.0 / epoch, epoch=epoch, iter=epoch * 4, step=epoch * 4))
        lines.append({metric: value, 'aDice': value, 'data_time': 0.01, 'time': 0.1, 'step': epoch})
    (vis / 'scalars.json').write_text('\n'.join(json.dumps(x) for x in lines) + '\n')


def fake_test_run(work_dir, config_name, dice, timestamp='20240102_120000'):
    """What tools/test.py (runner.test()) writes: TIMESTAMP/TIMESTAMP.json with the metrics."""
    (work_dir / timestamp).mkdir(parents=True)
    (work_dir / f'{config_name}.py').write_text('# dumped config\n')
    (work_dir / timestamp / f'{timestamp}.json').write_text(json.dumps(dict(mDice=dice, aDice=dice, time=0.1)))


def test_run_names_parse_into_method_dataset_and_shots():
    e = parse_experiment('amsam_isic_8shot')
    assert (e.method, e.dataset, e.shots) == ('AM-SAM', 'ISIC 2018', 8)
    e = parse_experiment('blosam_tiktok_4shot')
    assert (e.method, e.dataset, e.shots) == ('BLO-SAM', 'TikTok', 4)
    e = parse_experiment('deeplabv3_humanseg_16shot')
    assert (e.method, e.dataset, e.shots) == ('DeepLab', 'HumanSeg', 16)
    assert parse_experiment('swin_unet_tiktok_8shot').method == 'SwinUnet'
    assert parse_experiment('amsam_nocalib_isic_4shot').method == 'AM-SAM (nocalib)'
    assert parse_experiment('amsam_demo').dataset == 'Demo shapes'


def test_plot_curves_draws_several_runs_and_rejects_a_run_without_val_metrics(tmp_path, capsys):
    fake_train_run(tmp_path / 'amsam', 'amsam_tiktok_8shot', [60.0, 75.0, 80.0, 84.0])
    fake_train_run(tmp_path / 'blosam', 'blosam_tiktok_8shot', [30.0, 50.0, 70.0, 82.0])
    # a resumed run: a second TIMESTAMP folder continues the curve
    fake_train_run(tmp_path / 'blosam', 'blosam_tiktok_8shot', [30.0, 50.0, 70.0, 82.0, 83.0], '20240101_130000')
    assert val_curve(str(tmp_path / 'blosam'))[-1] == (5, 83.0)
    tool = load_tool('plot_curves')
    out = tmp_path / 'curves.png'
    assert tool.main([str(tmp_path / 'amsam'), str(tmp_path / 'blosam'), '--out', str(out)]) == 0
    img = Image.open(out)
    assert img.format == 'PNG' and img.size == (800, 500)
    text = capsys.readouterr().out
    assert 'AM-SAM (8-shot): 4 validations, best mDice 84.00 at epoch 4' in text and 'BLO-SAM' in text
    assert tool.main([str(tmp_path / 'amsam'), '--out', str(tmp_path / 'small.png'), '--width', '400',
                      '--height', '300', '--labels', 'ours']) == 0
    assert Image.open(tmp_path / 'small.png').size == (400, 300)

    no_val = tmp_path / 'no_val'
    (no_val / '20240101_120000' / 'vis_data').mkdir(parents=True)
    (no_val / '20240101_120000' / 'vis_data' / 'scalars.json').write_text(
        json.dumps(dict(lr=0.1, loss=1.0, epoch=1, iter=1, step=1)) + '\n')
    assert tool.main([str(tmp_path / 'amsam'), str(no_val), '--out', str(tmp_path / 'x.png')]) == 2
    err = capsys.readouterr().err
    assert str(no_val) in err and "no validation 'mDice'" in err
    assert tool.main([str(tmp_path / 'nowhere'), '--out', str(tmp_path / 'x.png')]) == 2
    assert 'not an mmengine work dir' in capsys.readouterr().err
    assert not (tmp_path / 'x.png').exists()


def test_summarize_builds_the_paper_tables_from_finished_runs(tmp_path, capsys):
    runs = tmp_path / 'work_dirs'
    fake_test_run(runs / 'amsam_tiktok_4shot', 'amsam_tiktok_4shot', 81.31)
    fake_test_run(runs / 'amsam_tiktok_8shot', 'amsam_tiktok_8shot', 86.7)
    fake_test_run(runs / 'blosam_tiktok_4shot', 'blosam_tiktok_4shot', 76.3)
    fake_test_run(runs / 'deeplabv3_tiktok_8shot', 'deeplabv3_tiktok_8shot', 37.0)
    fake_test_run(runs / 'sam-yolo_tiktok', 'sam-yolo_tiktok', 26.04)  # untrained: under every TikTok column
    fake_test_run(runs / 'amsam-yolo_tiktok_8shot', 'amsam-yolo_tiktok_8shot', 85.2)  # Table 4 ablation
    # two seeds of one cell, the second tested twice (the latest test counts)
    fake_test_run(runs / 'amsam_isic_4shot_seed0', 'amsam_isic_4shot', 66.0)
    fake_test_run(runs / 'amsam_isic_4shot_seed1', 'amsam_isic_4shot', 10.0, '20240102_120000')
    fake_test_run(runs / 'amsam_isic_4shot_seed1', 'amsam_isic_4shot', 68.0, '20240103_120000')
    # a training work dir with its test in test/ (as `make demo` does)
    fake_train_run(runs / 'blosam_isic_8shot', 'blosam_isic_8shot', [50.0, 60.0])
    fake_test_run(runs / 'blosam_isic_8shot' / 'test', 'blosam_isic_8shot', 62.3)
    fake_train_run(runs / 'amsam_humanseg_4shot', 'amsam_humanseg_4shot', [50.0])  # never tested
    assert len(find_test_runs(str(runs / 'amsam_isic_4shot_seed1'))) == 2

    tool = load_tool('summarize')
    md, table = tmp_path / 'results.md', tmp_path / 'results.csv'
    assert tool.main(sorted(glob.glob(str(runs / '*'))) + ['--out', str(md), '--csv', str(table)]) == 0
    assert 'amsam_humanseg_4shot' in capsys.readouterr().err  # reported, not fatal
    rows = list(csv.reader(open(table, encoding='utf-8')))
    assert rows[0] == ['Method', 'TikTok 4-shot', 'TikTok 8-shot', 'ISIC 2018 4-shot', 'ISIC 2018 8-shot']
    assert rows[1:] == [['DeepLab', '–', '37.0', '–', '–'],
                        ['SAM + YOLO', '26.0', '26.0', '–', '–'],
                        ['BLO-SAM', '76.3', '–', '–', '62.3'],
                        ['AM-SAM (YOLO only)', '–', '85.2', '–', '–'],
                        ['AM-SAM', '81.3', '86.7', '67.0 ± 1.4 (n=2)', '–']]
    text = md.read_text(encoding='utf-8')
    assert '| AM-SAM | 81.3 | 86.7 | 67.0 ± 1.4 (n=2) | – |' in text
    assert 'amsam_humanseg_4shot' in text  # listed under "Not included"
    assert tool.main([str(runs / 'amsam_humanseg_4shot'), '--out', str(tmp_path / 'none.md')]) == 1


@pytest.fixture(scope='module')
def checkpoint_and_config(demo_root, tmp_path_factory):
    tmp = tmp_path_factory.mktemp('vis_model')
    cfg = demo_cfg(demo_root, tmp / 'work')
    cfg_path = str(tmp / 'demo_small.py')
    cfg.dump(cfg_path)
    model = build_model(cfg.model, seed=0)
    ckpt = str(tmp / 'model.pth')
    torch.save(dict(meta=dict(seed=0, dataset_meta=dict(DemoShapesDataset.METAINFO), cfg=cfg.pretty_text),
                    state_dict=model.state_dict()), ckpt)
    return cfg_path, ckpt


def test_visualize_makes_an_image_gt_predictions_grid(checkpoint_and_config, tmp_path, capsys):
    cfg_path, ckpt = checkpoint_and_config
    out = tmp_path / 'fig.png'
    tool = load_tool('visualize')
    assert tool.main([cfg_path, '--runs', f'AM-SAM={ckpt}', f'BLO-SAM={ckpt}', '--images', '2', '--out', str(out),
                      '--panel-size', '96', '--seed', '0']) == 0
    img = Image.open(out)
    assert img.format == 'PNG' and img.size == (4 * 96, 2 * 96 + tool.HEADER_PX)
    assert 'BLO-SAM: 2 images predicted' in capsys.readouterr().out
    with pytest.raises(SystemExit, match='NAME=CHECKPOINT'):
        tool.main([cfg_path, '--runs', ckpt, '--out', str(out)])


def test_test_script_show_dir_saves_overlays(checkpoint_and_config, demo_root, tmp_path, monkeypatch):
    cfg_path, ckpt = checkpoint_and_config
    tool = load_tool('test')
    show = tmp_path / 'show'
    # visualizer.name: mmengine keeps one visualizer per name and process; a fresh name makes sure the new
    # save_dir applies in this shared test process
    monkeypatch.setattr(sys, 'argv', ['test.py', cfg_path, ckpt, '--work-dir', str(tmp_path / 'work'),
                                      '--show-dir', str(show), '--cfg-options', 'visualizer.name=show_dir_test'])
    tool.main()
    drawn = glob.glob(str(show / 'vis_data' / 'vis_image' / '*.png'))
    assert len(drawn) == len(glob.glob(osp.join(demo_root, 'img_dir', 'test', '*.png')))
    assert Image.open(drawn[0]).format == 'PNG'
    assert find_test_runs(str(tmp_path / 'work'))  # and the metrics where tools/summarize.py finds them


def test_test_script_out_writes_one_mask_per_test_image(checkpoint_and_config, demo_root, tmp_path, monkeypatch):
    cfg_path, ckpt = checkpoint_and_config
    tool = load_tool('test')
    out = tmp_path / 'masks'
    monkeypatch.setattr(sys, 'argv', ['test.py', cfg_path, ckpt, '--work-dir', str(tmp_path / 'work'),
                                      '--out', str(out)])
    tool.main()
    images = sorted(glob.glob(osp.join(demo_root, 'img_dir', 'test', '*.png')))
    masks = sorted(glob.glob(str(out / '*.png')))
    assert [osp.basename(m) for m in masks] == [osp.basename(i) for i in images]
    for img, mask in zip(images, masks):
        m = np.array(Image.open(mask))
        assert m.shape == np.array(Image.open(img)).shape[:2]  # original size
        assert set(np.unique(m).tolist()) <= {0, 1}
