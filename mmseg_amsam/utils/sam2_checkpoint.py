"""Reading official SAM 2 / 2.1 checkpoints (``sam2.1_hiera_tiny.pt`` layout: ``{'model': state_dict}`` with keys
``image_encoder.*``, ``sam_prompt_encoder.*``, ``sam_mask_decoder.*``, ``no_mem_embed`` ...) with errors that say
what to do. Same error type (:class:`CheckpointError`) as the SAM 1 reader in ``sam_checkpoint``."""
import re
from typing import Dict, Iterable, Optional

import torch
from torch import nn

from .sam_checkpoint import SAM_PREFIXES, CheckpointError, load_state_into, read_state_dict

SAM2_URL = 'https://dl.fbaipublicfiles.com/segment_anything_2/092824/'
# arch -> (official SAM 2.1 file, trunk embed dim, number of Hiera blocks): how a file's arch is recognised
SAM2_FILES = {
    'hiera_t': ('sam2.1_hiera_tiny.pt', 96, 12),
    'hiera_s': ('sam2.1_hiera_small.pt', 96, 16),
    'hiera_b+': ('sam2.1_hiera_base_plus.pt', 112, 24),
    'hiera_l': ('sam2.1_hiera_large.pt', 144, 48),
}
SAM2_PREFIXES = ('sam_prompt_encoder.', 'sam_mask_decoder.')
SAM2_HINT = (f'Official SAM 2.1 weights: {SAM2_URL}sam2.1_hiera_tiny.pt (hiera_s: sam2.1_hiera_small.pt, hiera_b+: '
             'sam2.1_hiera_base_plus.pt, hiera_l: sam2.1_hiera_large.pt; SAM 2.0 files sam2_hiera_*.pt load too); '
             'set the config field `sam_checkpoint` to the downloaded file and `model.backbone.arch` to its arch, '
             'or leave `sam_checkpoint` None to train from random weights.')


def checkpoint_arch(state: Dict[str, torch.Tensor]) -> Optional[str]:
    """The official arch (``hiera_t`` ...) whose trunk the state holds, or None (e.g. our ``tiny``)."""
    pos = state.get('image_encoder.trunk.pos_embed')
    blocks = {m.group(1) for k in state for m in [re.match(r'image_encoder\.trunk\.blocks\.(\d+)\.', k)] if m}
    for arch, (_, dim, depth) in SAM2_FILES.items():
        if pos is not None and pos.shape[1] == dim and len(blocks) == depth:
            return arch
    return None


def load_sam2_state_dict(path: str, prefixes: Iterable[str], arch: Optional[str] = None) -> Dict[str, torch.Tensor]:
    """Tensors of a SAM 2 checkpoint whose keys start with one of ``prefixes`` (kept as they are).

    Raises :class:`CheckpointError` naming the file and the fix: missing / unreadable file, a SAM 1 checkpoint
    (``prompt_encoder.*`` / ``mask_decoder.*``), a file without SAM 2 keys, or (with ``arch``) another Hiera size.
    """
    state = read_state_dict(path, 'SAM 2', SAM2_HINT, wrappers=('model', 'state_dict'), mmap=True)
    if not any(k.startswith(SAM2_PREFIXES) for k in state):
        if any(k.startswith(SAM_PREFIXES[1:]) for k in state):
            raise CheckpointError(
                f'{path!r} is a SAM (1) checkpoint (keys prompt_encoder.* / mask_decoder.*), not a SAM 2 one: the '
                f'SAM 2 parts (SAM2ImageEncoder, SAM2PromptEncoder, CalibratedSAM2MaskDecoder) need a SAM 2 file '
                f'(keys sam_prompt_encoder.* / sam_mask_decoder.*); SAM 1 files go with the configs/amsam_* '
                f'configs. {SAM2_HINT}')
        raise CheckpointError(f'{path!r} is not a SAM 2 checkpoint: no key starts with {SAM2_PREFIXES}. {SAM2_HINT}')
    found = checkpoint_arch(state)
    if arch is not None and found is not None and found != arch:
        raise CheckpointError(
            f'{path!r} holds a SAM 2 {found} image encoder ({SAM2_FILES[found][0]}) but the config asks for arch '
            f'{arch!r}: set `model.backbone.arch={found!r}` or use {SAM2_FILES.get(arch, ("a matching file",))[0]}. '
            f'{SAM2_HINT}')
    prefixes = tuple(prefixes)
    part = {k: v for k, v in state.items() if k.startswith(prefixes)}
    if not part:
        raise CheckpointError(f'{path!r} has no {" / ".join(p + "*" for p in prefixes)} weights. {SAM2_HINT}')
    return part


def strip_prefix(state: Dict[str, torch.Tensor], prefix: str, to: str = '') -> Dict[str, torch.Tensor]:
    """The entries under ``prefix``, renamed to start with ``to`` instead."""
    return {to + k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def load_sam2_state_into(module: nn.Module, state: Dict[str, torch.Tensor], path: str, what: str,
                         ignore: tuple = ()) -> None:
    """``sam_checkpoint.load_state_into`` with SAM 2's arch names (and the arch the file holds, when it is an image
    encoder's state, which keeps its ``image_encoder.*`` keys)."""
    arch = checkpoint_arch(state)
    load_state_into(module, state, path, what + (f' (the file holds {arch})' if arch else ''), ignore,
                    arch_note='Check that the config `arch` matches the checkpoint (sam2.1_hiera_tiny = hiera_t, '
                              f'_small = hiera_s, _base_plus = hiera_b+, _large = hiera_l). {SAM2_HINT}')
