"""Config loading shared by tools/train.py and tools/test.py (mmseg's argument semantics)."""
import os.path as osp
from typing import Optional

from mmengine.config import Config


def load_run_config(config: str, cfg_options: Optional[dict] = None, work_dir: Optional[str] = None,
                    launcher: str = 'none') -> Config:
    """Read ``config``, apply ``--cfg-options``, set the launcher and the work dir (default
    ``./work_dirs/<config name>``, as mmseg). A missing config file is a ``FileNotFoundError`` naming it."""
    if not osp.isfile(config):
        raise FileNotFoundError(f'config file {config!r} not found; the configs are in configs/ '
                                '(e.g. configs/amsam_isic_4shot.py, configs/amsam_demo.py)')
    cfg = Config.fromfile(config)
    cfg.launcher = launcher
    if cfg_options is not None:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(config))[0])
    return cfg
