"""Dataset converters at the boundary (issue 19, section 4): masks carried by an alpha channel, --overwrite next to a
user's own files, a converter killed with SIGKILL while its pool workers run."""
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from PIL import Image

from cfg_helpers import ROOT, load_tool
from mmseg_amsam.datasets import MANIFEST_NAME, OutputExistsError, conversion
from mmseg_amsam.datasets.conversion import dataset_conversion
from mmseg_amsam.datasets.fewshot import make_fewshot_splits
from mmseg_amsam.datasets.prepared_layout import PARTIAL_MARKER, foreign_entries
from test_converter_errors import SLOW_CONVERTER, leftovers, tiktok_raw, wait_for_line
from test_converters import make_humanseg_raw, read_mask

W, H = 10, 8
INTENDED = np.random.default_rng(19).integers(0, 2, (H, W)).astype(np.uint8)  # the mask each file means
INTENDED[0, 0], INTENDED[0, 1] = 0, 1  # both values present, whatever the draw


@pytest.fixture(name='humanseg_raw')
def humanseg_raw_fixture(tmp_path: Path) -> Path:
    return make_humanseg_raw(tmp_path)


def la(grey, alpha) -> Image.Image:
    return Image.fromarray(np.stack([np.broadcast_to(np.uint8(c), (H, W)) for c in (grey, alpha)], -1), 'LA')


def rgba(colour, alpha) -> Image.Image:
    colour = np.broadcast_to(np.asarray(colour, np.uint8), (H, W, 3))
    return Image.fromarray(np.concatenate([colour, np.broadcast_to(np.uint8(alpha), (H, W))[..., None]], -1), 'RGBA')


def tree(root: Path) -> dict:
    """Every entry under ``root``: relative path -> bytes (files) or None (folders)."""
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob('*'))}


WORKERS_GONE_S = 5  # measured: both workers dead 0.03-0.05 s after the SIGKILL (2 busy cores)


def dead(process: psutil.Process) -> bool:
    """Ended: gone, or a zombie (it holds no file and no lock; when init reaps it is not ours to wait for)."""
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def command_line(process: psutil.Process) -> str:
    with contextlib.suppress(psutil.Error):
        return ' '.join(process.cmdline())
    return ''


# ------------------------------------------------------------------------------------- 1: LA / RGBA masks
def test_alpha_masks_are_written_as_the_mask_they_carry(tmp_path, capsys):
    fg = INTENDED * 255
    masks = [  # (mask file, what it means: a 0/1 array, or the reason it is refused)
        (la(0, fg), INTENDED),  # black, the mask in the alpha channel (the file)
        (la(255, fg), INTENDED),  # white cut-out
        (la(fg, fg), INTENDED),  # both channels carry the same mask
        (la(fg, 255), INTENDED),  # opaque: the grey channel is the mask
        (rgba((255, 255, 255), fg), INTENDED),
        (rgba((200, 30, 30), fg), INTENDED),  # one colour, the alpha is the mask
        (rgba(np.repeat(fg[..., None], 3, -1), 255), INTENDED),
        (la(fg, 255 - fg), 'disagree on 80 pixels'),  # grey and alpha say opposite things
        (rgba(np.random.default_rng(1).integers(0, 256, (H, W, 3)), fg), 'RGBA mask with varying colours'),
        (la(0, 0), np.zeros((H, W), np.uint8)),  # nothing anywhere: an empty mask, kept
    ]
    raw = tiktok_raw(tmp_path, [m for m, _ in masks])
    out = tmp_path / 'out'
    tool = load_tool('dataset_converters/tiktok')
    assert tool.main([str(raw), str(out), '--num-test', '1', '--workers', '1']) == 0
    report = json.loads((out / MANIFEST_NAME).read_text())['report']
    skipped = {s.split(':')[0]: s for s in report['skipped']}
    for i, (_, meaning) in enumerate(masks):
        split, name = ('test' if i == len(masks) - 1 else 'train'), f'{i:04d}'
        if isinstance(meaning, str):
            assert f'{split}/{name}: {name}.png: ' in skipped.pop(f'{split}/{name}') and not \
                (out / 'ann_dir' / split / f'{name}.png').exists()
            continue
        np.testing.assert_array_equal(read_mask(out / 'ann_dir' / split / f'{name}.png'), meaning, err_msg=name)
    assert skipped == {} and report['skipped_reasons'] == {'ambiguous alpha mask': 2}
    assert 'disagree on 80 pixels' in ' '.join(report['skipped'])
    assert report['normalised']['mask alpha channel taken as the mask (the colour is constant)'] == \
        ['0000: LA', '0001: LA', '0004: RGBA', '0005: RGBA']
    assert 'mask alpha channel ignored' not in capsys.readouterr().out


def test_an_ambiguous_alpha_mask_is_refused_naming_the_file():
    m = la(INTENDED * 255, 0)
    m.putalpha(Image.fromarray((1 - INTENDED) * 200))
    with pytest.raises(conversion.PairError, match='grey and alpha channels both vary') as info:
        conversion.normalise_mask(m, (W, H))
    assert info.value.reason == 'ambiguous alpha mask'


# ------------------------------------------------------------------------------------- 2: --overwrite
def test_overwrite_refuses_while_the_dataset_holds_a_users_files(humanseg_raw, tmp_path, capsys):
    tool = load_tool('dataset_converters/humanseg')
    out = tmp_path / 'out'
    args = [str(humanseg_raw), str(out), '--num-test', '3', '--workers', '1']
    assert tool.main(args) == 0
    make_fewshot_splits(out, [2])  # ours: replacing the dataset may take it
    (out / 'note.txt').write_text('where this data came from')
    Image.new('RGB', (40, 30)).save(out / 'img_dir' / 'train' / 'extra.jpg')
    (out / 'splits' / 'my_pick.txt').write_text('1\n3\n')  # a hand-made split: not ours either
    before = tree(out)
    capsys.readouterr()

    assert tool.main(args + ['--overwrite']) == 2
    stdout, err = capsys.readouterr()
    assert stdout == '' and err.count('\n') == 1
    assert err.startswith(f'error: {out} holds 3 file(s) or folder(s) this package did not write: '
                          'img_dir/train/extra.jpg, note.txt, splits/my_pick.txt. Refusing to replace it')
    assert tree(out) == before and leftovers(tmp_path) == []

    for name in ('note.txt', 'img_dir/train/extra.jpg', 'splits/my_pick.txt'):
        (out / name).unlink()
    assert tool.main(args + ['--overwrite']) == 0  # only our files left: rebuilt
    assert foreign_entries(out, json.loads((out / MANIFEST_NAME).read_text())) == []
    assert not (out / 'splits').exists() and leftovers(tmp_path) == []


def test_a_users_split_listing_a_whole_split_is_theirs_the_demo_datas_recorded_one_ours(humanseg_raw, tmp_path,
                                                                                          capsys):
    """Only the split files the manifest records (name and SHA-256) or make_fewshot_split's are ours: a user's
    own list of every training image is refused by --overwrite like any other file of theirs."""
    tool = load_tool('dataset_converters/humanseg')
    out = tmp_path / 'out'
    args = [str(humanseg_raw), str(out), '--num-test', '3', '--workers', '1']
    assert tool.main(args) == 0
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest['split_files'] == {}
    (out / 'splits').mkdir()
    (out / 'splits' / 'all_train.txt').write_text(''.join(f'{n}\n' for n in sorted(manifest['files']['train'])))
    assert foreign_entries(out, manifest) == ['splits/all_train.txt']
    capsys.readouterr()
    assert tool.main(args + ['--overwrite']) == 2 and (out / 'splits' / 'all_train.txt').is_file()
    assert 'splits/all_train.txt' in capsys.readouterr().err

    from mmseg_amsam.datasets import generate_demo_dataset
    demo = generate_demo_dataset(tmp_path / 'demo')
    demo_manifest = json.loads((Path(demo) / MANIFEST_NAME).read_text())
    assert sorted(demo_manifest['split_files']) == ['train_4shot.txt'] and foreign_entries(demo, demo_manifest) == []
    with open(Path(demo) / 'splits' / 'train_4shot.txt', 'a') as f:  # edited by hand: no longer the recorded file
        f.write('train_000_copy\n')
    assert foreign_entries(demo, demo_manifest) == ['splits/train_4shot.txt']


def test_a_file_added_during_the_rebuild_is_never_deleted(humanseg_raw, tmp_path, monkeypatch):
    out = tmp_path / 'out'
    raw = conversion.collect_tail_split(humanseg_raw, 'Training_Images', 'Ground_Truth', 'HumanSeg', num_test=3)
    conversion.convert_dataset(raw, humanseg_raw, out, source='humanseg', img_suffix='.jpg', log=lambda s: None)
    real = conversion.convert_pair

    def user_writes_meanwhile(pair, out_root, img_suffix):
        (out / 'img_dir' / 'train' / 'late.jpg').write_bytes(b'theirs')
        return real(pair, out_root, img_suffix)

    monkeypatch.setattr(dataset_conversion, 'convert_pair', user_writes_meanwhile)
    before = tree(out)
    with pytest.raises(OutputExistsError, match=r'img_dir/train/late.jpg \(added while it was being rebuilt\)'):
        conversion.convert_dataset(raw, humanseg_raw, out, source='humanseg', img_suffix='.jpg', overwrite=True,
                                   log=lambda s: None)
    assert tree(out) == {**before, 'img_dir/train/late.jpg': b'theirs'} and leftovers(tmp_path) == []


# ------------------------------------------------------------------------------------- 3: SIGKILL, stale partials
def test_sigkill_of_the_converter_takes_its_workers_and_the_next_run_cleans_up(humanseg_raw, tmp_path, capsys):
    script, release, out = tmp_path / 'slow_converter.py', tmp_path / 'release', tmp_path / 'out'
    script.write_text(SLOW_CONVERTER.format(root=ROOT, release=str(release),
                                            tools=str(Path(ROOT) / 'tools' / 'dataset_converters')))
    proc = subprocess.Popen([sys.executable, str(script), str(humanseg_raw), str(out), '--num-test', '3',
                             '--workers', '2'], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    children = []
    try:
        wait_for_line(proc, 'converting')  # a worker is inside a pair, the partial folder is being written
        children = psutil.Process(proc.pid).children(recursive=True)
        workers = [c for c in children if 'resource_tracker' not in command_line(c)]
        assert len(workers) == 2 and len(leftovers(tmp_path)) == 1
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
        started = time.monotonic()
        while time.monotonic() - started < WORKERS_GONE_S and not all(map(dead, children)):
            time.sleep(0.02)
        alive = [c for c in children if not dead(c)]
        assert alive == [], f'still running {time.monotonic() - started:.1f} s after the converter died: {alive}'
    finally:
        proc.kill()
        for child in children:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
    release.touch()
    assert len(leftovers(tmp_path)) == 1  # what the killed run left
    tool = load_tool('dataset_converters/humanseg')
    assert tool.main([str(humanseg_raw), str(out), '--num-test', '3', '--workers', '2']) == 0
    assert 'removed .out.partial-' in capsys.readouterr().out
    assert leftovers(tmp_path) == [] and (out / MANIFEST_NAME).is_file()


def test_only_partial_folders_with_our_marker_are_removed(humanseg_raw, tmp_path, capsys):
    ours, users = tmp_path / '.out.partial-k1ll3d00', tmp_path / '.out.partial-notes'
    for folder in (ours, users):
        (folder / 'img_dir').mkdir(parents=True)
        (folder / 'img_dir' / 'a.jpg').write_bytes(b'x')
    (ours / PARTIAL_MARKER).write_text('partial output of pid 1 for out\n')
    tool = load_tool('dataset_converters/humanseg')
    assert tool.main([str(humanseg_raw), str(tmp_path / 'out'), '--num-test', '3', '--workers', '1']) == 0
    assert '[humanseg] removed .out.partial-k1ll3d00, left by an interrupted run' in capsys.readouterr().out
    assert leftovers(tmp_path) == ['.out.partial-notes'] and (users / 'img_dir' / 'a.jpg').read_bytes() == b'x'
    assert sorted(os.listdir(tmp_path / 'out')) == [MANIFEST_NAME, 'ann_dir', 'img_dir']  # no marker moved in
