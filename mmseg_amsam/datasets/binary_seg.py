"""Base dataset for the binary (background / foreground) tasks of AM-SAM, on the prepared mmseg layout."""
import os.path as osp
from typing import List, Optional

from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from .prepared_layout import MANIFEST_NAME, read_manifest


@DATASETS.register_module()
class BinarySegDataset(BaseSegDataset):
    """A prepared binary segmentation dataset (masks 0 = background, 1 = foreground).

    Layout (written by ``tools/dataset_converters/*.py``, see :mod:`mmseg_amsam.datasets.prepared_layout`)::

        data_root/img_dir/{train,test}/NAME{img_suffix}
        data_root/ann_dir/{train,test}/NAME.png
        data_root/splits/train_{k}shot.txt      # optional, via ``ann_file``

    A few-shot subset is chosen with mmseg's own ``ann_file`` mechanism: a text file (relative to
    ``data_root``) listing one image name per line, without suffix. Before anything is loaded, the dataset
    checks that ``data_root`` is prepared and that every listed name has an image and a mask, and says how to
    fix it otherwise.

    Subclasses set ``METAINFO``, ``IMG_SUFFIX``, ``SOURCE`` (the ``source`` the converter records in the
    manifest, checked when present) and ``PREPARE_COMMAND`` (shown in errors; ``{data_root}`` is filled in).

    Args:
        img_suffix (str, optional): Image suffix; defaults to the class' ``IMG_SUFFIX``.
        seg_map_suffix (str): Mask suffix. Defaults to '.png'.
        reduce_zero_label (bool): Must stay False: label 0 is the background class. Defaults to False.
        **kwargs: Passed to :class:`mmseg.datasets.BaseSegDataset` (``data_root``, ``data_prefix``,
            ``ann_file``, ``pipeline``, ...).
    """
    METAINFO = dict(classes=('background', 'foreground'), palette=[[0, 0, 0], [255, 255, 255]])
    IMG_SUFFIX = '.jpg'
    SOURCE: Optional[str] = None
    PREPARE_COMMAND = 'python tools/dataset_converters/<dataset>.py RAW_DIR {data_root}'
    SPLIT_COMMAND = 'python tools/dataset_converters/make_fewshot_split.py {data_root} --shots 4 8 16'

    def __init__(self,
                 img_suffix: Optional[str] = None,
                 seg_map_suffix: str = '.png',
                 reduce_zero_label: bool = False,
                 **kwargs) -> None:
        super().__init__(
            img_suffix=img_suffix or self.IMG_SUFFIX,
            seg_map_suffix=seg_map_suffix,
            reduce_zero_label=reduce_zero_label,
            **kwargs)

    # ------------------------------------------------------------------------------------------ checks
    def _fail(self, exc_type: type, message: str) -> None:
        raise exc_type(f'{type(self).__name__}: {message}')

    def _prepare_hint(self) -> str:
        return 'Prepare it with:\n    ' + self.PREPARE_COMMAND.format(data_root=self.data_root or 'DATA_ROOT')

    def _check_prepared(self) -> None:
        """Fail early, naming the missing piece, unless data_root / img / ann folders / split file exist."""
        root = self.data_root
        if root and not osp.isdir(root):
            self._fail(FileNotFoundError, f'data_root {root!r} does not exist. {self._prepare_hint()}')
        for key, what in (('img_path', 'image'), ('seg_map_path', 'annotation')):
            folder = self.data_prefix.get(key)
            if folder is None:  # no annotations configured (e.g. inference-only)
                continue
            if not folder or not osp.isdir(folder):
                self._fail(FileNotFoundError,
                           f'{what} folder {folder!r} is missing, so {root!r} is not a prepared dataset '
                           f'(expected img_dir/<split> and ann_dir/<split>). {self._prepare_hint()}')
        manifest = read_manifest(root) if root else None
        if manifest is not None:
            source = manifest.get('source')
            if self.SOURCE is not None and source != self.SOURCE:
                self._fail(ValueError, f'{root!r} holds a prepared {source!r} dataset (see {MANIFEST_NAME}), '
                                       f'not {self.SOURCE!r}; check data_root')
            suffix = manifest.get('img_suffix')
            if suffix and suffix != self.img_suffix:
                self._fail(ValueError, f'images in {root!r} end with {suffix!r} but img_suffix is '
                                       f'{self.img_suffix!r}')
        if self.ann_file and not osp.isfile(self.ann_file):
            self._fail(FileNotFoundError,
                       f'split file {self.ann_file!r} not found. Create few-shot splits with:\n    '
                       + self.SPLIT_COMMAND.format(data_root=root or 'DATA_ROOT'))

    def _check_data_list(self, data_list: List[dict]) -> None:
        """Every entry must have its image and mask on disk; report the offending names otherwise."""
        img_dir = self.data_prefix.get('img_path')
        if not data_list:
            where = f'split file {self.ann_file!r} lists no names' if self.ann_file else \
                f'no images ending with {self.img_suffix!r} in {img_dir!r}'
            self._fail(ValueError, f'the dataset is empty: {where}')
        suffix_len = len(self.img_suffix)
        no_image = [osp.basename(d['img_path'])[:-suffix_len] for d in data_list if not osp.isfile(d['img_path'])]
        if no_image:
            listed = f'split file {self.ann_file!r} lists' if self.ann_file else 'found'
            hint = ''
            if any(n.endswith(self.img_suffix) or '.' in n for n in no_image):
                hint = ' (list names without suffix, one per line)'
            self._fail(FileNotFoundError,
                       f'{listed} {len(no_image)} name(s) with no image {img_dir}/NAME{self.img_suffix}: '
                       f'{no_image[:10]}{hint}')
        no_mask = [d['seg_map_path'] for d in data_list
                   if d.get('seg_map_path') is not None and not osp.isfile(d['seg_map_path'])]
        if no_mask:
            self._fail(FileNotFoundError, f'{len(no_mask)} image(s) have no mask, e.g. {no_mask[:5]}')

    def load_data_list(self) -> List[dict]:
        """mmseg's loading (folder listing or ``ann_file`` names), framed by the checks above."""
        self._check_prepared()
        data_list = super().load_data_list()
        self._check_data_list(data_list)
        return data_list
