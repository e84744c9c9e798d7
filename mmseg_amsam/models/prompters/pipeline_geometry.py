"""Checks a data pipeline, before a run, for transforms whose geometry a box from the original image cannot follow."""
from typing import Iterable, Optional, Sequence

# moves no pixel
NEUTRAL = {'LoadImageFromFile', 'LoadImageFromNDArray', 'LoadAnnotations', 'LoadBiomedicalImageFromFile',
           'LoadBiomedicalAnnotation', 'PackSegInputs', 'PhotoMetricDistortion', 'Normalize', 'CLAHE', 'AdjustGamma',
           'RGB2Gray', 'RandomGrayscale', 'RandomCutOut', 'GenerateEdge', 'SegRescale', 'ToTensor', 'ImageToTensor'}
# recorded in the metainfo and mapped by box_geometry (resize: scale_factor; flip: flip/flip_direction; padding at
# the bottom/right moves nothing)
MAPPED = {'Resize', 'RandomResize', 'RandomChoiceResize', 'ResizeShortestEdge', 'RandomFlip', 'Pad'}


def _type_name(step) -> str:
    t = step.get('type') if isinstance(step, dict) else type(step).__name__
    return t if isinstance(t, str) else getattr(t, '__name__', str(t))


def check_pipeline(pipeline: Sequence, where: str, owner: str, extra_neutral: Iterable[str] = ()) -> None:
    """Raise ``ValueError`` naming the first transform of ``pipeline`` a box found on the original image cannot be
    mapped through (crops, rotations, mosaics, unknown transforms), or a flip after a ``Pad`` (the flip would then be
    about the padded width, which the metainfo does not tell apart)."""
    neutral = NEUTRAL | set(extra_neutral)
    padded = False
    for step in pipeline or ():
        name = _type_name(step)
        if name.split('.')[-1] in ('TestTimeAug', 'MultiScaleFlipAug'):
            for branch in (step.get('transforms') or []):
                check_pipeline(branch if isinstance(branch, (list, tuple)) else [branch], where, owner, extra_neutral)
            continue
        short = name.split('.')[-1]
        if short == 'Pad':
            padded = True
        if short == 'RandomFlip' and padded:
            raise ValueError(f'{owner}: {where} flips after a Pad; the box of the original image cannot follow that '
                             'flip. Put RandomFlip before Pad (mmseg pipelines pad last).')
        if short not in neutral and short not in MAPPED:
            raise ValueError(
                f'{owner}: {where} has the transform {name!r}, whose geometry is not recorded in the metainfo, so a '
                'box found on the original image cannot be placed in the network input. Fix: remove it, or detect on '
                'the network input (model.prompter.use_original_image=False), or -- if it moves no pixel -- declare '
                f"it: model.prompter.geometry_neutral=['{short}'].")


def dataset_pipeline(dataset_cfg) -> Optional[Sequence]:
    """The pipeline of a dataset config, through dataset wrappers (``RepeatDataset`` and the like); None if none."""
    while isinstance(dataset_cfg, dict) and 'pipeline' not in dataset_cfg:
        if not isinstance(dataset_cfg.get('dataset'), dict):
            break
        dataset_cfg = dataset_cfg['dataset']  # RepeatDataset, ConcatDataset-like wrappers
    return dataset_cfg.get('pipeline') if isinstance(dataset_cfg, dict) else None
