"""tools/run_cells.py: the commands of each cell, seeded splits, held-out selection, resume, the mean ± std table."""
import json
import os
import os.path as osp
import shlex

import pytest

from cfg_helpers import ROOT, load_tool
from mmseg_amsam.apis.experiment_cells import plan_cells, write_splits, write_val_subset
from mmseg_amsam.datasets import generate_demo_dataset, select_fewshot

run_cells = load_tool('run_cells')


def dry_run(capsys, *argv):
    assert run_cells.main([*argv, '--dry-run']) == 0
    return capsys.readouterr().out.splitlines()


def test_dry_run_prints_each_cells_train_and_test_commands(capsys, tmp_path):
    out = str(tmp_path / 'cells')
    lines = dry_run(capsys, '--table', '2', '--seeds', '0', '1', '--out', out)
    rel = osp.relpath(out, ROOT)
    assert len(lines) == 2 * 3 * 2 * 3  # 2 methods x 3 shots x 2 seeds, each: comment, train, test
    assert lines[0] == '# blosam_humanseg_4shot seed 0 (to run)'
    train = shlex.split(lines[1])
    assert train[1:] == ['tools/train.py', 'configs/blosam_humanseg_4shot.py', '--work-dir',
                         f'{rel}/blosam_humanseg_4shot/seed0', '--cfg-options', 'randomness.seed=0',
                         'train_dataloader.dataset.ann_file=splits/train_4shot_seed0.txt', 'train_cfg.split_seed=0']
    assert lines[2].split(' ', 1)[1] == (
        f'tools/test.py configs/blosam_humanseg_4shot.py $(ls -t {rel}/blosam_humanseg_4shot/seed0/best_mDice_*.pth '
        f'| head -n 1) --work-dir {rel}/blosam_humanseg_4shot/seed0/test --cfg-options randomness.seed=0')
    assert lines[-3] == '# amsam_humanseg_16shot seed 1 (to run)'
    assert not any(osp.exists(osp.join(out, p)) for p in ('', 'table.md'))  # a dry run writes nothing


def test_table_1_single_level_dist_launcher_and_the_untrained_baseline(capsys, tmp_path):
    lines = dry_run(capsys, '--table', '1', '--seeds', '0', '1', '--out', str(tmp_path), '--launcher', 'dist',
                    '--gpus', '4')
    swin = lines[lines.index('# swinunet_tiktok_8shot seed 1 (to run)') + 1:][:2]
    assert swin[0].startswith('bash tools/dist_train.sh configs/swinunet_tiktok_8shot.py 4 --work-dir ')
    assert 'train_cfg.split_seed=1' not in swin[0]  # single level: no D1/D2 split
    assert f' $(cat {osp.relpath(tmp_path, ROOT)}/swinunet_tiktok_8shot/seed1/last_checkpoint) ' in swin[1]
    sam = [i for i, line in enumerate(lines) if line.startswith('# sam-yolo_tiktok')]
    assert len(sam) == 1  # untrained: one test run, no training, no seeds
    assert lines[sam[0] + 1].split()[1:4] == ['tools/test.py', 'configs/sam-yolo_tiktok.py', 'none']


def test_selection_on_a_held_out_subset_disjoint_from_every_k_shot_set(tmp_path):
    root = generate_demo_dataset(tmp_path / 'data', num_train=12, num_test=2)
    cfg_dir = tmp_path / 'configs'
    cfg_dir.mkdir()
    (cfg_dir / 'amsam_demo.py').write_text(f"_base_ = ['{ROOT}/configs/amsam_demo.py']\n"
                                           f"train_dataloader = dict(dataset=dict(data_root='{root}'))\n")
    cells = plan_cells(['amsam_demo'], [2, 4], [3], str(tmp_path / 'out'), str(cfg_dir), 'val', 6)
    assert cells[1].overrides[-4:] == ['train_cfg.val_on=val', 'val_dataloader.dataset.ann_file=splits/val_6_seed3.txt',
                                       'val_dataloader.dataset.data_prefix.img_path=img_dir/train',
                                       'val_dataloader.dataset.data_prefix.seg_map_path=ann_dir/train']
    assert cells[1].test_overrides == ['randomness.seed=3',  # the test split is tested as always; the demo's
                                       'model.prompter.adapt.ann_file=splits/train_4shot_seed3.txt']  # adaptation
    write_splits(cells, 'val', 6)
    read = {n: (root / 'splits' / n).read_text().split() for n in os.listdir(root / 'splits') if n.endswith('.txt')}
    val, four = read['val_6_seed3.txt'], read['train_4shot_seed3.txt']
    assert len(val) == 6 and not set(val) & set(four) and set(read['train_2shot_seed3.txt']) < set(four)
    pool = sorted(read['train_12shot.txt'])
    assert val == select_fewshot(pool, 12, 3)[-6:] and sorted(four) == sorted(select_fewshot(pool, 4, 3))
    with pytest.raises(ValueError, match='needs 13 training images; the pool has 12'):
        write_val_subset(str(root), 3, 9, 4)


def finish(cell_dir, value, stamp):
    """What tools/test.py leaves: TEST_DIR/TIMESTAMP/TIMESTAMP.json with the metrics."""
    run = osp.join(cell_dir, 'test', stamp)
    os.makedirs(run)
    with open(osp.join(run, f'{stamp}.json'), 'w') as f:
        json.dump(dict(mDice=value, aDice=value), f)


def test_finished_cells_are_skipped_and_tabled_with_mean_and_std(capsys, tmp_path):
    out = tmp_path / 'cells'
    for seed, value in ((0, 80.0), (1, 82.0), (2, 84.0)):
        finish(out / 'blosam_humanseg_4shot' / f'seed{seed}', value, '20261129_000000')
    for seed, value in ((0, 90.0), (1, 91.0), (2, 92.0)):
        finish(out / 'amsam_humanseg_4shot' / f'seed{seed}', value, '20261129_000001')
    lines = dry_run(capsys, '--configs', 'blosam_humanseg', '--shots', '4', '--seeds', '0', '1', '2', '3',
                    '--out', str(out))
    assert [line for line in lines if line.startswith('#')] == [
        '# blosam_humanseg_4shot seed 0 (done, skipped)', '# blosam_humanseg_4shot seed 1 (done, skipped)',
        '# blosam_humanseg_4shot seed 2 (done, skipped)', '# blosam_humanseg_4shot seed 3 (to run)']
    # every cell finished: nothing runs (no dataset is even needed), the table is written
    assert run_cells.main(['--configs', 'blosam_humanseg', 'amsam_humanseg', '--shots', '4', '--seeds', '0', '1',
                           '2', '--out', str(out)]) == 0
    capsys.readouterr()
    assert '| BLO-SAM | 82.0 ± 2.0 (n=3) |' in (out / 'table.md').read_text()
    rows = (out / 'table.csv').read_text().splitlines()
    assert rows[0] == 'Method,HumanSeg 4-shot' and sorted(rows[1:]) == ['AM-SAM,91.0 ± 1.0 (n=3)',
                                                                         'BLO-SAM,82.0 ± 2.0 (n=3)']


def test_unknown_config_is_one_clear_error(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="no config for 'nosuch_isic' at 4 shots"):
        run_cells.main(['--configs', 'nosuch_isic', '--shots', '4', '--out', str(tmp_path), '--dry-run'])


def test_a_name_without_its_k_shot_config_uses_another_k_with_the_seeded_split(capsys, tmp_path):
    lines = dry_run(capsys, '--configs', 'amsam-sam2_isic', '--shots', '4', '--seeds', '1', '--out', str(tmp_path))
    train = shlex.split(lines[1])
    assert train[2] == 'configs/amsam-sam2_isic_8shot.py'  # only the 8-shot file ships; the split is the override
    assert 'train_dataloader.dataset.ann_file=splits/train_4shot_seed1.txt' in train
    assert lines[0] == '# amsam-sam2_isic_4shot seed 1 (to run)'


def test_an_adapting_detector_adapts_on_the_cells_split_in_training_and_test(capsys, tmp_path):
    lines = dry_run(capsys, '--configs', 'amsam-adapt_isic', '--shots', '8', '--seeds', '2', '--out', str(tmp_path))
    adapt = 'model.prompter.adapt.ann_file=splits/train_8shot_seed2.txt'
    assert adapt in shlex.split(lines[1]) and lines[2].endswith(f'randomness.seed=2 {adapt}')
