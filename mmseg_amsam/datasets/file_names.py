"""Which files count as images, and the order names are listed in (shared by conversion and few-shot splits)."""
import re

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


def natural_key(name: str) -> tuple:
    """Sort key that orders digit runs numerically: '2' < '10', 'img_9' < 'img_10' (zero-padded names unchanged)."""
    return tuple((0, int(tok), '') if tok.isdigit() else (1, 0, tok) for tok in re.split(r'(\d+)', name) if tok)
