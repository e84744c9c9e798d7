from . import backbones, baselines, decode_heads, losses, prompters, segmentors  # noqa: F401
