"""mmengine 0.10.7 calls ``torch.load`` without ``weights_only``; torch >= 2.6 then refuses its own training
checkpoints (the message hub pickles numpy and ``HistoryBuffer`` objects), so ``--resume`` breaks.

We replace mmengine's local-file loader: it loads with ``weights_only=True`` whenever the file allows it (weights,
official checkpoints) and only falls back to full unpickling for mmengine training checkpoints, with a log line.
Only resume/load checkpoints you produced yourself or trust.
"""
import os.path as osp
import pickle

import torch
from mmengine.logging import print_log
from mmengine.runner.checkpoint import CheckpointLoader


@CheckpointLoader.register_scheme(prefixes='', force=True)
def load_from_local(filename, map_location):
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename} can not be found; check the path (or --resume / load_from).')
    try:
        return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if 'Weights only load failed' not in str(exc):
            raise
        print_log(f'{filename}: not a plain state dict (mmengine training checkpoint with runtime state); '
                  'loading it with weights_only=False -- only do this with checkpoints you trust.',
                  logger='current')
        return torch.load(filename, map_location=map_location, weights_only=False)
