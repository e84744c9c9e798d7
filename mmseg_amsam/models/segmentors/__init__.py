from .amsam import AMSAM

__all__ = ['AMSAM']
