"""Convert a whole raw dataset into the prepared layout: atomically, in parallel, with a summary and manifest.

The converters in ``tools/dataset_converters`` only describe *where* their pairs are and which split each
belongs to (a :class:`~.raw_pairs.RawDataset`); validation and normalisation of each pair live in
:mod:`.pair_conversion`, atomic writing and the manifest in :mod:`..prepared_layout`.

Pool workers die with the process that started them (:func:`_die_with_parent`): a converter killed with SIGKILL
leaves no worker writing into its partial folder or holding its lock, so the next run removes that folder.
"""
import ctypes
import ctypes.util
import hashlib
import json
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable, Dict, List, Tuple

from ..prepared_layout import (SEG_MAP_SUFFIX, PathLike, atomic_output_dir, check_may_write, check_not_nested,
                               describe_existing_output, read_manifest, remove_stale_partials, split_dirs,
                               write_manifest)
from .conversion_summary import ConversionSummary, count_reasons
from .errors import ConversionError
from .pair_conversion import PairResult, convert_pair
from .raw_pairs import RawDataset, RawPair

CONVERTER_VERSION = 1
Log = Callable[[str], None]
Files = Dict[str, Dict[str, List[int]]]  # split -> name -> [image bytes, mask bytes]


def raw_fingerprint(raw_dir: Path, raw: RawDataset, source: str) -> str:
    """Hash of the raw file list (relative paths and sizes), the settings and the converter version."""
    entries = []
    for folder in raw.folders:
        for path in sorted(folder.iterdir()):
            if path.is_file():
                entries.append((str(path.relative_to(raw_dir)), path.stat().st_size))
    payload = json.dumps(dict(source=source, version=CONVERTER_VERSION, settings=raw.settings, files=entries),
                         sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


PR_SET_PDEATHSIG = 1  # linux/prctl.h; armed per worker, fired when the thread that forked it (here the
#                       main thread: it submits the jobs and the pool starts its workers then) ends
PARENT_POLL_S = 0.5  # where the kernel cannot signal a parent's death, how often a worker checks for it


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(PARENT_POLL_S)
    os._exit(1)


def _die_with_parent(parent_pid: int) -> None:
    """Pool initializer: end this worker when the converter (``parent_pid``) dies. On Linux (workers forked by
    the converter itself, :func:`_pool_context`) the kernel sends SIGKILL (``prctl(PR_SET_PDEATHSIG)``):
    immediate, even while the worker is inside a C decoder, and it needs nothing from the dying parent, which
    SIGKILL would not allow; a parent gone before the call is caught by ``getppid``. Elsewhere, or where prctl
    fails, a daemon thread polls ``getppid`` every :data:`PARENT_POLL_S` seconds."""
    if sys.platform.startswith('linux'):
        try:  # the already-loaded C library: ctypes.util.find_library would start ldconfig in every worker
            libc = ctypes.CDLL(None, use_errno=True)
        except OSError:
            libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6', use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0:
            if os.getppid() != parent_pid:
                os._exit(1)
            return
    threading.Thread(target=_watch_parent, args=(os.getppid(), ), daemon=True).start()


def _pool_context():
    """Fork on Linux (the default up to Python 3.13, explicit so that the workers' parent is this process); the
    platform's default elsewhere."""
    return multiprocessing.get_context('fork') if sys.platform.startswith('linux') else None


def _convert_job(job: Tuple[RawPair, Path, str]) -> PairResult:
    return convert_pair(*job)


def _split_order(splits) -> List[str]:
    order = ['train', 'val', 'test']
    return sorted(set(splits), key=lambda s: (order.index(s) if s in order else len(order), s))


def _progress(done: int, total: int, log: Log) -> None:
    step = max(total // 10, 1)
    if total >= 200 and (done % step == 0 or done == total):
        log(f'  {done}/{total}')


def _run_jobs(jobs: List[Tuple[RawPair, Path, str]], workers: int, log: Log) -> List[PairResult]:
    """Convert every pair, in ``workers`` processes; on an interruption the queued pairs are dropped and the
    running ones finish before this returns (nothing keeps writing into a folder about to be deleted)."""
    results: List[PairResult] = []
    if workers <= 1:
        for job in jobs:
            results.append(_convert_job(job))
            _progress(len(results), len(jobs), log)
        return results
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=_pool_context(), initializer=_die_with_parent,
                               initargs=(os.getpid(), ))
    try:
        for result in pool.map(_convert_job, jobs, chunksize=8):
            results.append(result)
            _progress(len(results), len(jobs), log)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return results


def _summarise(results: List[PairResult], raw: RawDataset, splits: List[str], source: str, raw_dir: Path,
               out_dir: Path) -> Tuple[ConversionSummary, Files]:
    """The summary of a run and the written files, from the per-pair results."""
    files: Files = {s: {} for s in splits}
    normalised: Dict[str, List[str]] = defaultdict(list)
    skipped: List[str] = []
    reasons: List[str] = []
    for r in results:
        if r.skipped:
            skipped.append(f'{r.split}/{r.name}: {r.skipped}')
            reasons.append(r.reason or r.skipped)
            continue
        files[r.split][r.name] = r.record
        for category, detail in r.notes:
            normalised[category].append(f'{r.name}: {detail}' if detail else r.name)
    found = Counter(p.split for p in raw.pairs)
    summary = ConversionSummary(source, str(raw_dir), str(out_dir), False, {s: found[s] for s in splits},
                                {s: len(files[s]) for s in splits}, dict(normalised), skipped, raw.ignored,
                                count_reasons(reasons))
    return summary, files


def _noop_summary(source: str, raw_dir: Path, out_dir: Path) -> ConversionSummary:
    """The summary of a run that found the dataset already complete (skipped pairs: those of the first run)."""
    manifest = read_manifest(out_dir)
    report = manifest.get('report', {})
    written = {s: len(v) for s, v in manifest['files'].items()}
    return ConversionSummary(source, str(raw_dir), str(out_dir), True, report.get('found', {}), written, {},
                             report.get('skipped', []), [], report.get('skipped_reasons', {}))


def convert_dataset(raw: RawDataset, raw_dir: PathLike, out_dir: PathLike, *, source: str, img_suffix: str,
                    overwrite: bool = False, workers: int = 1, log: Log = print) -> ConversionSummary:
    """Write ``raw`` into the prepared layout at ``out_dir`` (atomically) and return the summary.

    A complete prepared dataset of the same source and raw fingerprint at ``out_dir`` makes this a no-op; another
    prepared dataset is replaced only with ``overwrite``; a non-empty folder that is not a prepared dataset is
    never touched (:class:`OutputExistsError`, whatever ``overwrite``).
    """
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    check_not_nested(raw_dir, out_dir)
    for stale in remove_stale_partials(out_dir):
        log(f'[{source}] removed {stale.name}, left by an interrupted run')
    fingerprint = raw_fingerprint(raw_dir, raw, source)
    if not check_may_write(out_dir, describe_existing_output(out_dir, source, fingerprint), overwrite):
        return _noop_summary(source, raw_dir, out_dir)
    splits = _split_order(p.split for p in raw.pairs)
    with atomic_output_dir(out_dir) as tmp:
        for split in splits:
            for d in split_dirs(tmp, split):
                d.mkdir(parents=True)
        log(f'[{source}] converting {len(raw.pairs)} candidate pairs from {raw_dir} with {workers} worker(s)')
        results = _run_jobs([(pair, tmp, img_suffix) for pair in raw.pairs], workers, log)
        summary, files = _summarise(results, raw, splits, source, raw_dir, out_dir)
        if not any(files.values()):
            raise ConversionError(f'no valid image/mask pair in {raw_dir}; nothing written. Skipped: '
                                  f'{summary.skipped_line()}: ' + '; '.join(summary.skipped[:5]))
        write_manifest(tmp, dict(
            source=source, img_suffix=img_suffix, seg_map_suffix=SEG_MAP_SUFFIX, raw_dir=str(raw_dir.resolve()),
            raw_fingerprint=fingerprint, settings=raw.settings, converter_version=CONVERTER_VERSION,
            report=dict(found=summary.found, written=summary.written, normalised=summary.normalised,
                        skipped=summary.skipped, skipped_reasons=summary.skipped_reasons, ignored=raw.ignored),
            files=files, split_files={}))  # writes no split file: any in splits/ is make_fewshot_split's or not ours
    return summary
