"""The paper's experiments at toy scale: a paper config's *method* (model, levels, optimizers) run with the embedded
toy SAM / YOLO on the demo domain of the shapes world, with a seeded k-shot split (``tools/toy_table.py``).

What comes from where:

* the method config (e.g. ``configs/blosam_isic_4shot.py``): the model type and its switches (prompter or not,
  calibration, learnable prompt, LoRA placement, trainable parts), the training loop (bi-level or single level),
  optimizers and learning rates;
* ``configs/amsam_demo.py``: the toy model sizes and weights (``amsam_toy.py``), the demo data pipelines, loaders,
  evaluator and the length of the schedule (its ``max_epochs``; the poly decay ends there).
"""
import copy
import os.path as osp
from typing import Optional

from mmengine.config import Config

# method prefix (summarize.py's METHODS) -> the paper config that defines it
TOY_METHODS = {
    'blosam': 'blosam_isic_4shot.py',  # Table 4 row 1: BLO-SAM
    'amsam-calib': 'amsam-calib_isic_4shot.py',  # + mask calibration
    'amsam-yolo': 'amsam-yolo_isic_4shot.py',  # + YOLO box prompt
    'amsam': 'amsam_isic_4shot.py',  # AM-SAM (YOLO + calibration)
    'samed': 'samed_isic_4shot.py',  # SAMed-style baseline (encoder LoRA, single level)
    'sam-yolo': 'sam-yolo_isic.py',  # plain SAM + YOLO box, nothing trained
}
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def _toy_model(model, toy) -> None:
    """Give ``model`` (an AMSAM config) the toy SAM / YOLO sizes and weights of ``toy`` (the demo's model)."""
    model.img_size = toy.img_size
    model.data_preprocessor.size = toy.data_preprocessor.size
    model.sam_checkpoint = toy.sam_checkpoint
    model.backbone.update(arch=toy.backbone.arch, out_chans=toy.backbone.out_chans)
    model.prompt_encoder.embed_dim = toy.prompt_encoder.embed_dim
    if model.get('learnable_prompt'):
        model.learnable_prompt.embed_dim = toy.learnable_prompt.embed_dim
    for key in ('transformer_dim', 'transformer_mlp_dim', 'transformer_heads'):
        model.decode_head[key] = toy.decode_head[key]
    if model.get('prompter'):
        model.prompter.update(model=toy.prompter.model, imgsz=toy.prompter.imgsz, classes=None)


def _end_schedules_at(schedulers, epochs: int) -> None:
    for level in (schedulers.values() if isinstance(schedulers, dict) else [schedulers]):
        for scheduler in level:
            scheduler.end = epochs


def toy_experiment(method: str, config_dir: str, data_root: str, shots: Optional[int], seed: int,
                   work_dir: str) -> Config:
    """The config of one cell: ``method`` (a key of :data:`TOY_METHODS`) on ``data_root`` with the split file
    ``splits/train_{shots}shot_seed{seed}.txt`` (``shots`` None: test only), seeded with ``seed``."""
    cfg = Config.fromfile(osp.join(config_dir, TOY_METHODS[method]))
    demo = Config.fromfile(osp.join(config_dir, 'amsam_demo.py'))
    _toy_model(cfg.model, demo.model)
    for key in LOADERS + ('val_evaluator', 'test_evaluator'):
        if cfg.get(key) is not None:
            cfg[key] = copy.deepcopy(demo[key])
            if key in LOADERS:
                cfg[key].dataset.data_root = data_root
    if cfg.get('train_cfg') is not None and cfg.train_cfg.get('max_epochs'):
        epochs = demo.train_cfg.max_epochs
        cfg.train_cfg.max_epochs = epochs
        if cfg.train_cfg.get('split_seed') is not None:
            cfg.train_cfg.split_seed = seed
        if cfg.train_cfg.type == 'EpochBasedTrainLoop':  # single level: no validation, the last epoch is tested
            cfg.train_cfg.val_interval = epochs + 1
        _end_schedules_at(cfg.param_scheduler, epochs)
        cfg.train_dataloader.dataset.ann_file = f'splits/train_{shots}shot_seed{seed}.txt'
    cfg.randomness = dict(seed=seed)
    cfg.work_dir = work_dir
    if cfg.get('default_hooks'):
        cfg.default_hooks.logger.interval = 10
    return cfg
