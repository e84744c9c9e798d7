"""mmengine's CheckpointHook without a moment with no checkpoint on disk, and a ``--resume`` that cannot start afresh.

mmengine 0.10.7 removes the previous best checkpoint (``_save_best_checkpoint``) and the oldest of ``max_keep_ckpts``
(``_save_checkpoint_with_step``) *before* writing the new one, and writes each file in place: a kill in between
leaves no checkpoint, or a truncated one. :class:`SafeCheckpointHook` keeps mmengine's rules (which files, when) and
changes the order: a file is written under a temporary name and renamed into place (``os.replace``, atomic on one
file system), and a checkpoint is removed only after its successor is complete. A kill leaves at worst one extra
checkpoint (the newest is named in ``last_checkpoint``; pick best files by modification time) and a stale
``.NAME.partial`` file, removed when the next run starts.

mmengine's ``resume=True`` with no ``last_checkpoint`` in the work dir logs a line and trains from scratch;
:func:`resume_checkpoint` refuses instead (``tools/train.py --resume`` checks before anything is built, the hook
when a training run starts, e.g. under mmseg's own tools/train.py).
"""
import glob
import os
import os.path as osp
from contextlib import contextmanager
from typing import Iterator, List

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend, register_backend
from mmengine.hooks import CheckpointHook
from mmengine.runner import BaseLoop
from mmseg.registry import HOOKS

from ..checkpoint_loading import plain_history_buffers

ATOMIC_BACKEND = 'amsam_atomic_local'
PARTIAL_SUFFIX = '.partial'


def partial_path(filepath: str) -> str:
    """Where a checkpoint is written before it is renamed to ``filepath`` (hidden, next to it)."""
    folder, name = osp.split(str(filepath))
    return osp.join(folder, f'.{name}{PARTIAL_SUFFIX}')


class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend whose ``put`` writes a temporary file and renames it into place."""

    def put(self, obj: bytes, filepath) -> None:
        filepath = str(filepath)
        os.makedirs(osp.dirname(filepath) or '.', exist_ok=True)
        tmp = partial_path(filepath)
        try:
            with open(tmp, 'wb') as f:
                f.write(obj)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, filepath)
        finally:
            if osp.exists(tmp):
                os.remove(tmp)


register_backend(ATOMIC_BACKEND, AtomicLocalBackend, force=True)


def resume_checkpoint(work_dir: str) -> str:
    """The checkpoint ``--resume`` continues from (named in ``work_dir/last_checkpoint``, as mmengine finds it), or
    a ``FileNotFoundError`` saying that there is nothing to resume."""
    pointer = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(pointer):
        raise FileNotFoundError(
            f'--resume: nothing to resume in {work_dir}: it has no last_checkpoint file (no resumable checkpoint '
            f'was written there yet; best_*.pth files hold no optimizer state). Train without --resume to start '
            f'from scratch, or set --work-dir to the run to continue.')
    with open(pointer) as f:
        path = f.read().strip()
    if not path or not osp.isfile(path):  # (empty: a kill while mmengine rewrote it in place)
        kept = sorted(glob.glob(osp.join(glob.escape(work_dir), 'epoch_*.pth')) +
                      glob.glob(osp.join(glob.escape(work_dir), 'iter_*.pth')), key=osp.getmtime, reverse=True)
        newest = f' (the newest here: {kept[0]})' if kept else ''
        raise FileNotFoundError(
            f'--resume: {pointer} names {path!r}, which does not exist. Write the path of an epoch_*.pth / '
            f'iter_*.pth checkpoint of this run into it{newest}, or train without --resume to start from scratch.')
    return path


class _RemovalsAfterSave:
    """A file backend whose ``remove`` / ``rmtree`` wait until :meth:`deferred` ends without an error."""

    def __init__(self, backend):
        self.backend = backend
        self.pending: List[str] = []
        self._depth = 0

    def remove(self, path) -> None:
        if self._depth:
            self.pending.append(str(path))
        else:
            self.backend.remove(path)

    def rmtree(self, path) -> None:
        if self._depth:
            self.pending.append(str(path))
        else:
            self.backend.rmtree(path)

    @contextmanager
    def deferred(self, keep) -> Iterator[None]:
        """Collect removals inside; on success remove them, except the paths ``keep()`` still names; on an error
        keep every file (an extra checkpoint, never none)."""
        self._depth += 1
        try:
            yield
        except BaseException:
            self.pending = []
            raise
        finally:
            self._depth -= 1
        if self._depth:
            return
        kept = set(keep())
        pending, self.pending = self.pending, []
        for path in pending:
            if path in kept:
                continue
            if self.backend.isfile(path):
                self.backend.remove(path)
            elif self.backend.isdir(path):
                self.backend.rmtree(path)

    def __getattr__(self, name):
        return getattr(self.backend, name)


@HOOKS.register_module()
class SafeCheckpointHook(CheckpointHook):
    """``CheckpointHook`` (same arguments) that writes each checkpoint atomically, removes an old one only once the
    new one exists, and refuses a ``resume`` with nothing to resume (module doc)."""

    def before_run(self, runner) -> None:
        super().before_run(runner)
        training = isinstance(getattr(runner, '_train_loop', None), BaseLoop)  # runner.train(), not val / test
        if training and runner._resume and runner._load_from is None:
            resume_checkpoint(runner.work_dir)

    def before_train(self, runner) -> None:
        local = '://' not in str(self.out_dir or runner.work_dir)
        if local and self.backend_args is None and self.file_client_args is None:
            self.backend_args = dict(backend=ATOMIC_BACKEND)
        super().before_train(runner)
        if local and is_main_process():
            for stale in glob.glob(osp.join(glob.escape(self.out_dir), f'.*.pth{PARTIAL_SUFFIX}')):
                os.remove(stale)  # ours: a write that a kill interrupted
        self.file_backend = _RemovalsAfterSave(self.file_backend)

    def _kept(self) -> List[str]:
        return [p for p in (self.last_ckpt, getattr(self, 'best_ckpt_path', None),
                            *getattr(self, 'best_ckpt_path_dict', {}).values()) if p]

    def _save_checkpoint_with_step(self, runner, step, meta):
        with self.file_backend.deferred(self._kept), plain_history_buffers():
            super()._save_checkpoint_with_step(runner, step, meta)

    def _save_best_checkpoint(self, runner, metrics) -> None:
        with self.file_backend.deferred(self._kept), plain_history_buffers():
            super()._save_best_checkpoint(runner, metrics)
