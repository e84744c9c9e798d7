"""mmseg-amsam: AM-SAM (automated prompting + mask calibration for SAM) as an mmsegmentation plugin.

``import mmseg_amsam`` registers every component into mmseg's registries (``custom_imports`` in configs does it).
"""
from . import apis, datasets, engine, evaluation, models  # noqa: F401

__version__ = '0.1.0'
