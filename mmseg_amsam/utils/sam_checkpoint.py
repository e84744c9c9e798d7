"""Reading official SAM checkpoints (``sam_vit_b_01ec64.pth`` layout) with errors that say what to do."""
import os
from typing import Dict, Optional, Sequence

import torch
from torch import nn

from .error_text import error_summary

SAM_PREFIXES = ('image_encoder.', 'prompt_encoder.', 'mask_decoder.')
DOWNLOAD_HINT = ('Official SAM weights: https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth '
                 '(vit_l: sam_vit_l_0b3195.pth, vit_h: sam_vit_h_4b8939.pth); set the config field '
                 '`sam_checkpoint` to the downloaded file, or leave it None to train from random weights.')


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, unreadable or does not fit the model."""


def read_state_dict(path: str, kind: str = 'SAM', hint: str = DOWNLOAD_HINT,
                    wrappers: Sequence[str] = ('state_dict', 'model'), mmap: bool = False) -> Dict[str, torch.Tensor]:
    """The state dict of a ``kind`` checkpoint file (unwrapped from ``{'state_dict': ...}`` / ``{'model': ...}``,
    in the order of ``wrappers``); a missing, unreadable or empty file is one :class:`CheckpointError` ending with
    ``hint``. ``mmap`` maps a (zip) file instead of reading it whole (large files)."""
    if not os.path.isfile(path):
        raise CheckpointError(f'{kind} checkpoint not found: {path!r}. {hint}')
    try:
        try:
            state = torch.load(path, map_location='cpu', weights_only=True, mmap=mmap)
        except Exception:
            if not mmap:
                raise
            state = torch.load(path, map_location='cpu', weights_only=True)  # not a zip: read it for the real error
    except Exception as exc:  # truncated zip, pickle of arbitrary objects, not a torch file ...
        raise CheckpointError(
            f'Cannot read {kind} checkpoint {path!r} ({error_summary(exc)}). The file is truncated, corrupt, not a '
            f'PyTorch state dict or names objects that loading would have to run (nothing in it was run); '
            f'download it again. {hint}') from exc
    for wrapper in wrappers:
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict) or not state:
        raise CheckpointError(f'{path!r} does not hold a state dict. {hint}')
    return state


def load_sam_state_dict(path: str, prefix: str) -> Dict[str, torch.Tensor]:
    """Return the tensors of one SAM component (``prefix`` e.g. ``'image_encoder.'``) with the prefix stripped.

    Accepts a full SAM checkpoint (keys ``image_encoder.*`` ...), optionally wrapped in ``{'state_dict': ...}`` or
    ``{'model': ...}``. Raises :class:`CheckpointError` naming the file and the fix.
    """
    state = read_state_dict(path)
    if not any(k.startswith(p) for k in state for p in SAM_PREFIXES):
        raise CheckpointError(
            f'{path!r} is not a SAM checkpoint: no key starts with {SAM_PREFIXES}. {DOWNLOAD_HINT}')
    part = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    if not part:
        raise CheckpointError(f'{path!r} has no {prefix}* weights. {DOWNLOAD_HINT}')
    return part


SAM_ARCH_NOTE = ('Check that the config `arch` matches the checkpoint (sam_vit_b_* = vit_b, sam_vit_l_* = vit_l, '
                 'sam_vit_h_* = vit_h).')


def load_state_into(module: nn.Module, state: Dict[str, torch.Tensor], path: str, what: str,
                    ignore: Optional[tuple] = (), arch_note: str = SAM_ARCH_NOTE) -> None:
    """Strictly copy ``state`` into ``module`` (keys under ``ignore`` may be missing); any missing, unexpected or
    mis-shaped key is one clear error, ending with ``arch_note`` (which files go with which ``arch``)."""
    own = module.state_dict()
    missing = [k for k in own if k not in state and not k.startswith(ignore or ())]
    unexpected = [k for k in state if k not in own]
    wrong = [f'{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}'
             for k in state if k in own and state[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        lines = []
        if missing:
            lines.append(f'missing keys: {missing[:8]}{" ..." if len(missing) > 8 else ""}')
        if unexpected:
            lines.append(f'unexpected keys: {unexpected[:8]}{" ..." if len(unexpected) > 8 else ""}')
        if wrong:
            lines.append(f'shape mismatches: {wrong[:8]}{" ..." if len(wrong) > 8 else ""}')
        raise CheckpointError(f'{path!r} does not fit the {what}: ' + '; '.join(lines) + f'. {arch_note}')
    module.load_state_dict(state, strict=not ignore)
