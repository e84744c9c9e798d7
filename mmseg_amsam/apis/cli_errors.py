"""Known user errors of the command-line tools: one message on stderr, exit code 2, the traceback only with --debug.

``tools/train.py``, ``test.py``, ``infer.py`` and ``download_checkpoints.py`` end with ``sys.exit(run_cli(main))``.
What counts as a user error (the one place this is decided, :func:`is_user_error`):

* our own error classes: ``CheckpointError`` (SAM weights missing / wrong architecture; its subclass
  ``DetectorWeightsError``: YOLO weights damaged or refused because loading them would run code),
  ``UnreadableFilesError`` (image / mask files of a split that cannot be decoded), ``FrozenWeightsError``
  and ``CheckpointFileError`` (a trained checkpoint that does not fit, is damaged or unsafe), ``MissingPromptError``,
  ``ChecksumError``, ``ImageLoadError``, ``RunError``, :class:`~.prerequisites.PrerequisitesError`;
* a missing or inaccessible path (``FileNotFoundError``, ``NotADirectoryError``, ``IsADirectoryError``,
  ``PermissionError``): their messages name the file;
* ``ValueError`` / ``FileExistsError`` raised by our own code (config and data checks that name the field);
* config errors from mmengine: a syntax error in the config file, an unknown ``type`` (registry ``KeyError``), a
  ``--cfg-options`` value its ``DictAction`` cannot parse (``dict(...)``: it recurses until a ``RecursionError``).

Anything else is a bug and keeps its traceback. :func:`held_console` keeps the Runner's start-up log (environment,
full config: ~330 lines) off the console until the run is ready, so a refusal is the last and only thing printed.
"""
import os.path as osp
import re
import sys
from contextlib import contextmanager
from typing import Callable, Iterator, List, Optional, Sequence

from ..datasets.conversion.errors import ConversionError
from ..engine.checkpoint_loading import CheckpointFileError
from ..engine.trainable_checkpoint import FrozenWeightsError
from ..models.prompters.prompt_checks import MissingPromptError
from ..utils.file_checks import UnreadableFilesError
from ..utils.sam_checkpoint import CheckpointError
from .checkpoint_files import ChecksumError
from .inferencer import ImageLoadError
from .prerequisites import PrerequisitesError
from .run_logs import RunError

USER_ERRORS = (ConversionError, CheckpointError, FrozenWeightsError, CheckpointFileError, MissingPromptError,
               ChecksumError, ImageLoadError, RunError, PrerequisitesError, UnreadableFilesError, FileNotFoundError,
               NotADirectoryError, IsADirectoryError, PermissionError)
OUR_CHECKS = (ValueError, FileExistsError)  # user errors when our code raised them
OUR_CODE = (osp.dirname(osp.dirname(osp.abspath(__file__))) + osp.sep,  # mmseg_amsam/
            osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'tools') + osp.sep)
# mmengine's build_from_cfg re-raises as type(e)(f'class `X` in path/x.py: {e}'), once per nesting level
BUILD_PREFIX = re.compile(r'^(class `[\w.]+` in [\w/\\.\-]+\.py: )+')


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _raised_in_our_code(exc: BaseException) -> bool:
    tb = exc.__traceback__
    last = None
    while tb is not None:
        last, tb = tb, tb.tb_next
    return last is not None and osp.abspath(last.tb_frame.f_code.co_filename).startswith(OUR_CODE)


CFG_OPTIONS_HINT = ("could not parse a --cfg-options value: mmengine's DictAction reads key=value, lists [a,b] and "
                    'tuples (a,b), not dict(...) or {...}. Set nested keys one by one (e.g. '
                    'model.prompter.fallback=none model.prompter.conf=0.1), or put the change in a small config file '
                    'that inherits this one '
                    "(_base_ = ['./this_config.py']).")


def _cfg_options_parse_error(exc: BaseException) -> bool:
    """mmengine's ``DictAction`` recurses until a ``RecursionError`` on a value like ``dict(a=1, b=2)``, and keeps
    ``dict(a=1)`` as a string that the registry then refuses to build."""
    if isinstance(exc, TypeError):
        return "cfg should be a dict, ConfigDict or Config, but got <class 'str'>" in str(exc)
    if not isinstance(exc, RecursionError):
        return False
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_name == '_parse_iterable':
            return True
        tb = tb.tb_next
    return False


def is_user_error(exc: BaseException) -> bool:
    """True for the errors a user causes and can fix from the message alone (module doc)."""
    if isinstance(exc, USER_ERRORS) or _cfg_options_parse_error(exc):
        return True
    text = str(exc.args[0]) if exc.args else ''
    if isinstance(exc, SyntaxError) and 'config file' in text:  # mmengine.Config.fromfile
        return True
    if isinstance(exc, KeyError) and 'registry' in text and 'is not in the' in text:  # unknown `type` in a config
        return True
    if isinstance(exc, OUR_CHECKS):
        # mmengine re-raises errors of __init__ as a new exception: the original is in the chain
        return any(type(e) is type(exc) and _raised_in_our_code(e) for e in _chain(exc))
    return False


def user_message(exc: BaseException) -> str:
    """The exception's message without mmengine's ``class `X` in path.py:`` build prefixes."""
    if _cfg_options_parse_error(exc):
        return CFG_OPTIONS_HINT
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    if isinstance(exc, OSError) and exc.filename and exc.strerror:  # [Errno 2] No such file or directory: 'x'
        text = f'{exc.strerror}: {exc.filename!r}'
    return BUILD_PREFIX.sub('', text.strip()) or type(exc).__name__


def run_cli(main: Callable[[Optional[List[str]]], Optional[int]], argv: Optional[Sequence[str]] = None) -> int:
    """Call ``main(argv)``; a user error becomes ``error: MESSAGE`` on stderr and exit code 2, unless ``--debug`` is
    among the arguments (then it propagates with its traceback). Returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        code = main(args)
    except Exception as exc:
        if '--debug' in args or not is_user_error(exc):
            raise
        sys.stdout.flush()
        print(f'error: {user_message(exc)}', file=sys.stderr)
        sys.stderr.flush()
        return 2
    return int(code or 0)


class _HeldStream:
    """A stream that keeps what is written until :meth:`release`, then passes everything through."""

    def __init__(self, target):
        self.target, self.parts, self.holding = target, [], True

    def write(self, text: str) -> int:
        if self.holding:
            self.parts.append(text)
        else:
            self.target.write(text)
        return len(text)

    def flush(self) -> None:
        if not self.holding:
            self.target.flush()

    def release(self, keep: bool) -> None:
        self.holding = False
        if keep and self.parts:
            self.target.write(''.join(self.parts))
            self.target.flush()
        self.parts = []

    def __getattr__(self, name):  # encoding, isatty, fileno ...
        return getattr(self.target, name)


@contextmanager
def held_console(enabled: bool = True) -> Iterator[None]:
    """Hold what is printed (stdout and stderr: mmengine's console log, warnings) inside the block; print it when the
    block succeeds or fails with a bug, drop it when it fails with a user error (the log file in the work dir keeps
    it). Loggers created inside keep writing through the released stream afterwards."""
    if not enabled:
        yield
        return
    real_out, real_err = sys.stdout, sys.stderr
    out, err = _HeldStream(real_out), _HeldStream(real_err)
    sys.stdout, sys.stderr = out, err
    ok = False
    try:
        yield
        ok = True
    except Exception as exc:
        ok = not is_user_error(exc)  # a bug keeps its context: the log before the traceback
        raise
    finally:
        if sys.stdout is out:
            sys.stdout = real_out
        if sys.stderr is err:
            sys.stderr = real_err
        err.release(ok)
        out.release(ok)
