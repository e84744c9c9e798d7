"""Open an image completely and make it an RGB, orientation-free image of the target format.

Images
  * must decode completely with Pillow (truncated or corrupt files are skipped);
  * RGB is kept; modes 1, L, LA, P, PA, RGBA, RGBX, CMYK and YCbCr are converted to RGB (alpha is dropped);
    other modes (16-bit, float) are skipped;
  * an EXIF orientation tag (2-8) is resolved and removed, so that no loader (cv2 honours the tag, Pillow does
    not) rotates the image away from its mask: the orientation is applied, unless only the stored pixels have
    the mask's aspect ratio (a 90 degree tag on an image annotated unrotated);
  * an image that already is an RGB file of the target format with no orientation tag is copied byte for byte,
    anything else is re-encoded (JPEG quality 95, or PNG).
"""
from pathlib import Path
from typing import List, Tuple

from PIL import ExifTags, Image, ImageOps

from .errors import PairError

TARGET_FORMATS = {'.jpg': 'JPEG', '.jpeg': 'JPEG', '.png': 'PNG'}
RGB_CONVERTIBLE_MODES = frozenset({'1', 'L', 'LA', 'La', 'P', 'PA', 'RGBA', 'RGBa', 'RGBX', 'CMYK', 'YCbCr'})
ASPECT_TOLERANCE = 0.05
JPEG_QUALITY = 95

Note = Tuple[str, str]  # (category shown in the summary, detail for this pair)


def open_fully(path: Path, what: str) -> Image.Image:
    """Open and decode ``path`` completely (Pillow decodes lazily); any decoding failure becomes a PairError."""
    try:
        with Image.open(path) as im:
            im.load()
    except Exception as e:  # noqa: BLE001 - a foreign file can fail in many ways; all mean "unreadable"
        raise PairError(f'unreadable {what} {path.name} ({type(e).__name__}: {e})', f'unreadable {what}') from None
    return im


def same_aspect(size_a: Tuple[int, int], size_b: Tuple[int, int], tol: float = ASPECT_TOLERANCE) -> bool:
    """Whether two (w, h) sizes have aspect ratios within ``tol`` (relative) of each other."""
    return abs((size_a[0] / size_a[1]) / (size_b[0] / size_b[1]) - 1) <= tol


def normalise_image(im: Image.Image, mask_size: Tuple[int, int],
                    img_suffix: str) -> Tuple[Image.Image, List[Note], bool]:
    """RGB, orientation-free version of ``im``; returns (image, notes, must_re_encode)."""
    notes: List[Note] = []
    source_format = im.format
    reencode = False
    orientation = im.getexif().get(ExifTags.Base.Orientation, 1)
    if orientation in range(2, 9):
        reencode = True
        displayed = ImageOps.exif_transpose(im)
        if same_aspect(mask_size, im.size) and not same_aspect(mask_size, displayed.size):
            notes.append(('image EXIF orientation tag dropped (mask follows the stored pixels)', str(orientation)))
        else:
            im = displayed
            notes.append(('image EXIF orientation applied to the pixels', str(orientation)))
    if im.mode != 'RGB':
        if im.mode not in RGB_CONVERTIBLE_MODES:
            raise PairError(f'unsupported image mode {im.mode}', 'unsupported image mode')
        notes.append(('image converted to RGB', im.mode))
        im = im.convert('RGB')
        reencode = True
    target = TARGET_FORMATS[img_suffix]
    if source_format != target:
        notes.append(('image re-encoded', f'{source_format} -> {target}'))
        reencode = True
    return im, notes, reencode
