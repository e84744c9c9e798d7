"""engine/checkpoint_loading.py: mmengine training checkpoints load under torch >= 2.6 without full unpickling, in
any client once mmseg_amsam is imported (torch's weights-only allow-list gains exactly mmengine's training state);
damaged files and files naming code are refused with a message naming the file, and nothing in them runs."""
import os
import pickle
import subprocess
import sys
import uuid

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint
from torch import nn

from mmseg_amsam.engine.checkpoint_loading import (CheckpointFileError, amsam_checkpoint_loader,
                                                   load_local_checkpoint)
from mmseg_amsam.engine.hooks.safe_checkpoint_hook import SafeCheckpointHook


class ToyModel(BaseModel):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 1)

    def forward(self, inputs, labels=None, mode='tensor'):
        out = self.lin(inputs).squeeze(-1)
        return dict(loss=((out - labels) ** 2).mean()) if mode == 'loss' else out


class ToyData(torch.utils.data.Dataset):
    metainfo = dict(classes=('background', 'foreground'))

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return dict(inputs=torch.tensor([float(i), 1.0]), labels=torch.tensor(0.5 * i))


def run_and_save(work, checkpoint_hook) -> str:
    runner = Runner(model=ToyModel(), work_dir=str(work), experiment_name=f'toy_{uuid.uuid4().hex[:8]}',
                    train_dataloader=dict(dataset=ToyData(), batch_size=2, collate_fn=dict(type='default_collate'),
                                          sampler=dict(type='DefaultSampler', shuffle=False)),
                    optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.01)),
                    param_scheduler=dict(type='PolyLR', power=0.9, by_epoch=True, end=1),
                    train_cfg=dict(by_epoch=True, max_epochs=1), default_scope='mmengine',
                    default_hooks=dict(logger=dict(type='LoggerHook', interval=1), checkpoint=checkpoint_hook))
    runner.train()
    return str(work / 'epoch_1.pth')


@pytest.fixture(scope='module')
def training_checkpoint(tmp_path_factory):
    """A real mmengine training checkpoint (message hub with HistoryBuffers and numpy values, optimizer and
    scheduler state) from a 2-iteration Runner run, written by our schedules' checkpoint hook."""
    return run_and_save(tmp_path_factory.mktemp('toy_run'), SafeCheckpointHook(interval=1))


@pytest.fixture(scope='module')
def mmengine_checkpoint(tmp_path_factory):
    """The same run written by mmengine's own CheckpointHook: its HistoryBuffers pickle
    ``getattr(HistoryBuffer, 'mean')`` and alike (what checkpoints of earlier versions hold)."""
    return run_and_save(tmp_path_factory.mktemp('toy_run_mmengine'), dict(type='CheckpointHook', interval=1))


class RunsCode:
    """Unpickling this object calls ``func(*args)``."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def plain_torch_load(path: str, import_plugin: bool) -> subprocess.CompletedProcess:
    """``torch.load(path, weights_only=True)`` in a fresh interpreter (what mmengine 0.10.7 does under torch 2.9),
    with or without ``import mmseg_amsam`` first; prints the unsafe globals torch sees and the loaded keys."""
    code = ('import sys, torch\n'
            + ('import mmseg_amsam\n' if import_plugin else '')
            + 'print(sorted(torch.serialization.get_unsafe_globals_in_checkpoint(sys.argv[1])))\n'
            'print(sorted(torch.load(sys.argv[1], weights_only=True)))\n')
    return subprocess.run([sys.executable, '-c', code, path], capture_output=True, text=True, timeout=120,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_any_client_reads_a_training_checkpoint_once_the_plugin_is_imported(training_checkpoint):
    """mmseg's init_model / MMSegInferencer / tools read with mmengine's loader, i.e. torch's weights-only
    torch.load: without the plugin it refuses mmengine's own message hub, with `import mmseg_amsam` it reads it."""
    bare = plain_torch_load(training_checkpoint, import_plugin=False)
    assert 'mmengine.logging.history_buffer.HistoryBuffer' in bare.stdout.splitlines()[0]
    assert bare.returncode != 0 and 'Weights only load failed' in bare.stderr
    plugin = plain_torch_load(training_checkpoint, import_plugin=True)
    assert plugin.returncode == 0, plugin.stderr[-2000:]
    assert plugin.stdout.splitlines() == ['[]', "['message_hub', 'meta', 'optimizer', 'param_schedulers', "
                                          "'state_dict']"]


def test_mmengine_training_checkpoint_loads_as_saved(training_checkpoint):
    plain = torch.load(training_checkpoint, weights_only=True)  # this process imported mmseg_amsam (conftest)
    assert isinstance(plain['message_hub']['log_scalars']['train/loss'], HistoryBuffer)
    ours = load_local_checkpoint(training_checkpoint)
    trusted = torch.load(training_checkpoint, weights_only=False)  # the reference: we wrote this file ourselves
    assert sorted(ours) == sorted(trusted) == ['message_hub', 'meta', 'optimizer', 'param_schedulers', 'state_dict']
    for key, value in trusted['state_dict'].items():
        assert torch.equal(ours['state_dict'][key], value)
    assert ours['optimizer']['param_groups'] == trusted['optimizer']['param_groups']
    assert ours['param_schedulers'] == trusted['param_schedulers']
    assert ours['meta']['epoch'] == 1 and ours['meta']['iter'] == 2
    loss, ref = ours['message_hub']['log_scalars']['train/loss'], trusted['message_hub']['log_scalars']['train/loss']
    assert isinstance(loss, HistoryBuffer)
    np.testing.assert_array_equal(loss.data[0], ref.data[0])
    assert loss.mean() == ref.mean() and loss.current() == ref.current() and loss.max() == ref.max()
    # through mmengine's own reader, as --resume / tools/test.py read it
    with amsam_checkpoint_loader():
        via_mmengine = _load_checkpoint(training_checkpoint, map_location='cpu')
    assert torch.equal(via_mmengine['state_dict']['lin.weight'], trusted['state_dict']['lin.weight'])


def test_random_bytes_and_empty_files_are_refused_naming_the_file(tmp_path):
    for name, data in (('random.pth', np.random.default_rng(0).bytes(4096)), ('empty.pth', b'')):
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(CheckpointFileError) as err:
            load_local_checkpoint(str(path))
        assert str(err.value).startswith(f'{path}: cannot be read as a checkpoint')
        assert 'damaged' in str(err.value) and 'weights_only=False' not in str(err.value)


def test_truncated_training_checkpoint_is_refused(training_checkpoint, tmp_path):
    data = open(training_checkpoint, 'rb').read()
    path = tmp_path / 'truncated.pth'
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointFileError, match='truncated.pth: cannot be read as a checkpoint.*damaged'):
        load_local_checkpoint(str(path))


@pytest.mark.parametrize('func', [os.system, exec], ids=['os.system', 'builtins.exec'])
def test_a_pickle_naming_code_is_refused_without_running_it(func, tmp_path):
    marker = tmp_path / 'ran'
    code = f'touch {marker}' if func is os.system else f'open({str(marker)!r}, "w").close()'
    path = tmp_path / 'evil.pth'
    torch.save(dict(state_dict=dict(w=torch.ones(2)), meta=RunsCode(func, code)), path)
    with pytest.raises(CheckpointFileError) as err:
        load_local_checkpoint(str(path))
    name = 'builtins.exec' if func is exec else f'{os.system.__module__}.system'
    assert str(err.value).startswith(f'{path}: refused: besides weights and mmengine training state, its pickle '
                                     f'names {name}')
    with pytest.raises(pickle.UnpicklingError, match='Weights only load failed'):  # any client: torch refuses it
        torch.load(str(path), weights_only=True)
    assert not marker.exists()


def test_getattr_reaches_only_history_buffer_methods(tmp_path):
    """The one callable the training state needs beyond classes: getattr(HistoryBuffer, 'mean') and alike."""
    good = tmp_path / 'good.pth'
    torch.save(dict(stats=RunsCode(getattr, HistoryBuffer, 'mean')), good)
    assert load_local_checkpoint(str(good))['stats'] is HistoryBuffer.mean
    bad = tmp_path / 'bad.pth'
    torch.save(dict(stats=RunsCode(getattr, HistoryBuffer, '__init__')), bad)
    with pytest.raises(CheckpointFileError, match="bad.pth: cannot be read.*getattr.*'__init__'"):
        load_local_checkpoint(str(bad))
    for path in (good, bad):  # elsewhere getattr is not allowed at all (module doc: ultralytics has its own)
        with pytest.raises(pickle.UnpicklingError, match='GLOBAL getattr was not an allowed global'):
            torch.load(str(path), weights_only=True)


def test_getattr_is_not_allowed_process_wide_and_our_checkpoints_do_not_need_it(training_checkpoint,
                                                                                 mmengine_checkpoint):
    """torch keeps one allowed object per name and ultralytics' restricted loader registers its own
    builtins.getattr: a process-wide entry of ours would collide with it. Our hook writes HistoryBuffers without
    their class-level statistics methods; mmengine's own hook's files (older checkpoints) still load through our
    loader, which allows getattr for that read only."""
    names = [g[1] if isinstance(g, tuple) else f'{g.__module__}.{g.__qualname__}'
             for g in torch.serialization.get_safe_globals()]
    assert 'builtins.getattr' not in names and 'mmengine.logging.history_buffer.HistoryBuffer' in names
    from mmseg_amsam.engine.checkpoint_loading import unsafe_globals
    assert unsafe_globals(mmengine_checkpoint) == ['builtins.getattr']
    with pytest.raises(pickle.UnpicklingError, match='GLOBAL getattr was not an allowed global'):
        torch.load(mmengine_checkpoint, weights_only=True)
    for path in (training_checkpoint, mmengine_checkpoint):
        loss = load_local_checkpoint(path)['message_hub']['log_scalars']['train/loss']
        ref = torch.load(path, weights_only=False)['message_hub']['log_scalars']['train/loss']  # we wrote it
        np.testing.assert_array_equal(loss.data[0], ref.data[0])
        assert loss.mean() == ref.mean() and loss.max() == ref.max() and loss.current() == ref.current()
    assert 'builtins.getattr' not in [g[1] if isinstance(g, tuple) else '' for g in
                                      torch.serialization.get_safe_globals()]  # the one read's entry is gone


def test_plain_weights_load_and_the_loader_is_scoped(tmp_path):
    path = tmp_path / 'weights.pth'
    torch.save(dict(state_dict=dict(w=torch.arange(3.0))), path)
    assert torch.equal(load_local_checkpoint(str(path))['state_dict']['w'], torch.arange(3.0))
    before = CheckpointLoader._schemes['']
    with amsam_checkpoint_loader():
        assert CheckpointLoader._schemes[''] is load_local_checkpoint
    assert CheckpointLoader._schemes[''] is before
    with pytest.raises(FileNotFoundError, match='nope.pth can not be found'):
        load_local_checkpoint(str(tmp_path / 'nope.pth'))
