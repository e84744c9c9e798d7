"""The command line shared by the dataset converter scripts of this folder (isic2018.py, tiktok.py, humanseg.py).

Each script describes where its raw pairs are (a ``collect`` function returning a
:class:`~mmseg_amsam.datasets.conversion.RawDataset`); this module parses ``RAW_DIR OUT_DIR [options]``, runs
:func:`~mmseg_amsam.datasets.conversion.convert_dataset` and prints the summary.

Exit codes: 0 done (or nothing to do); 1 done, but pairs were skipped and ``--strict`` was given; 2 refused (a known
user error, one ``error:`` line; ``--debug`` shows the traceback) or bad arguments; 130 / 143 interrupted by Ctrl-C /
SIGTERM (no half-written output is left).
"""
import argparse
import os
import os.path as osp
import sys
from pathlib import Path
from typing import Callable, Optional, Sequence

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO_ROOT not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, REPO_ROOT)

from mmseg_amsam.apis.cli_errors import run_cli  # noqa: E402
from mmseg_amsam.datasets.conversion import RawDataset, collect_tail_split, convert_dataset  # noqa: E402
from mmseg_amsam.datasets.prepared_layout import Terminated  # noqa: E402

STRICT_EXIT_CODE = 1  # --strict and at least one pair skipped (the dataset is written all the same)
INTERRUPTED_EXIT_CODE = 130  # Ctrl-C, as a shell reports it (SIGTERM: 143, Terminated.code)
EXIT_CODES = ('exit codes:\n  0    done, or nothing to do\n'
              f'  {STRICT_EXIT_CODE}    pairs were skipped and --strict was given\n'
              '  2    refused: one error line (--debug: with the traceback), or bad arguments\n'
              f'  {INTERRUPTED_EXIT_CODE}  interrupted by Ctrl-C; 143: by SIGTERM (no half-written output is left)')


def build_parser(description: str,
                 add_arguments: Optional[Callable[[argparse.ArgumentParser], None]] = None) -> argparse.ArgumentParser:
    """``RAW_DIR OUT_DIR [--overwrite] [--workers N] [--strict] [--debug]`` plus the script's own options."""
    parser = argparse.ArgumentParser(description=description, epilog=EXIT_CODES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('raw_dir', type=Path, help='the raw download (see the expected layout above)')
    parser.add_argument('out_dir', type=Path, help='where to write the prepared dataset (e.g. data/humanseg)')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace OUT_DIR if it is a prepared dataset that differs (its few-shot split files '
                             'are lost too); refused, changing nothing, while OUT_DIR holds any file this package '
                             'did not write (they are listed); a folder not written by this package is never '
                             'replaced')
    parser.add_argument('--workers', type=int, default=min(4, os.cpu_count() or 1),
                        help='processes decoding images in parallel (default: %(default)s)')
    parser.add_argument('--strict', action='store_true',
                        help=f'exit with code {STRICT_EXIT_CODE} when any pair was skipped (the dataset and its '
                             'summary are written all the same)')
    parser.add_argument('--debug', action='store_true', help='show the traceback of known errors')
    if add_arguments:
        add_arguments(parser)
    return parser


def _interrupted(exc: BaseException, out_dir: Path) -> int:
    """One message for Ctrl-C / SIGTERM; the exit code a shell shows for it."""
    what = 'SIGTERM' if isinstance(exc, Terminated) else 'Ctrl-C'
    print(f'error: interrupted by {what}; no half-written output is left beside {out_dir}', file=sys.stderr)
    return exc.code if isinstance(exc, Terminated) else INTERRUPTED_EXIT_CODE


def _convert(args: argparse.Namespace, source: str, img_suffix: str,
             collect: Callable[[Path, argparse.Namespace], RawDataset]) -> int:
    """Collect, convert and print the summary; the exit code (module doc)."""
    try:
        raw = collect(args.raw_dir, args)
        summary = convert_dataset(raw, args.raw_dir, args.out_dir, source=source, img_suffix=img_suffix,
                                  overwrite=args.overwrite, workers=max(1, args.workers))
    except (KeyboardInterrupt, Terminated) as exc:
        if args.debug:
            raise
        return _interrupted(exc, args.out_dir)
    print(summary.format())
    if args.strict and summary.skipped:
        sys.stdout.flush()
        print(f'error: --strict: {summary.skipped_line()} pair(s) skipped; exit code {STRICT_EXIT_CODE}',
              file=sys.stderr)
        return STRICT_EXIT_CODE
    return 0


def converter_main(argv: Optional[Sequence[str]], *, source: str, img_suffix: str, description: str,
                   collect: Callable[[Path, argparse.Namespace], RawDataset],
                   add_arguments: Optional[Callable[[argparse.ArgumentParser], None]] = None) -> int:
    """Shared ``main`` of the converter scripts: parse the arguments (:func:`build_parser`), collect the raw pairs
    with ``collect`` and convert them; returns the process exit code (module doc)."""
    parser = build_parser(description, add_arguments)
    return run_cli(lambda args: _convert(parser.parse_args(args), source, img_suffix, collect), argv)


def tail_split_converter_main(argv: Optional[Sequence[str]], *, dataset_cls, image_folder: str, mask_folder: str,
                              label: str, default_num_test: int, description: str) -> int:
    """``main`` of a converter for two paired folders whose last ``--num-test`` names (natural order) are the
    test split (HumanSeg, TikTok)."""
    return converter_main(
        argv, source=dataset_cls.SOURCE, img_suffix=dataset_cls.IMG_SUFFIX, description=description,
        collect=lambda raw_dir, args: collect_tail_split(raw_dir, image_folder, mask_folder, label, args.num_test),
        add_arguments=lambda p: p.add_argument('--num-test', type=int, default=default_num_test,
                                               help='the last N images (natural name order) form the test split'))
