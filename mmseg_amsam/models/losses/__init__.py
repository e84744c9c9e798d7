from .class_averaged_dice_loss import ClassAveragedDiceLoss

__all__ = ['ClassAveragedDiceLoss']
