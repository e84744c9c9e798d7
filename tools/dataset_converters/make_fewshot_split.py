#!/usr/bin/env python
"""Write few-shot training split files for a prepared dataset.

    python tools/dataset_converters/make_fewshot_split.py data/humanseg --shots 4 8 16 [--seed S]

writes data/humanseg/splits/train_{k}shot.txt (or train_{k}shot_seed{S}.txt), one image name per line, used
by the dataset configs as ``ann_file``. Default: the first k names in natural sort order; with --seed a
random draw (nested across k). A .json beside each file records how it was made.
"""
import argparse
import sys
from pathlib import Path

from mmseg_amsam.datasets.fewshot import make_fewshot_splits


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('data_root', type=Path, help='a prepared dataset (output of a converter)')
    parser.add_argument('--shots', type=int, nargs='+', default=[4, 8, 16], help='k values (default: 4 8 16)')
    parser.add_argument('--seed', type=int, default=None, help='random draw with this seed instead of first k')
    parser.add_argument('--split', default='train', help='which split to draw from (default: train)')
    parser.add_argument('--overwrite', action='store_true', help='replace split files whose selection differs')
    args = parser.parse_args(argv)
    try:
        paths = make_fewshot_splits(args.data_root, args.shots, args.seed, args.split, args.overwrite)
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    for k, path in zip(args.shots, paths):
        names = path.read_text().split()
        print(f'{path}: {k} names ({", ".join(names[:8])}{", ..." if len(names) > 8 else ""})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
