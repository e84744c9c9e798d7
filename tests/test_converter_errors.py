"""Dataset converters on bad input (issue 11: 1, 2, 3, 6, 8, 10): palette and 16-bit masks, --overwrite only on our
own datasets, SIGTERM and stale partial folders, one message with exit code 2, --strict and skip reasons."""
import fcntl
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cfg_helpers import ROOT, load_tool
from mmseg_amsam.datasets import MANIFEST_NAME, OutputExistsError, PairError
from mmseg_amsam.datasets import conversion
from mmseg_amsam.datasets.conversion import dataset_conversion
from mmseg_amsam.datasets.demo_shapes import generate_demo_dataset
from mmseg_amsam.datasets.prepared_layout import PARTIAL_MARKER, Terminated, atomic_output_dir
from test_converters import half_mask, make_humanseg_raw, read_mask, rgb


@pytest.fixture(name='humanseg_raw')
def humanseg_raw_fixture(tmp_path: Path) -> Path:
    return make_humanseg_raw(tmp_path)


def palette_mask(indices, palette) -> Image.Image:
    m = Image.fromarray(np.asarray(indices, np.uint8), 'P')
    m.putpalette([c for colour in palette for c in colour])
    return m


def tiktok_raw(tmp_path: Path, masks) -> Path:
    """A TikTok-layout raw folder: one 10x8 RGB image per mask, named 0000, 0001, ..."""
    raw = tmp_path / 'raw'
    (raw / 'images').mkdir(parents=True)
    (raw / 'masks').mkdir()
    for i, mask in enumerate(masks):
        rgb(10, 8, i).save(raw / 'images' / f'{i:04d}.png')
        mask.save(raw / 'masks' / f'{i:04d}.png')
    return raw


def leftovers(folder: Path):
    return sorted(p.name for p in folder.iterdir() if '.partial-' in p.name or '.old-' in p.name)


# ------------------------------------------------------------------------------------- 1: palette masks
def test_palette_mask_follows_what_the_palette_shows():
    white0 = palette_mask([[0, 1], [1, 1]], [(255, 255, 255), (0, 0, 0)])  # index 0 is shown white
    mask, notes = conversion.normalise_mask(white0, (2, 2))
    assert mask.tolist() == [[1, 0], [0, 0]]
    assert notes[0] == ('mask palette: grey level of each used colour taken as the value', '0=(255,255,255) 1=(0,0,0)')
    red = palette_mask([[0, 1], [1, 1]], [(0, 0, 0), (128, 0, 0)])  # VOC style: black + one colour
    mask, notes = conversion.normalise_mask(red, (2, 2))
    assert mask.tolist() == [[0, 1], [1, 1]]
    assert notes == [('mask palette: black = background, the other colour = foreground', '0=(0,0,0) 1=(128,0,0)')]
    red_first = palette_mask([[0, 1], [1, 1]], [(128, 0, 0), (0, 0, 0)])
    assert conversion.normalise_mask(red_first, (2, 2))[0].tolist() == [[1, 0], [0, 0]]


def test_ambiguous_palettes_are_refused():
    with pytest.raises(PairError, match='which colour is foreground is ambiguous') as info:
        conversion.normalise_mask(palette_mask([[0, 1], [1, 1]], [(255, 0, 0), (0, 255, 0)]), (2, 2))
    assert info.value.reason == 'ambiguous palette'
    with pytest.raises(PairError, match='is ambiguous'):  # black and two colours: a label map
        conversion.normalise_mask(palette_mask([[0, 1], [2, 2]], [(0, 0, 0), (255, 0, 0), (0, 255, 0)]), (2, 2))
    with pytest.raises(PairError, match='uses index 2 but its palette has only 2 colours'):
        conversion.normalise_mask(palette_mask([[0, 1], [2, 2]], [(0, 0, 0), (255, 255, 255)]), (2, 2))


def test_converter_writes_an_inverted_palette_mask_right_side_up(tmp_path, capsys):
    """The issue's mask: 6 % of the pixels are index 0, shown white; the rest index 1, shown black."""
    indices = np.ones((8, 10), np.uint8)
    indices.flat[:5] = 0
    raw = tiktok_raw(tmp_path, [palette_mask(indices, [(255, 255, 255), (0, 0, 0)])] * 2)
    out = tmp_path / 'out'
    assert load_tool('dataset_converters/tiktok').main([str(raw), str(out), '--num-test', '1', '--workers', '1']) == 0
    np.testing.assert_array_equal(read_mask(out / 'ann_dir' / 'test' / '0001.png'), (indices == 0).astype(np.uint8))
    assert 'mask palette: grey level of each used colour taken as the value: 2' in capsys.readouterr().out


# ------------------------------------------------------------------------------------- 6: 16-bit masks
@pytest.mark.parametrize('high', [65535, 255, 1])
def test_sixteen_bit_masks_normalise_as_eight_bit(tmp_path, high):
    mask16 = Image.fromarray(half_mask(10, 8, 1).astype(np.uint16) * high)
    assert mask16.mode == 'I;16'
    raw = tiktok_raw(tmp_path, [mask16] * 3)
    with Image.open(raw / 'masks' / '0000.png') as reopened:
        assert reopened.mode == 'I;16'
    out = tmp_path / 'out'
    assert load_tool('dataset_converters/tiktok').main([str(raw), str(out), '--num-test', '1', '--workers', '1']) == 0
    for split, name in (('train', '0000'), ('train', '0001'), ('test', '0002')):
        np.testing.assert_array_equal(read_mask(out / 'ann_dir' / split / f'{name}.png'), half_mask(10, 8, 1))
    report = json.loads((out / MANIFEST_NAME).read_text())['report']
    assert report['skipped'] == []
    rule = 'mask 16-bit -> 8-bit (/257)' if high > 255 else 'mask 16-bit with values <= 255 -> 8-bit unchanged'
    assert report['normalised'][rule] == ['0000: I;16', '0001: I;16', '0002: I;16']


def test_sixteen_bit_grey_levels_are_thresholded():
    values = np.array([[0, 32767], [32896, 65535]], np.uint16)  # /257, rounded: 0, 127, 128, 255
    mask, notes = conversion.normalise_mask(Image.fromarray(values), (2, 2))
    assert mask.tolist() == [[0, 0], [1, 1]]
    assert notes == [('mask 16-bit -> 8-bit (/257)', 'I;16'),
                     ('mask grey levels thresholded at >127', '4 distinct values')]


# ------------------------------------------------------------------------------------- 2: --overwrite
def test_overwrite_never_replaces_a_folder_that_is_not_ours(humanseg_raw, tmp_path, capsys):
    tool = load_tool('dataset_converters/humanseg')
    foreign = tmp_path / 'foreign'
    foreign.mkdir()
    (foreign / 'precious.txt').write_text('keep me')
    assert tool.main([str(humanseg_raw), str(foreign), '--num-test', '3', '--overwrite']) == 2
    out, err = capsys.readouterr()
    assert out == '' and err.count('\n') == 1 and err.startswith('error: ')
    assert 'holds no amsam_prepared.json' in err and 'only an empty folder or a dataset prepared by this' in err
    assert '--overwrite' not in err
    assert sorted(p.name for p in foreign.iterdir()) == ['precious.txt']
    assert (foreign / 'precious.txt').read_text() == 'keep me'

    a_file = tmp_path / 'notes.txt'
    a_file.write_text('mine')
    assert tool.main([str(humanseg_raw), str(a_file), '--num-test', '3', '--overwrite']) == 2
    assert 'exists and is not a folder' in capsys.readouterr().err and a_file.read_text() == 'mine'

    raw = conversion.collect_tail_split(humanseg_raw, 'Training_Images', 'Ground_Truth', 'HumanSeg', num_test=3)
    with pytest.raises(OutputExistsError, match='not a dataset prepared by this package'):
        conversion.convert_dataset(raw, humanseg_raw, foreign, source='humanseg', img_suffix='.jpg', overwrite=True,
                                   log=lambda s: None)
    with pytest.raises(OutputExistsError, match='not a dataset prepared by this package'):
        generate_demo_dataset(foreign, overwrite=True)
    assert sorted(p.name for p in foreign.iterdir()) == ['precious.txt']
    assert leftovers(tmp_path) == []


def test_atomic_writer_refuses_a_foreign_folder_that_appears_meanwhile(tmp_path):
    out = tmp_path / 'out'
    with pytest.raises(OutputExistsError, match='appeared meanwhile'):
        with atomic_output_dir(out) as tmp:
            (tmp / 'x.txt').write_text('ours')
            out.mkdir()
            (out / 'theirs.txt').write_text('theirs')
    assert [p.name for p in out.iterdir()] == ['theirs.txt'] and leftovers(tmp_path) == []


# ------------------------------------------------------------------------------------- 3: SIGTERM, stale partials
def test_sigterm_inside_the_writer_removes_the_partial_and_restores_the_handler(humanseg_raw, tmp_path,
                                                                                monkeypatch):
    calls = []

    def terminated_midway(pair, out_root, img_suffix):
        calls.append(pair.name)
        if len(calls) == 3:
            assert leftovers(tmp_path) != []  # the partial folder exists at this point
            signal.raise_signal(signal.SIGTERM)
        return real(pair, out_root, img_suffix)

    def previous(signum, frame):
        raise RuntimeError('the previous SIGTERM handler ran')

    real = conversion.convert_pair
    monkeypatch.setattr(dataset_conversion, 'convert_pair', terminated_midway)
    raw = conversion.collect_tail_split(humanseg_raw, 'Training_Images', 'Ground_Truth', 'HumanSeg', num_test=3)
    outer = signal.signal(signal.SIGTERM, previous)
    try:
        with pytest.raises(Terminated) as info:
            conversion.convert_dataset(raw, humanseg_raw, tmp_path / 'out', source='humanseg', img_suffix='.jpg',
                                       log=lambda s: None)
        assert signal.getsignal(signal.SIGTERM) is previous
    finally:
        signal.signal(signal.SIGTERM, outer)
    assert info.value.code == 143 and len(calls) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ['raw']


SLOW_CONVERTER = """
import sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
from mmseg_amsam.datasets.conversion import dataset_conversion
real = dataset_conversion.convert_pair
release = Path({release!r})

def slow(pair, out_root, img_suffix):
    print('converting', pair.name, flush=True)
    deadline = time.time() + 60
    while not release.exists() and time.time() < deadline:
        time.sleep(0.05)
    return real(pair, out_root, img_suffix)

dataset_conversion.convert_pair = slow
sys.path.insert(0, {tools!r})
import humanseg
sys.exit(humanseg.main())
"""


def wait_for_line(proc: subprocess.Popen, prefix: str, timeout: float = 180) -> str:
    """The first line of ``proc``'s stdout starting with ``prefix``. Read by a thread: a select() on the pipe
    would miss lines that one write delivered together and that wait in the reader's buffer."""
    found: queue.Queue = queue.Queue()

    def read() -> None:
        for line in proc.stdout:
            if line.startswith(prefix):
                found.put(line)
                return
        found.put(None)

    threading.Thread(target=read, daemon=True).start()
    try:
        line = found.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(f'no line starting with {prefix!r} within {timeout} s') from None
    assert line is not None, f'the converter ended early: {proc.wait()}, {proc.stderr.read()}'
    return line


@pytest.mark.parametrize('workers', [1, 2])
def test_sigterm_during_a_conversion_leaves_no_partial_folder(humanseg_raw, tmp_path, workers):
    script, release, out = tmp_path / 'slow_converter.py', tmp_path / 'release', tmp_path / 'out'
    script.write_text(SLOW_CONVERTER.format(root=ROOT, release=str(release),
                                            tools=str(Path(ROOT) / 'tools' / 'dataset_converters')))
    proc = subprocess.Popen([sys.executable, str(script), str(humanseg_raw), str(out), '--num-test', '3',
                             '--workers', str(workers)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_line(proc, 'converting')
        assert len(leftovers(tmp_path)) == 1  # mid-conversion: the partial folder is there
        proc.send_signal(signal.SIGTERM)
        time.sleep(1)
        release.touch()  # with workers, the running pairs finish before the partial folder is deleted
        assert proc.wait(timeout=120) == 143
    finally:
        proc.kill()
    err = proc.stderr.read()
    assert err == f'error: interrupted by SIGTERM; no half-written output is left beside {out}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['raw', 'release', 'slow_converter.py']


def test_next_run_removes_stale_partials_of_its_target(humanseg_raw, tmp_path, capsys):
    tool = load_tool('dataset_converters/humanseg')
    args = [str(humanseg_raw), str(tmp_path / 'out'), '--num-test', '3', '--workers', '1']
    stale = tmp_path / '.out.partial-xyz'
    (stale / 'img_dir' / 'train').mkdir(parents=True)
    (stale / 'img_dir' / 'train' / '1.jpg').write_bytes(b'half')
    other = tmp_path / '.other.partial-abc'  # another target's: not ours to judge
    live = tmp_path / '.out.partial-live'  # held by a running writer
    for partial in (stale, other, live):
        partial.mkdir(exist_ok=True)
        (partial / PARTIAL_MARKER).write_text('partial output\n')  # what atomic_output_dir writes first
    fd = os.open(live, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        assert tool.main(args) == 0
        assert '[humanseg] removed .out.partial-xyz, left by an interrupted run' in capsys.readouterr().out
        assert leftovers(tmp_path) == ['.other.partial-abc', '.out.partial-live']
    finally:
        os.close(fd)
    stale.mkdir()  # a run that finds nothing to do cleans up too
    (stale / PARTIAL_MARKER).write_text('partial output\n')
    assert tool.main(args) == 0
    out = capsys.readouterr().out
    assert 'removed .out.partial-live' in out and 'removed .out.partial-xyz' in out and 'nothing to do' in out
    assert leftovers(tmp_path) == ['.other.partial-abc']


# ------------------------------------------------------------------------------------- 8: one message, exit code 2
def test_known_errors_print_one_message_and_the_traceback_only_with_debug(humanseg_raw, tmp_path, capsys):
    tool = load_tool('dataset_converters/humanseg')
    out = tmp_path / 'out'
    assert tool.main([str(tmp_path / 'nope'), str(out)]) == 2
    assert capsys.readouterr() == ('', f'error: RAW_DIR {tmp_path / "nope"} does not exist or is not a folder\n')
    with pytest.raises(FileNotFoundError, match='does not exist or is not a folder'):
        tool.main([str(tmp_path / 'nope'), str(out), '--debug'])

    # no valid pair at all: one message with the reasons, nothing written
    for mask in (humanseg_raw / 'Ground_Truth').iterdir():
        mask.write_bytes(b'not a png')
    assert tool.main([str(humanseg_raw), str(out), '--num-test', '3', '--workers', '1']) == 2
    stdout, err = capsys.readouterr()
    assert err.startswith(f'error: no valid image/mask pair in {humanseg_raw}; nothing written. Skipped: 11 '
                          '(unreadable mask 10, no mask 1): train/1: unreadable mask 1.png')
    assert err.count('\n') == 1 and 'Traceback' not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ['raw']


# ------------------------------------------------------------------------------------- 10: --strict, skip reasons
def test_skipped_pairs_are_counted_by_reason_and_strict_fails(humanseg_raw, tmp_path, capsys):
    tool = load_tool('dataset_converters/humanseg')
    out = tmp_path / 'out'
    args = [str(humanseg_raw), str(out), '--num-test', '3', '--workers', '1']
    reasons = {'no mask': 1, 'unreadable image': 1, 'colour mask': 1, 'aspect ratio mismatch': 1}
    line = 'skipped: 4 (no mask 1, unreadable image 1, colour mask 1, aspect ratio mismatch 1)'
    assert tool.main(args + ['--strict']) == 1
    stdout, err = capsys.readouterr()
    assert f'  {line}\n' in stdout and 'written: 7 (train 4, test 3)' in stdout  # the summary is kept
    assert err == ('error: --strict: 4 (no mask 1, unreadable image 1, colour mask 1, aspect ratio mismatch 1) '
                   'pair(s) skipped; exit code 1\n')
    report = json.loads((out / MANIFEST_NAME).read_text())['report']
    assert report['skipped_reasons'] == reasons and report['written'] == {'train': 4, 'test': 3}

    assert tool.main(args) == 0  # nothing to do; without --strict skipped pairs are fine
    assert f'skipped when it was built: {line[len("skipped: "):]}' in capsys.readouterr().out
    assert tool.main(args + ['--strict']) == 1  # --strict sees the skipped pairs of the existing dataset too
    capsys.readouterr()

    clean = tiktok_raw(tmp_path / 'clean', [Image.fromarray(half_mask(10, 8))] * 2)
    tiktok = load_tool('dataset_converters/tiktok')
    assert tiktok.main([str(clean), str(tmp_path / 'clean_out'), '--num-test', '1', '--strict']) == 0
    assert '  skipped: 0\n' in capsys.readouterr().out
