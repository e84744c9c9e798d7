#!/usr/bin/env python
"""Generate the demo dataset (the shapes world's held-out domain: objects in a "scan" style, 0/1 masks).

    python tools/generate_demo_data.py data/demo_shapes [--num-train 4] [--num-test 20] [--size 128] [--seed 0]
    python tools/generate_demo_data.py data/demo_shapes_multiclass --multiclass   # labels 1 ellipse, 2 rectangle

Deterministic for a seed; a second run with the same arguments does nothing.
"""
import argparse
import sys
from pathlib import Path

from mmseg_amsam.datasets import OutputExistsError, generate_demo_dataset


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('root', type=Path, help='output folder, e.g. data/demo_shapes')
    parser.add_argument('--num-train', type=int, default=4, help='k: the few-shot training images')
    parser.add_argument('--num-test', type=int, default=20)
    parser.add_argument('--size', type=int, default=128, help='image side in pixels')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--multiclass', action='store_true',
                        help='the toy multi-class task: 1-3 objects per image, labels 1 ellipse, 2 rectangle')
    parser.add_argument('--overwrite', action='store_true', help='replace ROOT if it holds something else')
    args = parser.parse_args(argv)
    try:
        generate_demo_dataset(args.root, args.num_train, args.num_test, args.size, args.seed,
                              overwrite=args.overwrite, log=print,
                              multiclass=args.multiclass)
    except (OutputExistsError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
