"""The model inside an mmengine model wrapper (DDP, FSDP), or the model itself."""
from mmengine.model import is_model_wrapper
from torch import nn


def unwrap_model(model: nn.Module) -> nn.Module:
    return model.module if is_model_wrapper(model) else model
