"""Shared test helper: the demo config pointed at a data root, shrunk for speed."""
import copy
import importlib.util
import os.path as osp
import uuid

from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def demo_cfg(data_root, work_dir, img_size=128, **train_cfg):
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'amsam_demo.py'))
    cfg.model.prompter.pop('adapt', None)  # the demo's detector-adaptation stage: tested in test_configs.py
    point_at(cfg, data_root)
    shrink(cfg, img_size)
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = f'demo_{uuid.uuid4().hex[:8]}'  # mmengine keys loggers by name: keep runs apart
    if train_cfg:
        cfg.train_cfg.update(train_cfg)
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.visualization = dict(type='SegVisualizationHook')
    return cfg


def point_at(cfg, data_root):
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if cfg.get(key):
            cfg[key].dataset.data_root = str(data_root)


def shrink(cfg, img_size=128):
    """Smaller SAM input (and detector) so a CPU step takes milliseconds."""
    cfg.model.img_size = img_size
    cfg.model.data_preprocessor.size = (img_size, img_size)
    if cfg.model.get('prompter') and cfg.model.prompter.get('type') == 'YOLOBoxPrompter':
        cfg.model.prompter.imgsz = 64
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(key)
        if loader:
            for t in loader.dataset.pipeline:
                if t['type'] == 'Resize':
                    t['scale'] = (img_size, img_size)
    return cfg


def model_cfg(**overrides):
    cfg = Config.fromfile(osp.join(ROOT, 'configs', '_base_', 'models', 'amsam_tiny.py'))
    shrink(cfg)
    model = copy.deepcopy(cfg.model)
    for key, value in overrides.items():  # merged into the base part, replaced when it names another type
        base = model.get(key)
        same_type = isinstance(base, dict) and isinstance(value, dict) and \
            value.get('type', base.get('type')) == base.get('type')
        if same_type:
            model[key].update(value)
        else:
            model[key] = value
    return model


def load_tool(path: str):
    """Import a script under tools/ (e.g. ``'infer'``, ``'dataset_converters/humanseg'``) as a module: the tools
    are scripts, not package modules."""
    spec = importlib.util.spec_from_file_location('tool_' + path.replace('/', '_'),
                                                  osp.join(ROOT, 'tools', f'{path}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
