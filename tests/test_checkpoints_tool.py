"""tools/download_checkpoints.py and mmseg_amsam.apis.checkpoint_files, on files the tests create (file:// URLs)."""
import hashlib
import os
import re

import pytest

from cfg_helpers import load_tool
from mmseg_amsam.apis import checkpoint_files as ck

PAYLOAD = bytes(range(256)) * 4096 + b'tail'  # ~1 MB: several download chunks


@pytest.fixture
def registry(tmp_path, monkeypatch):
    """Two known files served from a local folder: one with a reference hash, one without."""
    remote = tmp_path / 'remote'
    remote.mkdir()
    (remote / 'weights_a.pth').write_bytes(PAYLOAD)
    (remote / 'weights_b.pt').write_bytes(b'no reference for me')
    files = {
        'a': ck.KnownFile('a', 'weights_a.pth', (remote / 'weights_a.pth').as_uri(), len(PAYLOAD),
                          hashlib.sha256(PAYLOAD).hexdigest()),
        'b': ck.KnownFile('b', 'weights_b.pt', (remote / 'weights_b.pt').as_uri(), None, None),
    }
    monkeypatch.setattr(ck, 'KNOWN_FILES', files)
    monkeypatch.setattr(ck, 'GROUPS', {'all': ('a', 'b')})
    monkeypatch.setattr(ck, 'DEFAULT_NAMES', ('a', ))
    return files


def test_known_official_files_are_complete():
    assert {'sam_vit_b', 'sam_vit_l', 'sam_vit_h', 'yolov8n', 'yolov8s', 'yolov8m'} <= set(ck.KNOWN_FILES)
    assert ck.KNOWN_FILES['sam_vit_b'].url == 'https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth'
    assert ck.KNOWN_FILES['yolov8n'].url == 'https://github.com/ultralytics/assets/releases/download/v8.2.0/yolov8n.pt'
    for f in ck.KNOWN_FILES.values():
        assert f.url.startswith('https://') and f.url.endswith('/' + f.filename)
        assert f.sha256 is None or re.fullmatch(r'[0-9a-f]{64}', f.sha256)
        assert f.size is None or f.size > 1_000_000
    assert ck.resolve('sam_vit_h_4b8939.pth').name == 'sam_vit_h'
    names = [f.name for f in ck.expand(['sam', 'yolov8n', 'sam_vit_b'])]
    assert names == ['sam_vit_b', 'sam_vit_l', 'sam_vit_h', 'yolov8n']


def test_download_verifies_and_renames_into_place(registry, tmp_path, capsys):
    tool = load_tool('download_checkpoints')
    target = tmp_path / 'checkpoints'
    assert tool.main(['--dir', str(target), '--no-progress']) == 0  # the default set: 'a'
    assert (target / 'weights_a.pth').read_bytes() == PAYLOAD
    assert os.listdir(target) == ['weights_a.pth']  # no temporary file left
    assert 'downloaded' in capsys.readouterr().out
    assert tool.main(['a', '--dir', str(target), '--no-progress']) == 0
    assert 'already present and verified' in capsys.readouterr().out


def test_wrong_download_leaves_nothing_behind(registry, tmp_path, monkeypatch, capsys):
    tool = load_tool('download_checkpoints')
    bad = ck.KnownFile('a', 'weights_a.pth', registry['a'].url, len(PAYLOAD), '0' * 64)
    monkeypatch.setitem(ck.KNOWN_FILES, 'a', bad)
    target = tmp_path / 'checkpoints'
    assert tool.main(['a', '--dir', str(target), '--no-progress']) == 1
    assert 'altered or wrong file' in capsys.readouterr().err
    assert os.listdir(target) == []

    class Interrupted:  # the connection drops after the first chunk
        def __init__(self, *args, **kwargs):
            self.calls = 0

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self, n):
            self.calls += 1
            if self.calls > 1:
                raise ConnectionResetError('connection reset by peer')
            return PAYLOAD[:n]

    with pytest.raises(ConnectionResetError):
        ck.download(registry['a'], str(target), progress=False, opener=Interrupted)
    assert os.listdir(target) == []


def test_verify_accepts_the_right_file_and_rejects_truncated_or_altered(registry, tmp_path, capsys):
    tool = load_tool('download_checkpoints')
    good = tmp_path / 'weights_a.pth'
    good.write_bytes(PAYLOAD)
    assert tool.main(['--verify', str(good), '--no-progress']) == 0
    assert 'OK' in capsys.readouterr().out

    truncated = tmp_path / 'trunc' / 'weights_a.pth'
    truncated.parent.mkdir()
    truncated.write_bytes(PAYLOAD[:1000])
    assert tool.main(['--verify', str(truncated), '--no-progress']) == 1
    err = capsys.readouterr().err
    assert 'truncated' in err and f'expected {len(PAYLOAD)} bytes' in err

    altered = tmp_path / 'renamed.bin'  # same size, one byte changed; named explicitly
    altered.write_bytes(PAYLOAD[:-1] + b'X')
    assert tool.main(['--verify', str(altered), '--name', 'a', '--no-progress']) == 1
    assert 'altered or wrong file' in capsys.readouterr().err

    unknown_hash = tmp_path / 'weights_b.pt'
    unknown_hash.write_bytes(b'anything')
    assert tool.main(['--verify', str(unknown_hash), '--no-progress']) == 0
    out = capsys.readouterr().out
    assert f'no reference hash; computed {hashlib.sha256(b"anything").hexdigest()}' in out

    assert tool.main(['--verify', str(tmp_path / 'missing' / 'weights_a.pth'), '--no-progress']) == 1
    assert 'no such file' in capsys.readouterr().err
    assert tool.main(['nonexistent', '--dir', str(tmp_path)]) == 2
