"""Evaluation metrics of AM-SAM (registered in ``mmseg.registry.METRICS``)."""
from .dice_metric import DiceMetric

__all__ = ['DiceMetric']
