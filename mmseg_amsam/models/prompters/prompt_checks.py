"""Checks on the prompts of a batch that fail early, with a message that names the image and the fix."""
from typing import Sequence

import torch


class MissingPromptError(RuntimeError):
    """An image would reach SAM's decoder with no prompt at all."""


def require_prompts(model, has_box: torch.Tensor, data_samples: Sequence) -> None:
    """Raise :class:`MissingPromptError` when an image got no box and nothing else prompts the decoder.

    That happens only with a box prompter whose ``fallback='none'`` on a model without a learnable prompt
    (``learnable_prompt=None``): the decoder would then see SAM's untrained "no prompt" input. Called by
    ``AMSAM.frozen_features`` right after the prompter, so the error comes before any decoding (or training).
    """
    prompter = getattr(model, 'prompter', None)
    if (prompter is None or has_box is None or getattr(model, 'learnable_prompt', None) is not None
            or getattr(prompter, 'fallback', 'image') != 'none' or bool(has_box.all())):
        return
    missing = [str(sample.metainfo.get('img_path', f'image #{i} of the batch'))
               for i, (found, sample) in enumerate(zip(has_box.reshape(len(data_samples), -1).all(1).tolist(),
                                                       data_samples)) if not found]  # (B,) or per class (B, C)
    shown = ', '.join(missing[:5]) + (f' (and {len(missing) - 5} more)' if len(missing) > 5 else '')
    raise MissingPromptError(
        f'{type(prompter).__name__} found no box in {shown}, and this model has no other prompt: the prompter '
        "fallback is 'none' and the model has no learnable prompt (learnable_prompt=None). Fix: set "
        "model.prompter.fallback='image' (whole-image box when nothing is detected), or keep the learned prompt "
        "(model.learnable_prompt=dict(type='LearnablePrompt')); a lower detector threshold "
        '(model.prompter.conf) may also find a box.')
