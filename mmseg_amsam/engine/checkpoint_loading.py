"""Reading checkpoint files safely with torch >= 2.6, scoped to AM-SAM's own runs and loaders.

mmengine 0.10.7 calls ``torch.load`` without ``weights_only``; torch >= 2.6 then refuses mmengine's own training
checkpoints (the message hub pickles numpy arrays/scalars and ``HistoryBuffer`` objects), so ``--resume`` and
``tools/test.py`` break. :func:`load_local_checkpoint` never unpickles fully (``weights_only=False`` would run
whatever code the file names). It loads with ``weights_only=True``; a file that needs more is loaded again with
torch's weights-only unpickler allowing exactly the objects of mmengine's training state (:data:`TRAINING_STATE`,
each checked by that unpickler while it reads; ``builtins.getattr`` only as the lookup of a ``HistoryBuffer``
statistics method). A file naming anything else, or one that cannot be read, is refused with
:class:`CheckpointFileError` naming the file, what is wrong and what to do.

Scope (the one place this is decided): mmengine's local-file loader is replaced only *inside*
:func:`amsam_checkpoint_loader`, which ``TrainableOnlyCheckpointHook`` enters for the duration of a Runner's run
(``before_run`` .. ``after_run``: mmseg's own ``tools/train.py`` / ``tools/test.py`` on our configs, and ours) and
:func:`~mmseg_amsam.engine.trainable_checkpoint.load_trained_checkpoint` for one load (the inferencer). Importing
``mmseg_amsam`` changes nothing for other mmengine users in the process.
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
    """``(object, 'module.name')`` pairs for ``torch.serialization.safe_globals``: :data:`TRAINING_STATE`."""
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


def load_local_checkpoint(filename: str, map_location=None):
    """mmengine's local-file loader, safe under torch >= 2.6 (module doc)."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename} can not be found; check the path (or --resume / load_from).')
    try:
        return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if 'Weights only load failed' not in str(exc):
            raise CheckpointFileError(_damaged(filename, exc)) from exc
        first_error = exc
    except Exception as exc:  # truncated zip, not a torch file, unreadable ...
        raise CheckpointFileError(_damaged(filename, exc)) from exc
    names = unsafe_globals(filename)
    foreign = [n for n in names or () if n not in TRAINING_STATE]
    if names is None or foreign:
        raise CheckpointFileError(_foreign(filename, foreign) if foreign else _damaged(filename, first_error))
    try:
        with torch.serialization.safe_globals(training_state_globals()):
            return torch.load(filename, map_location=map_location, weights_only=True)
    except Exception as exc:  # named something the static read did not see, or damaged further in
        raise CheckpointFileError(_damaged(filename, exc)) from exc


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
            'was altered. Use the checkpoint the training run wrote (work_dirs/NAME/*.pth); a file you made and '
            'trust can be re-saved as a plain state dict: torch.save(torch.load(F, weights_only=False)'
            "['state_dict'], NEW_FILE).")


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
