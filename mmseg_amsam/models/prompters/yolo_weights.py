"""Loading ultralytics YOLO weights without running code from the file (weights-only semantics).

ultralytics unpickles ``.pt`` files fully by default (``torch.load(weights_only=False)``: a file can run any code it
names). Its own restricted mode (``torch_safe_load(f, safe_only=True)``, process-wide ``ULTRALYTICS_SAFE_LOAD``) is a
``weights_only=True`` load that reconstructs only ultralytics' and torch's model classes, and builds model yamls
without ``eval``. :func:`restricted_loading` switches that mode on for a block, so every file ultralytics reads inside
it (``YOLO(path)``, the trainer's ``load_checkpoint`` of its starting / resumed / final weights) is read that way; the
official YOLOv8 files, anything ultralytics trained (``runs/*/weights/*.pt``) and the committed toy YOLO load in it.

What stays outside it (ultralytics' own code, left as is): ``strip_optimizer`` at the end of a training run re-reads
the ``last.pt`` / ``best.pt`` the trainer has just written into our own work folder.
"""
import os
import threading
from contextlib import contextmanager
from typing import Iterator

import torch
from mmengine.logging import print_log

from ...utils.error_text import error_summary
from ...utils.sam_checkpoint import CheckpointError

YOLO_HINT = ('Official YOLOv8 weights: https://github.com/ultralytics/assets/releases/download/v8.2.0/yolov8n.pt '
             '(also yolov8s.pt, yolov8m.pt); point `model.prompter.model` at the file '
             '(--cfg-options model.prompter.model=PATH). A model .yaml such as '
             "'yolov8n.yaml' builds a randomly initialised detector (tests, demo).")


class DetectorWeightsError(CheckpointError):
    """A detector weights file is damaged or would run code when loaded (refused, nothing run)."""


_LOADING = threading.RLock()  # ultralytics' switch is one process-wide flag: one setting at a time


@contextmanager
def restricted_loading(safe: bool = True) -> Iterator[None]:
    """ultralytics' weights-only loading (``ULTRALYTICS_SAFE_LOAD``) for every file it reads inside the block
    (``safe=False``: its full unpickling, for ``trust_weights_file`` only). The flag is process-wide: the block holds
    a lock, so a load in another thread never runs under the other setting."""
    from ultralytics.nn import tasks
    with _LOADING:
        previous = tasks.SAFE_LOAD  # read by torch_safe_load (safe_only=None) and parse_model at each call
        tasks.SAFE_LOAD = safe
        try:
            yield
        finally:
            tasks.SAFE_LOAD = previous


def not_weights_reason(path: str):
    """Why ``path`` cannot be a PyTorch weights file (a zip archive or a pickle), or None when it may be one."""
    with open(path, 'rb') as f:
        head = f.read(64)
    if not head:
        return 'it is empty'
    if head.startswith(b'PK') or head[:1] == b'\x80':
        return None
    try:
        text = head.decode('utf-8')
    except UnicodeDecodeError:
        return 'it is neither a zip archive nor a pickle'
    return f'it is a text file (it starts with {text.splitlines()[0][:40]!r})'


def _chain(exc: BaseException):
    while exc is not None:
        yield exc
        exc = exc.__cause__ or exc.__context__


def _detail(exc: BaseException) -> str:
    """The root cause's informative line (``utils.error_text``)."""
    return error_summary(list(_chain(exc))[-1])


def _refusal(path: str, exc: BaseException) -> str:
    """The one message for a file that cannot be loaded without running code, or that is damaged."""
    if any('Weights only load failed' in str(e) for e in _chain(exc)):
        try:
            names = sorted(torch.serialization.get_unsafe_globals_in_checkpoint(path))
        except Exception:  # not a zip archive: torch's static reader cannot list them
            names = []
        shown = ', '.join(names[:6]) + (f' (+{len(names) - 6} more)' if len(names) > 6 else '')
        return (f'YOLO weights {path!r} refused: besides an ultralytics model, the file names '
                f'{shown or "objects outside the ultralytics / torch model classes"}, which loading would have to '
                'run (nothing was run). Use weights saved by ultralytics: an official YOLOv8 file or the '
                'runs/*/weights/best.pt of your own ultralytics training. ' + YOLO_HINT)
    return (f'Cannot read YOLO weights {path!r} ({_detail(exc)}): the file is truncated, corrupt or not an ultralytics '
            'checkpoint; nothing in it was run. Download or copy it again, or use the runs/*/weights/best.pt your '
            'ultralytics training wrote. ' + YOLO_HINT)


def load_yolo(model: str, trust_weights_file: bool = False):
    """An ultralytics ``YOLO`` from a ``.pt`` file (weights-only, :func:`restricted_loading`) or a model ``.yaml``.

    A missing, text, damaged or code-carrying file raises one message naming it (:class:`DetectorWeightsError`,
    ``FileNotFoundError``, ``ValueError``). ``trust_weights_file=True`` loads a ``.pt`` the way ultralytics does by
    default (full unpickling: the file's code runs), for a legacy file the user made and trusts."""
    model = str(model)
    is_yaml = model.endswith(('.yaml', '.yml'))
    if not is_yaml:
        if not os.path.isfile(model):
            raise FileNotFoundError(f'YOLO weights not found: {model!r}. {YOLO_HINT}')
        reason = not_weights_reason(model)
        if reason:
            raise ValueError(f'YOLO weights {model!r} are not a weights file: {reason}. {YOLO_HINT}')
    from ultralytics import YOLO
    trusted = trust_weights_file and not is_yaml
    # a bare name ('yolov8n.pt') that fails to load is, to ultralytics, a corrupt download of its own: it deletes
    # the file and downloads it again. The user's file is not ours to delete: ultralytics gets a path.
    source = model if is_yaml else os.path.abspath(model)
    try:
        if trusted:
            print_log(f'YOLOBoxPrompter: trust_weights_file=True: {model} is unpickled fully (its code runs)',
                      logger='current')
            with restricted_loading(safe=False):
                detector = YOLO(source, task='detect')
        else:
            with restricted_loading():
                detector = YOLO(source, task='detect')
    except Exception as exc:
        if is_yaml:
            raise DetectorWeightsError(f'Cannot build YOLO model {model!r} ({_detail(exc)}). {YOLO_HINT}') from exc
        raise DetectorWeightsError(_refusal(model, exc)) from exc
    if not isinstance(detector.model, torch.nn.Module):
        raise DetectorWeightsError(f'YOLO weights {model!r} hold no detection model '
                                   f'({type(detector.model).__name__}). {YOLO_HINT}')
    return detector
