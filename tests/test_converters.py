"""Dataset converters (tools/dataset_converters/*.py) on small raw-layout fixtures with awkward files."""
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cfg_helpers import load_tool
from mmseg_amsam.datasets import MANIFEST_NAME, PairError, binarise
from mmseg_amsam.datasets import conversion
from mmseg_amsam.datasets.conversion import dataset_conversion



def rgb(w: int, h: int, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


def half_mask(w: int, h: int, high: int = 255) -> np.ndarray:
    """Left half foreground (value ``high``), right half background."""
    m = np.zeros((h, w), np.uint8)
    m[:, : w // 2] = high
    return m


def checkerboard(w: int, h: int) -> np.ndarray:
    return (np.indices((h, w)).sum(0) % 2).astype(np.uint8)


def read_mask(path: Path) -> np.ndarray:
    with Image.open(path) as m:
        assert m.mode == 'L'
        return np.asarray(m)


# ------------------------------------------------------------------------------------------ HumanSeg fixture
@pytest.fixture
def humanseg_raw(tmp_path: Path) -> Path:
    return make_humanseg_raw(tmp_path)


def make_humanseg_raw(tmp_path: Path) -> Path:
    """11 numbered samples, one awkward case each; the last 3 (9, 10, 11 in numeric order) are the test set."""
    raw = tmp_path / 'raw'
    imgs, gts = raw / 'Training_Images', raw / 'Ground_Truth'
    imgs.mkdir(parents=True)
    gts.mkdir()
    w, h = 40, 30
    for n in (1, 9, 11):  # plain RGB JPEG + 0/255 mask
        rgb(w, h, n).save(imgs / f'{n}.jpg', quality=90)
        Image.fromarray(half_mask(w, h)).save(gts / f'{n}.png')
    rgb(w, h, 2).convert('L').save(imgs / '2.jpg')  # grayscale image, 0/1 mask
    Image.fromarray(half_mask(w, h, high=1)).save(gts / '2.png')
    rgb(w, h, 3).convert('RGBA').save(imgs / '3.png')  # RGBA PNG image, RGB mask with equal channels
    Image.fromarray(np.repeat(half_mask(w, h)[..., None], 3, axis=2)).save(gts / '3.png')
    rgb(w, h, 4).save(imgs / '4.jpg')  # low-resolution mask (12x9, scale 10/3): checkerboard of 0/255
    Image.fromarray((checkerboard(12, 9) * 255).astype(np.uint8)).save(gts / '4.png')
    rgb(w, h, 5).save(imgs / '5.jpg')  # no mask
    (imgs / '6.jpg').write_bytes(b'\xff\xd8\xff\xe0 this is not really a jpeg')  # corrupt image
    Image.fromarray(half_mask(w, h)).save(gts / '6.png')
    rgb(w, h, 7).save(imgs / '7.jpg')  # colour mask (channels differ)
    colour = np.zeros((h, w, 3), np.uint8)
    colour[:, :10] = (255, 0, 0)
    Image.fromarray(colour).save(gts / '7.png')
    rgb(w, h, 8).save(imgs / '8.jpg')  # mask of another aspect ratio
    Image.fromarray(half_mask(30, 30)).save(gts / '8.png')
    rgb(w, h, 10).save(imgs / '10.jpg')  # anti-aliased mask: grey levels
    grey = half_mask(w, h)
    grey[:, w // 2] = 200
    grey[:, w // 2 + 1] = 60
    Image.fromarray(grey).save(gts / '10.png')
    (imgs / 'notes.txt').write_text('not an image')
    (imgs / '.DS_Store').write_bytes(b'\0')
    return raw


def test_humanseg_converts_normalises_and_reports(humanseg_raw, tmp_path, capsys):
    out = tmp_path / 'out'
    humanseg = load_tool('dataset_converters/humanseg')
    rc = humanseg.main([str(humanseg_raw), str(out), '--num-test', '3', '--workers', '1'])
    printed = capsys.readouterr().out
    assert rc == 0, printed

    names = lambda d: sorted(p.stem for p in d.iterdir())  # noqa: E731
    assert names(out / 'img_dir' / 'train') == ['1', '2', '3', '4']
    assert names(out / 'img_dir' / 'test') == ['10', '11', '9']  # 9, 10, 11 are the last 3 in numeric order
    assert names(out / 'ann_dir' / 'train') == ['1', '2', '3', '4']
    assert all(p.suffix == '.jpg' for p in (out / 'img_dir' / 'train').iterdir())

    # every written pair: RGB JPEG image and an L mask of the same size with values in {0, 1}
    for split in ('train', 'test'):
        for img_path in (out / 'img_dir' / split).iterdir():
            with Image.open(img_path) as im:
                assert (im.format, im.mode, im.size) == ('JPEG', 'RGB', (40, 30))
            mask = read_mask(out / 'ann_dir' / split / f'{img_path.stem}.png')
            assert mask.shape == (30, 40) and set(np.unique(mask)) <= {0, 1}

    expected_half = half_mask(40, 30, high=1)
    for split, n in (('train', '1'), ('train', '2'), ('train', '3'), ('test', '9')):
        np.testing.assert_array_equal(read_mask(out / 'ann_dir' / split / f'{n}.png'), expected_half)
    # anti-aliased column 200 -> 1, 60 -> 0
    grey = read_mask(out / 'ann_dir' / 'test' / '10.png')
    assert grey[:, 20].tolist() == [1] * 30 and grey[:, 21].tolist() == [0] * 30 and grey.sum() == 21 * 30
    # 12x9 checkerboard resized to 40x30 with nearest neighbour: output pixel x takes source floor((x + .5) * 0.3)
    rows = np.floor((np.arange(30) + 0.5) * 9 / 30).astype(int)
    cols = np.floor((np.arange(40) + 0.5) * 12 / 40).astype(int)
    assert cols[:9].tolist() == [0, 0, 0, 1, 1, 1, 1, 2, 2] and rows[:9].tolist() == cols[:9].tolist()
    np.testing.assert_array_equal(read_mask(out / 'ann_dir' / 'train' / '4.png'), checkerboard(12, 9)[rows][:, cols])
    # a valid RGB JPEG is copied byte for byte; the grayscale one became RGB with equal channels
    raw_bytes = (humanseg_raw / 'Training_Images' / '1.jpg').read_bytes()
    assert (out / 'img_dir' / 'train' / '1.jpg').read_bytes() == raw_bytes
    gray = np.asarray(Image.open(out / 'img_dir' / 'train' / '2.jpg'))
    assert np.array_equal(gray[..., 0], gray[..., 1]) and np.array_equal(gray[..., 0], gray[..., 2])

    report = json.loads((out / MANIFEST_NAME).read_text())
    assert report['source'] == 'humanseg'
    assert report['report']['found'] == {'train': 8, 'test': 3}
    assert report['report']['written'] == {'train': 4, 'test': 3}
    skipped = {s.split(':')[0]: s for s in report['report']['skipped']}
    assert set(skipped) == {'train/5', 'train/6', 'train/7', 'train/8'}
    assert 'no mask' in skipped['train/5']
    assert 'unreadable image 6.jpg' in skipped['train/6']
    assert 'colour mask' in skipped['train/7']
    assert 'aspect ratio' in skipped['train/8']
    normalised = report['report']['normalised']
    assert normalised['image converted to RGB'] == ['2: L', '3: RGBA']
    assert normalised['image re-encoded'] == ['3: PNG -> JPEG']
    assert normalised['mask resized to image size (nearest)'] == ['4: 12x9 -> 40x30']
    assert normalised['mask RGB with equal channels -> single channel'] == ['3: RGB']
    assert sorted(normalised['mask 0/255 -> 0/1']) == ['1', '11', '3', '4', '9']
    assert normalised['mask grey levels thresholded at >127'] == ['10: 4 distinct values']
    assert sorted(report['report']['ignored']) == ['Training_Images/.DS_Store (hidden file)',
                                                   'Training_Images/notes.txt (not an image file)']
    # the printed summary carries the same facts
    assert 'written: 7 (train 4, test 3)' in printed
    assert 'skipped: 4' in printed and 'ignored files: 2' in printed
    assert 'mask resized to image size (nearest): 1 [4: 12x9 -> 40x30]' in printed


def test_second_run_is_noop_and_changes_are_refused(humanseg_raw, tmp_path, capsys):
    tool = load_tool('dataset_converters/humanseg')
    out = tmp_path / 'out'
    args = [str(humanseg_raw), str(out), '--num-test', '3', '--workers', '1']
    assert tool.main(args) == 0
    manifest_before = (out / MANIFEST_NAME).read_bytes()
    mtime_before = (out / 'ann_dir' / 'train' / '1.png').stat().st_mtime_ns
    capsys.readouterr()

    assert tool.main(args) == 0
    assert 'nothing to do' in capsys.readouterr().out
    assert (out / 'ann_dir' / 'train' / '1.png').stat().st_mtime_ns == mtime_before

    # same raw data, other settings -> differs -> refused, output untouched
    assert tool.main([str(humanseg_raw), str(out), '--num-test', '4', '--workers', '1']) == 2
    err = capsys.readouterr().err
    assert 'different raw data' in err and '--overwrite' in err
    assert (out / MANIFEST_NAME).read_bytes() == manifest_before

    # raw data changed (new sample) -> refused; with --overwrite it is rebuilt
    rgb(40, 30, 12).save(humanseg_raw / 'Training_Images' / '12.jpg')
    Image.fromarray(half_mask(40, 30)).save(humanseg_raw / 'Ground_Truth' / '12.png')
    assert tool.main(args) == 2
    assert '--overwrite' in capsys.readouterr().err
    assert tool.main(args + ['--overwrite']) == 0
    report = json.loads((out / MANIFEST_NAME).read_text())['report']
    assert report['written'] == {'train': 5, 'test': 3}  # 9 moved to train, test = 10, 11, 12
    assert sorted(p.stem for p in (out / 'img_dir' / 'test').iterdir()) == ['10', '11', '12']
    assert not [p for p in tmp_path.iterdir() if p.name.startswith('.out.')]  # no temp/old folders left

    # a deleted output file makes the dataset incomplete -> not a no-op any more
    (out / 'ann_dir' / 'test' / '12.png').unlink()
    assert tool.main(args) == 2
    assert 'incomplete' in capsys.readouterr().err


def test_refuses_foreign_output_and_wrong_layout(humanseg_raw, tmp_path, capsys):
    tool = load_tool('dataset_converters/humanseg')
    foreign = tmp_path / 'foreign'
    foreign.mkdir()
    (foreign / 'precious.txt').write_text('keep me')
    assert tool.main([str(humanseg_raw), str(foreign), '--num-test', '3']) == 2
    assert 'holds no amsam_prepared.json' in capsys.readouterr().err
    assert sorted(p.name for p in foreign.iterdir()) == ['precious.txt']

    (humanseg_raw / 'Ground_Truth').rename(humanseg_raw / 'masks')
    out = tmp_path / 'out'
    assert tool.main([str(humanseg_raw), str(out)]) == 2
    err = capsys.readouterr().err
    assert 'expected the sub-folder(s) Ground_Truth' in err
    assert not out.exists()

    assert tool.main([str(tmp_path / 'nope'), str(out)]) == 2
    assert 'does not exist' in capsys.readouterr().err

    # the right folders one level down: the error points at them
    (humanseg_raw / 'masks').rename(humanseg_raw / 'Ground_Truth')
    nested_parent = tmp_path / 'download'
    nested_parent.mkdir()
    humanseg_raw.rename(nested_parent / 'Human-Segmentation-Dataset-master')
    assert tool.main([str(nested_parent), str(out)]) == 2
    assert 'Human-Segmentation-Dataset-master, pass that folder as RAW_DIR' in capsys.readouterr().err

    # too few images for the requested test split
    assert tool.main([str(nested_parent / 'Human-Segmentation-Dataset-master'), str(out)]) == 2
    assert 'cannot hold out the last 100 images' in capsys.readouterr().err


def test_output_inside_raw_is_refused(humanseg_raw, capsys):
    humanseg = load_tool('dataset_converters/humanseg')
    assert humanseg.main([str(humanseg_raw), str(humanseg_raw / 'prepared'), '--num-test', '3']) == 2
    assert 'must not be, contain or lie inside RAW_DIR' in capsys.readouterr().err


def test_failure_midway_leaves_nothing(humanseg_raw, tmp_path, monkeypatch):
    calls = []

    def exploding(pair, out_root, img_suffix):
        calls.append(pair.name)
        if len(calls) == 3:
            raise RuntimeError('disk full')
        return real(pair, out_root, img_suffix)

    real = conversion.convert_pair
    monkeypatch.setattr(dataset_conversion, 'convert_pair', exploding)
    raw = conversion.collect_tail_split(humanseg_raw, 'Training_Images', 'Ground_Truth', 'HumanSeg', num_test=3)
    with pytest.raises(RuntimeError, match='disk full'):
        conversion.convert_dataset(raw, humanseg_raw, tmp_path / 'out', source='humanseg', img_suffix='.jpg',
                                   log=lambda s: None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['raw']


def test_exif_orientation(tmp_path):
    """A 90-degree EXIF tag is applied when the mask follows the displayed image, dropped otherwise."""
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    src = tmp_path / 'rotated.jpg'
    rgb(40, 30).save(src, exif=exif)
    with Image.open(src) as im:
        im.load()
        displayed, notes, reencode = conversion.normalise_image(im, (30, 40), '.jpg')
        assert displayed.size == (30, 40) and reencode
        assert notes == [('image EXIF orientation applied to the pixels', '6')]
        stored, notes, _ = conversion.normalise_image(im, (40, 30), '.jpg')
        assert stored.size == (40, 30)
        assert notes[0][0].startswith('image EXIF orientation tag dropped')


def test_binarise_rules():
    mask, notes = binarise(np.array([[0, 1], [1, 0]], np.uint8))
    assert mask.tolist() == [[0, 1], [1, 0]] and notes == []
    mask, notes = binarise(np.array([[0, 255], [255, 255]], np.uint8))
    assert mask.tolist() == [[0, 1], [1, 1]] and notes == [('mask 0/255 -> 0/1', '')]
    mask, _ = binarise(np.array([[0, 127], [128, 255]], np.uint8))
    assert mask.tolist() == [[0, 0], [1, 1]]
    mask, notes = binarise(np.array([[0, 2], [2, 0]], np.uint8))
    assert mask.tolist() == [[0, 1], [1, 0]] and notes == [('mask 0/v -> 0/1 (>0)', '0/2')]
    mask, notes = binarise(np.zeros((2, 2), np.uint8))
    assert mask.sum() == 0 and notes == [('mask empty (no foreground), kept', '')]
    with pytest.raises(PairError, match='multi-class label map'):
        binarise(np.array([[0, 1], [2, 3]], np.uint8))


def test_palette_mask_black_and_white(tmp_path):
    """Index 0 shown black, 1 shown white: the same mask as before, now because the palette shows it."""
    m = Image.frombytes('P', (2, 2), bytes([0, 1, 1, 1]))
    m.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    mask, notes = conversion.normalise_mask(m, (2, 2))
    assert mask.tolist() == [[0, 1], [1, 1]]
    assert notes == [('mask palette: grey level of each used colour taken as the value', '0=(0,0,0) 1=(255,255,255)'),
                     ('mask 0/255 -> 0/1', '')]


# ------------------------------------------------------------------------------------------ TikTok / ISIC
def test_tiktok_layout_and_png_output(tmp_path, capsys):
    raw = tmp_path / 'tiktok'
    (raw / 'images').mkdir(parents=True)
    (raw / 'masks').mkdir()
    for i in range(6):
        rgb(24, 32, i).save(raw / 'images' / f'{i:04d}.png')
        Image.fromarray(np.repeat(half_mask(24, 32)[..., None], 3, axis=2)).save(raw / 'masks' / f'{i:04d}.png')
    out = tmp_path / 'out'
    assert load_tool('dataset_converters/tiktok').main([str(raw), str(out), '--num-test', '2', '--workers', '2']) == 0
    assert sorted(p.name for p in (out / 'img_dir' / 'train').iterdir()) == [f'{i:04d}.png' for i in range(4)]
    assert sorted(p.name for p in (out / 'img_dir' / 'test').iterdir()) == ['0004.png', '0005.png']
    np.testing.assert_array_equal(read_mask(out / 'ann_dir' / 'test' / '0005.png'), half_mask(24, 32, 1))
    # PNG RGB source images are copied unchanged
    assert (out / 'img_dir' / 'test' / '0005.png').read_bytes() == (raw / 'images' / '0005.png').read_bytes()
    assert 'mask RGB with equal channels -> single channel: 6' in capsys.readouterr().out

    assert load_tool('dataset_converters/tiktok').main([str(raw / 'images'), str(tmp_path / 'o2')]) == 2
    assert 'expected the sub-folder(s) images, masks' in capsys.readouterr().err


def _isic_split(raw: Path, inp: str, gt: str, ids, ship_license: bool = True) -> None:
    (raw / inp).mkdir(parents=True)
    (raw / gt).mkdir(parents=True)
    for i in ids:
        rgb(32, 24, i).save(raw / inp / f'ISIC_{i:07d}.jpg')
        Image.fromarray(half_mask(32, 24)).save(raw / gt / f'ISIC_{i:07d}_segmentation.png')
    if ship_license:
        (raw / inp / 'LICENSE.txt').write_text('CC-BY-NC')


def test_isic2018_official_splits(tmp_path, capsys):
    raw = tmp_path / 'isic'
    _isic_split(raw, 'ISIC2018_Task1-2_Training_Input', 'ISIC2018_Task1_Training_GroundTruth', [0, 1, 3])
    _isic_split(raw, 'ISIC2018_Task1-2_Test_Input', 'ISIC2018_Task1_Test_GroundTruth', [10, 11])
    tool = load_tool('dataset_converters/isic2018')
    out = tmp_path / 'out'
    assert tool.main([str(raw), str(out), '--workers', '1']) == 0
    assert sorted(p.name for p in (out / 'ann_dir' / 'train').iterdir()) == \
        ['ISIC_0000000.png', 'ISIC_0000001.png', 'ISIC_0000003.png']
    assert sorted(p.name for p in (out / 'img_dir' / 'test').iterdir()) == ['ISIC_0000010.jpg', 'ISIC_0000011.jpg']
    assert not (out / 'img_dir' / 'val').exists()
    assert 'ignored files: 2' in capsys.readouterr().out

    # optional validation folders: both -> a val split; only one -> clear refusal
    _isic_split(raw, 'ISIC2018_Task1-2_Validation_Input', 'ISIC2018_Task1_Validation_GroundTruth', [20])
    assert tool.main([str(raw), str(tmp_path / 'out_val'), '--workers', '1']) == 0
    assert [p.name for p in (tmp_path / 'out_val' / 'img_dir' / 'val').iterdir()] == ['ISIC_0000020.jpg']
    capsys.readouterr()
    for p in (raw / 'ISIC2018_Task1_Validation_GroundTruth').iterdir():
        p.unlink()
    (raw / 'ISIC2018_Task1_Validation_GroundTruth').rmdir()
    assert tool.main([str(raw), str(tmp_path / 'out3')]) == 2
    assert 'only one of the optional val folders' in capsys.readouterr().err

    missing = tmp_path / 'isic_no_test'
    _isic_split(missing, 'ISIC2018_Task1-2_Training_Input', 'ISIC2018_Task1_Training_GroundTruth', [0])
    assert tool.main([str(missing), str(tmp_path / 'out4')]) == 2
    err = capsys.readouterr().err
    assert 'ISIC2018_Task1-2_Test_Input, ISIC2018_Task1_Test_GroundTruth' in err


def test_natural_key_orders_numbers():
    assert sorted(['10', '9', '100', '1', 'a2', 'a10'], key=conversion.natural_key) == \
        ['1', '9', '10', '100', 'a2', 'a10']
