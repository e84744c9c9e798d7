#!/usr/bin/env python
"""Peak memory of the frozen SAM encoder per batch size, with and without micro-batches (``model.backbone.max_batch``).

    python tools/encoder_memory.py --arch vit_b --img-size 1024 --batches 1 8 --max-batch 1
    python tools/encoder_memory.py --arch vit_b --img-size 1024 --batches 1 2 --max-batch none [--device cuda]

Each setting runs in a fresh process (peak RSS is per process): random weights, one ``inference_mode`` pass over a
random batch. Prints peak RSS on CPU (``ru_maxrss``), ``torch.cuda.max_memory_allocated`` on a GPU, and the ratio to
batch 1's. Beware: without micro-batches ViT-B at 1024 px needs ~2.5 GB more per image (batch 8 did not fit 23 GB).
"""
import argparse
import os.path as osp
import subprocess
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

ONE_PASS = '''
import resource, sys, time
import torch
sys.path.insert(0, {root!r})
import mmseg_amsam  # noqa: F401  registers the encoders
from mmseg.registry import MODELS
torch.manual_seed(0)
encoder = MODELS.build(dict(type='SAMImageEncoder', arch={arch!r}, img_size={size}, max_batch={max_batch})).eval()
encoder = encoder.to({device!r})
x = torch.randn({batch}, 3, {size}, {size}, device={device!r})
if {device!r}.startswith('cuda'):
    torch.cuda.reset_peak_memory_stats()
start = time.perf_counter()
with torch.inference_mode():
    encoder(x)
if {device!r}.startswith('cuda'):
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() / 2**30
else:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
print(peak, time.perf_counter() - start)
'''


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--arch', default='vit_b')
    p.add_argument('--img-size', type=int, default=1024)
    p.add_argument('--batches', type=int, nargs='+', default=[1, 8])
    p.add_argument('--max-batch', default='1', help="images per encoder pass, or 'none' (the whole batch)")
    p.add_argument('--device', default='cpu')
    args = p.parse_args(argv)
    max_batch = None if args.max_batch.lower() == 'none' else int(args.max_batch)
    kind = 'max GPU memory allocated' if args.device.startswith('cuda') else 'peak RSS'
    print(f'SAM {args.arch} encoder, {args.img_size} px, max_batch {max_batch}, {args.device}: {kind} per batch')
    first = None
    for batch in args.batches:
        code = ONE_PASS.format(root=ROOT, arch=args.arch, size=args.img_size, max_batch=max_batch,
                               device=args.device, batch=batch)
        out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
        if out.returncode:
            print(f'  batch {batch}: failed (exit {out.returncode}): {out.stderr.strip().splitlines()[-1:]}')
            continue
        peak, seconds = map(float, out.stdout.split()[-2:])
        first = first or peak
        print(f'  batch {batch}: {peak:6.2f} GB ({peak / first:4.2f}x the first row), {batch / seconds:5.2f} images/s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
