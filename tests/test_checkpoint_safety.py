"""Issue 19, faults during a run: a checkpoint exists at every moment (SafeCheckpointHook), the schedules keep a
resumable one, and ``--resume`` with nothing to resume is refused (instead of mmengine's silent fresh start)."""
import glob
import os
import os.path as osp
import uuid

import pytest
import torch
from mmengine.config import Config
from mmengine.evaluator import BaseMetric, Evaluator
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn
from torch.utils.data import Dataset

import mmseg_amsam  # noqa: F401  registers SafeCheckpointHook
from cfg_helpers import ROOT, load_tool
from mmseg_amsam.apis.cli_errors import run_cli
from mmseg_amsam.engine.hooks.safe_checkpoint_hook import AtomicLocalBackend, partial_path


class ToyData(Dataset):

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return dict(inputs=torch.tensor([float(i), 1.0]))


class ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.linear(inputs)
        return dict(loss=(out ** 2).mean()) if mode == 'loss' else [out]


class RisingScore(BaseMetric):
    """A validation score that improves every epoch: every validation writes a new best checkpoint."""

    def __init__(self):
        super().__init__()
        self.epochs = 0

    def process(self, data_batch, data_samples):
        self.results.append(0)

    def compute_metrics(self, results):
        self.epochs += 1
        return dict(mDice=float(self.epochs))


def toy_runner(work_dir, epochs=3, resume=False, **checkpoint):
    loader = dict(dataset=ToyData(), sampler=dict(type='DefaultSampler', shuffle=False), batch_size=2,
                  collate_fn=dict(type='default_collate'))
    hook = dict(type='SafeCheckpointHook', by_epoch=True, interval=1, save_best='mDice', rule='greater')
    hook.update(checkpoint)
    return Runner(model=ToyModel(), work_dir=str(work_dir), train_dataloader=loader, val_dataloader=loader,
                  val_evaluator=Evaluator(RisingScore()), val_cfg=dict(),
                  train_cfg=dict(by_epoch=True, max_epochs=epochs, val_interval=1),
                  optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
                  default_hooks=dict(checkpoint=hook), default_scope='mmseg', resume=resume,
                  experiment_name=f'toy_{uuid.uuid4().hex[:8]}')


def failing_save(runner, when):
    """Make ``runner.save_checkpoint`` raise (as a kill would stop it) for the file that ``when(filename)`` picks."""
    save = runner.save_checkpoint

    def wrapped(out_dir, filename, *args, **kwargs):
        if when(filename):
            raise KeyboardInterrupt(f'killed while writing {filename}')
        return save(out_dir, filename, *args, **kwargs)

    runner.save_checkpoint = wrapped


def files(work_dir, pattern='*.pth'):
    return sorted(osp.basename(p) for p in glob.glob(osp.join(str(work_dir), pattern)))


def test_a_kill_while_the_new_best_is_written_keeps_the_previous_best(tmp_path):
    # mmengine's CheckpointHook removes best_mDice_epoch_1.pth before writing best_mDice_epoch_2.pth: nothing left
    runner = toy_runner(tmp_path, save_best='mDice', interval=-1, save_last=False)
    failing_save(runner, lambda name: name == 'best_mDice_epoch_2.pth')
    with pytest.raises(KeyboardInterrupt):
        runner.train()
    assert files(tmp_path) == ['best_mDice_epoch_1.pth']
    assert torch.load(tmp_path / 'best_mDice_epoch_1.pth', weights_only=True)['meta']['epoch'] == 1


def test_a_kill_while_the_next_kept_checkpoint_is_written_keeps_the_previous_one_resumable(tmp_path):
    # max_keep_ckpts=1: mmengine removes epoch_2.pth before writing epoch_3.pth, which the kill stops
    runner = toy_runner(tmp_path, save_best=None, max_keep_ckpts=1)
    failing_save(runner, lambda name: name == 'epoch_3.pth')
    with pytest.raises(KeyboardInterrupt):
        runner.train()
    assert files(tmp_path) == ['epoch_2.pth']
    assert open(tmp_path / 'last_checkpoint').read() == str(tmp_path / 'epoch_2.pth')
    resumed = toy_runner(tmp_path, epochs=3, resume=True, save_best=None, max_keep_ckpts=1)
    resumed.train()
    assert resumed.train_loop.epoch == 3 and files(tmp_path) == ['epoch_3.pth']  # the old one went after the new


def test_without_faults_old_checkpoints_are_removed_once_replaced(tmp_path):
    toy_runner(tmp_path, epochs=3, max_keep_ckpts=1).train()
    assert files(tmp_path) == ['best_mDice_epoch_3.pth', 'epoch_3.pth']
    assert files(tmp_path, '.*') == []  # no temporary file left


def test_a_checkpoint_is_replaced_atomically_and_a_stale_partial_is_removed(tmp_path, monkeypatch):
    target = tmp_path / 'epoch_2.pth'
    target.write_bytes(b'complete old checkpoint')

    def killed(fd):
        raise KeyboardInterrupt('killed before the rename')

    monkeypatch.setattr(os, 'fsync', killed)
    with pytest.raises(KeyboardInterrupt):
        AtomicLocalBackend().put(b'half', str(target))  # e.g. epoch_2.pth saved again after a new best
    assert target.read_bytes() == b'complete old checkpoint'
    monkeypatch.undo()
    stale = partial_path(str(tmp_path / 'epoch_1.pth'))  # what a SIGKILL during a write leaves
    open(stale, 'wb').write(b'half')
    mine, draft = tmp_path / '.notes.txt', tmp_path / '.draft.partial'  # not ours (no checkpoint's name): stay
    mine.write_text('user notes')
    draft.write_text('user draft')
    toy_runner(tmp_path, epochs=1).train()
    assert not osp.exists(stale) and mine.read_text() == 'user notes' and draft.read_text() == 'user draft'


def test_resume_with_nothing_to_resume_is_refused_by_the_runner(tmp_path):
    runner = toy_runner(tmp_path, resume=True)
    with pytest.raises(FileNotFoundError, match='nothing to resume in .* no last_checkpoint file'):
        runner.train()
    assert files(tmp_path) == [] and runner.train_loop.iter == 0  # nothing trained, nothing written
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_5.pth'))
    with pytest.raises(FileNotFoundError, match="last_checkpoint names '.*epoch_5.pth', which does not exist"):
        toy_runner(tmp_path, resume=True).train()
    (tmp_path / 'epoch_2.pth').write_bytes(b'kept')  # a kill while mmengine rewrote last_checkpoint in place
    (tmp_path / 'last_checkpoint').write_text('')
    with pytest.raises(FileNotFoundError, match=r"names '', which does not exist.*\(the newest here: .*epoch_2.pth\)"):
        toy_runner(tmp_path, resume=True).train()


def test_train_py_resume_with_nothing_to_resume_exits_2_naming_the_work_dir(tmp_path, capsys):
    work = tmp_path / 'work'
    code = run_cli(load_tool('train').main, [osp.join(ROOT, 'configs', 'amsam_demo.py'), '--work-dir', str(work),
                                             '--resume'])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines() == [
        f'error: --resume: nothing to resume in {work}: it has no last_checkpoint file (no resumable checkpoint '
        f'was written there yet; best_*.pth files hold no optimizer state). Train without --resume to start from '
        f'scratch, or set --work-dir to the run to continue.']
    assert not work.exists()


@pytest.mark.parametrize('schedule', ['blo_100e', 'single_100e'])
def test_schedules_keep_a_bounded_resumable_checkpoint_with_the_safe_hook(schedule):
    hook = Config.fromfile(osp.join(ROOT, 'configs', '_base_', 'schedules', f'{schedule}.py')).default_hooks.checkpoint
    assert hook.type == 'SafeCheckpointHook' and hook.by_epoch and hook.save_last
    assert 0 < hook.interval <= 10 and hook.max_keep_ckpts == 1
