"""Reading checkpoint files safely with torch >= 2.6, in any client of our checkpoints.

mmengine 0.10.7 calls ``torch.load`` without ``weights_only``, so torch >= 2.6 reads with ``weights_only=True``,
and mmengine's own training checkpoints pickle more than tensors (the message hub: ``HistoryBuffer`` objects, numpy
arrays and scalars). Nothing here ever unpickles fully (``weights_only=False`` would run whatever code the file
names). Instead, importing this module (so ``import mmseg_amsam``, which every config's ``custom_imports`` does)
adds exactly those objects, :data:`TRAINING_STATE`, to torch's weights-only allow-list
(``torch.serialization.add_safe_globals``, which runs no code): every client then reads our checkpoints --
``mmseg.apis.init_model``, ``MMSegInferencer``, mmseg's ``tools/*.py``, our tools. The unpickler still checks each
object while it reads; anything else stays refused by torch.

``builtins.getattr`` is *not* allowed process-wide. mmengine pickles each ``HistoryBuffer`` with its class-level
``statistics_methods`` (``getattr(HistoryBuffer, 'mean')`` ...), and torch keeps one allowed object per name:
ultralytics' own restricted loader registers its ``getattr`` under the same name, so a process-wide entry of ours
would make either loader refuse the other's files (which one wins depends on the hash seed), and a crafted file
could remap ``HistoryBuffer``'s class-level statistics. Instead our checkpoint hooks write the buffers without that
entry (:func:`plain_history_buffers`; mmengine's ``__setstate__`` treats it as empty), so new checkpoints need no
``getattr``; older ones load through :func:`load_local_checkpoint`, which allows ``getattr`` for that one read,
resolved to :func:`_history_buffer_method` (only a public ``HistoryBuffer`` method, never torch's ``getattr``).

:func:`load_local_checkpoint` is mmengine's local loader with our messages: a file naming anything else, or one
that cannot be read, is refused with :class:`CheckpointFileError` naming the file, what is wrong and what to do
(torch's own message advises ``weights_only=False``). It replaces mmengine's loader only *inside*
:func:`amsam_checkpoint_loader`, which ``TrainableOnlyCheckpointHook`` enters for a Runner's run (``before_run`` ..
``after_run``), ``tools/test.py`` while it loads the checkpoint and ``trainable_checkpoint.read_checkpoint`` for
one read; elsewhere mmengine's loader (torch's weights-only read) applies, with torch's message on a refusal.
"""
import importlib
import os.path as osp
import pickle
from contextlib import contextmanager
from typing import Iterator, List, Optional

import torch
from mmengine.runner.checkpoint import CheckpointLoader

# what an mmengine training checkpoint pickles besides tensors (numpy 2 spells numpy.core as numpy._core)
TRAINING_STATE = (
    'mmengine.logging.history_buffer.HistoryBuffer',
    'numpy.ndarray', 'numpy.dtype',
    'numpy._core.multiarray._reconstruct', 'numpy.core.multiarray._reconstruct',
    'numpy._core.multiarray.scalar', 'numpy.core.multiarray.scalar',
    'builtins.getattr',  # HistoryBuffer.statistics_methods pickles getattr(HistoryBuffer, 'mean') ...
)


class CheckpointFileError(RuntimeError):
    """A checkpoint file is missing, damaged, or not one that can be loaded safely."""


def _history_buffer_method(owner, name: str):
    """``builtins.getattr`` as the unpickler sees it: only a public method of ``HistoryBuffer`` may be looked up."""
    from mmengine.logging import HistoryBuffer
    if owner is not HistoryBuffer or name.startswith('_') or not callable(vars(HistoryBuffer).get(name)):
        raise pickle.UnpicklingError(f'getattr({owner!r}, {name!r}) is not part of an mmengine training checkpoint')
    return getattr(HistoryBuffer, name)


def _resolve(name: str):
    if name == 'builtins.getattr':
        return _history_buffer_method
    module, attr = name.rsplit('.', 1)
    if module.startswith('numpy.core.'):  # numpy 2: the same objects live in numpy._core (no deprecation warning)
        module = module.replace('numpy.core.', 'numpy._core.', 1)
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):  # e.g. numpy.core under numpy 2 without the alias module
        return None


def training_state_globals() -> list:
    """``(object, 'module.name')`` pairs for ``torch.serialization.add_safe_globals``: :data:`TRAINING_STATE`."""
    pairs = []
    for name in TRAINING_STATE:
        obj = _resolve(name)
        if obj is not None:
            pairs.append((obj, name))
    import numpy.dtypes  # the classes of dtype instances (Float64DType ...): the unpickler checks them on BUILD
    pairs += [getattr(numpy.dtypes, n) for n in dir(numpy.dtypes) if n.endswith('DType')]
    return pairs


def unsafe_globals(filename: str) -> Optional[List[str]]:
    """The globals a ``torch.save`` file names beyond torch's weights-only allow-list, read without running
    anything (``None`` when the file is not a readable ``torch.save`` zip)."""
    try:
        return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(filename))
    except Exception:
        return None


def register_training_state_globals() -> None:
    """Add :data:`TRAINING_STATE` but ``builtins.getattr`` to torch's weights-only allow-list for this process
    (module doc); idempotent."""
    torch.serialization.add_safe_globals(
        [g for g in training_state_globals() if not (isinstance(g, tuple) and g[1] == 'builtins.getattr')])


def _history_buffer_state(buffer):
    """Pickle a ``HistoryBuffer`` as its class and instance state, without ``statistics_methods``."""
    import copyreg
    return copyreg.__newobj__, (type(buffer), ), dict(vars(buffer))


@contextmanager
def plain_history_buffers() -> Iterator[None]:
    """Inside the block ``pickle`` / ``torch.save`` write mmengine's ``HistoryBuffer`` without its class-level
    ``statistics_methods`` (module doc), so the file needs nothing but weights-only globals; restored on exit."""
    import copyreg

    from mmengine.logging import HistoryBuffer
    previous = copyreg.dispatch_table.get(HistoryBuffer)
    copyreg.dispatch_table[HistoryBuffer] = _history_buffer_state
    try:
        yield
    finally:
        if previous is None:
            copyreg.dispatch_table.pop(HistoryBuffer, None)
        else:
            copyreg.dispatch_table[HistoryBuffer] = previous


def load_local_checkpoint(filename: str, map_location=None):
    """mmengine's local-file loader, with a message naming the file for anything torch's weights-only read refuses
    (module doc)."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename} can not be found; check the path (or --resume / load_from).')
    register_training_state_globals()  # already done at import, unless someone cleared torch's allow-list since
    try:
        with torch.serialization.safe_globals([(_history_buffer_method, 'builtins.getattr')]):  # older files
            return torch.load(filename, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated zip, not a torch file, unreadable, names something not allowed ...
        foreign = [n for n in unsafe_globals(filename) or () if n not in TRAINING_STATE]
        raise CheckpointFileError(_foreign(filename, foreign) if foreign else _damaged(filename, exc)) from exc


def _first_line(exc: BaseException) -> str:
    """The informative line of an error (torch's weights-only advice, which suggests weights_only=False, left out)."""
    text = str(exc).strip()
    if 'WeightsUnpickler error:' in text:
        text = text.split('WeightsUnpickler error:', 1)[1].split('Check the documentation of torch.load')[0]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    detail = lines[0] if lines else ('the file ends early' if isinstance(exc, EOFError) else 'no details')
    return f'{type(exc).__name__}: {detail[:200]}'


def _damaged(filename: str, exc: BaseException) -> str:
    return (f'{filename}: cannot be read as a checkpoint ({_first_line(exc)}). It is damaged (truncated or '
            'overwritten) or not a PyTorch/mmengine checkpoint; nothing in it was run. Use the checkpoint file the '
            'training run wrote (work_dirs/NAME/*.pth), or copy/download it again.')


def _foreign(filename: str, names: List[str]) -> str:
    shown = ', '.join(names[:6]) + (f' (+{len(names) - 6} more)' if len(names) > 6 else '')
    return (f'{filename}: refused: besides weights and mmengine training state, its pickle names {shown}, which '
            'loading would have to run (nothing was run). It is not a checkpoint written by tools/train.py, or it '
            'was altered. Use the checkpoint the training run wrote (work_dirs/NAME/*.pth), or train again.')


@contextmanager
def amsam_checkpoint_loader() -> Iterator[None]:
    """Use :func:`load_local_checkpoint` for mmengine's local files inside the block, then restore the previous
    loader (nesting-safe)."""
    previous = CheckpointLoader._schemes.get('')
    CheckpointLoader.register_scheme(prefixes='', loader=load_local_checkpoint, force=True)
    try:
        yield
    finally:
        if previous is not None:
            CheckpointLoader.register_scheme(prefixes='', loader=previous, force=True)
        else:  # there was none: leave none
            CheckpointLoader._schemes.pop('', None)


register_training_state_globals()
