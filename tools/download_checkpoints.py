"""Download (or verify) the official SAM / YOLOv8 weights, checked by size and SHA-256.

    python tools/download_checkpoints.py                      # sam_vit_b + yolov8n (the default configs)
    python tools/download_checkpoints.py sam_vit_h yolov8m --dir checkpoints
    python tools/download_checkpoints.py all                  # also: sam, yolo
    python tools/download_checkpoints.py --verify checkpoints/sam_vit_b_01ec64.pth
    python tools/download_checkpoints.py --list

Exit status: 0 when every file is present and verified; 1 otherwise (the messages say which and why); 2 for a
usage error (an unknown name, a --dir that is a file or cannot be written): one message, the traceback with --debug.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmseg_amsam.apis import checkpoint_files as ck  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('names', nargs='*', help=f'files to get: {", ".join(ck.KNOWN_FILES)}, or a group '
                        f'({", ".join(ck.GROUPS)}); default: {" ".join(ck.DEFAULT_NAMES)}')
    parser.add_argument('--dir', default='checkpoints', help='target folder (default: checkpoints)')
    parser.add_argument('--verify', nargs='+', metavar='PATH', help='only check files already present')
    parser.add_argument('--name', help='with --verify: which known file PATH should be (default: from its name)')
    parser.add_argument('--force', action='store_true', help='download again even if a verified copy exists')
    parser.add_argument('--list', action='store_true', help='list the known files and exit')
    parser.add_argument('--no-progress', action='store_true', help='no progress bars')
    parser.add_argument('--debug', action='store_true', help='show the traceback of known errors')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.list:
        for f in ck.KNOWN_FILES.values():
            size = f'{f.size / 2**20:.1f} MiB' if f.size else 'size ?'
            print(f'{f.name:10s} {f.filename:22s} {size:>11s}  sha256 {f.sha256 or "?"}\n{"":10s} {f.url}')
        return 0
    failed = 0
    if args.verify:
        for path in args.verify:
            result = ck.verify_file(path, args.name, progress=not args.no_progress)
            print(result.message, file=sys.stdout if result.ok else sys.stderr)
            failed += not result.ok
        return 1 if failed else 0
    try:
        files = ck.expand(args.names or ck.DEFAULT_NAMES)
    except KeyError as exc:
        print(f'error: {exc.args[0]}', file=sys.stderr)
        return 2
    if osp.exists(args.dir) and not osp.isdir(args.dir):
        raise NotADirectoryError(f'--dir {args.dir} is a file, not a folder; give the folder to download into')
    for known in files:
        try:
            result = ck.download(known, args.dir, force=args.force, progress=not args.no_progress)
            print(result.message)
        except (PermissionError, FileExistsError, NotADirectoryError):
            raise  # the local disk, not the network: one message naming the path (exit status 2)
        except ck.ChecksumError as exc:
            print(f'error: {exc}', file=sys.stderr)
            failed += 1
        except OSError as exc:  # network / disk: URLError is an OSError
            print(f'error: cannot download {known.url}: {exc}. Download it by hand into {args.dir}/ and check it '
                  f'with --verify {osp.join(args.dir, known.filename)}', file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == '__main__':
    from mmseg_amsam.apis.cli_errors import run_cli  # known user errors: one message, exit code 2 (--debug: traceback)
    sys.exit(run_cli(main))
