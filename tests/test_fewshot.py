"""Few-shot split files (mmseg_amsam.datasets.fewshot and tools/dataset_converters/make_fewshot_split.py)."""
import json
from pathlib import Path

import pytest

from cfg_helpers import load_tool
from mmseg_amsam.datasets import list_pool, make_fewshot_splits, select_fewshot, split_file_name


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    """Prepared layout with train images 1..20 (numeric names); 20 has no mask, so the pool is 1..19."""
    root = tmp_path / 'prepared'
    img, ann = root / 'img_dir' / 'train', root / 'ann_dir' / 'train'
    img.mkdir(parents=True)
    ann.mkdir(parents=True)
    for i in range(1, 21):
        (img / f'{i}.jpg').write_bytes(b'x')
        if i != 20:
            (ann / f'{i}.png').write_bytes(b'x')
    (img / 'readme.txt').write_text('not an image')
    return root


def run_tool(argv):
    return load_tool('dataset_converters/make_fewshot_split').main(argv)


def test_pool_is_naturally_sorted_and_needs_masks(data_root):
    assert list_pool(data_root) == [str(i) for i in range(1, 20)]


def test_default_split_is_first_k_in_numeric_order(data_root):
    paths = make_fewshot_splits(data_root, [4, 8, 16])
    assert [p.name for p in paths] == ['train_4shot.txt', 'train_8shot.txt', 'train_16shot.txt']
    assert paths[0].read_text() == '1\n2\n3\n4\n'
    assert paths[1].read_text().split() == [str(i) for i in range(1, 9)]
    assert paths[2].read_text().split() == [str(i) for i in range(1, 17)]
    record = json.loads(paths[0].with_suffix('.json').read_text())
    assert record['seed'] is None and record['pool_size'] == 19
    assert record['names_in_draw_order'] == ['1', '2', '3', '4']


def test_seeded_split_is_deterministic_nested_and_recorded(data_root):
    paths = make_fewshot_splits(data_root, [4, 8, 16], seed=3)
    assert [p.name for p in paths] == ['train_4shot_seed3.txt', 'train_8shot_seed3.txt', 'train_16shot_seed3.txt']
    sets = [set(p.read_text().split()) for p in paths]
    assert [len(s) for s in sets] == [4, 8, 16]
    assert sets[0] < sets[1] < sets[2] <= {str(i) for i in range(1, 20)}
    assert sets[0] != {'1', '2', '3', '4'}  # a random draw, not the default
    record = json.loads(paths[0].with_suffix('.json').read_text())
    assert record['seed'] == 3 and record['pool_size'] == 19
    assert set(record['names_in_draw_order']) == sets[0]
    # same seed -> same names, other seed -> other names
    assert select_fewshot(list_pool(data_root), 4, seed=3) == record['names_in_draw_order']
    assert select_fewshot(list_pool(data_root), 8, seed=4) != select_fewshot(list_pool(data_root), 8, seed=3)


def test_too_many_shots_is_refused_before_writing(data_root):
    with pytest.raises(ValueError, match=r'a 20-shot split: .* holds 19 usable images'):
        make_fewshot_splits(data_root, [4, 20])
    assert not (data_root / 'splits').exists()
    with pytest.raises(ValueError, match='pool has only 3'):
        select_fewshot(['a', 'b', 'c'], 4)
    with pytest.raises(ValueError, match='shots must be >= 1'):
        select_fewshot(['a', 'b', 'c'], 0)


def test_rerun_is_stable_and_edits_are_protected(data_root):
    path = make_fewshot_splits(data_root, [4])[0]
    mtime = path.stat().st_mtime_ns
    assert make_fewshot_splits(data_root, [4])[0] == path
    assert path.stat().st_mtime_ns == mtime
    path.write_text('7\n8\n9\n10\n')
    with pytest.raises(FileExistsError, match='--overwrite'):
        make_fewshot_splits(data_root, [4])
    make_fewshot_splits(data_root, [4], overwrite=True)
    assert path.read_text() == '1\n2\n3\n4\n'


def test_not_prepared_root_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match='not a prepared dataset'):
        make_fewshot_splits(tmp_path, [4])


def test_command_line(data_root, capsys):
    assert run_tool([str(data_root), '--shots', '2', '3', '--seed', '0']) == 0
    out = capsys.readouterr().out
    assert 'train_2shot_seed0.txt: 2 names' in out and 'train_3shot_seed0.txt: 3 names' in out
    assert (data_root / 'splits' / split_file_name(3, 0)).is_file()
    assert run_tool([str(data_root), '--shots', '50']) == 1
    assert 'holds 19 usable images' in capsys.readouterr().err
