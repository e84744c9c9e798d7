"""Bi-level training with 2 CPU processes (gloo) equals 1 process on the concatenated batch."""
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from cfg_helpers import model_cfg

STEPS = 3
# Cross-entropy alone: its batch mean over equal-size images is the mean of per-process losses, so averaged
# gradients of 2 processes equal the gradient of 1 process on both images. (SAMed's Dice sums over the whole batch
# before dividing, which does not decompose that way -- a property of the loss, not of the distribution.)
CE_ONLY = dict(loss_decode=[dict(type='CrossEntropyLoss', use_sigmoid=False, avg_non_ignore=True, loss_weight=1.0)])


def build(unrolled):
    import mmseg_amsam  # noqa: F401
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules

    from mmseg_amsam.engine import BiLevelOptimWrapperConstructor
    register_all_modules(init_default_scope=True)
    torch.manual_seed(0)
    model = MODELS.build(model_cfg(decode_head=CE_ONLY, train_cfg=dict(unrolled=unrolled)))
    # SGD: its update is linear in the gradient, so the comparison measures the gradient averaging itself. (AdamW
    # divides by sqrt(v): for elements whose gradient is ~0, float summation-order noise becomes a visible step.)
    ow = BiLevelOptimWrapperConstructor(
        dict(lower=dict(params=[r'^decode_head\.'], optimizer=dict(type='SGD', lr=0.5, momentum=0.9)),
             upper=dict(params=[r'^learnable_prompt\.'], optimizer=dict(type='SGD', lr=0.5, momentum=0.9))))(model)
    return model, ow


def batch(indices, size=128):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    imgs, samples = [], []
    for i in indices:
        g = torch.Generator().manual_seed(100 + i)
        imgs.append((torch.rand(3, size, size, generator=g) * 255).to(torch.uint8))
        s = SegDataSample(metainfo=dict(ori_shape=(size, size), img_shape=(size, size), pad_shape=(size, size)))
        gt = torch.zeros(1, size, size, dtype=torch.long)
        gt[0, 5 * i:size // 2 + 5 * i, 10:90] = 1
        s.gt_sem_seg = PixelData(data=gt)
        samples.append(s)
    return dict(inputs=imgs, data_samples=samples)


def step_data(step, ranks):
    """Step ``step``: D1 images 4*step + r, D2 images 4*step + 2 + r for the given ranks."""
    return dict(lower=batch([4 * step + r for r in ranks]), upper=batch([4 * step + 2 + r for r in ranks]))


def worker(rank, world, port, unrolled, out):
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank, world_size=world)
    from mmseg_amsam.engine import BiLevelDistributedDataParallel
    model, ow = build(unrolled)
    ddp = BiLevelDistributedDataParallel(module=model, device_ids=[rank])
    for step in range(STEPS):
        ddp.train_step(step_data(step, [rank]), ow)
    if rank == 0:
        torch.save({n: p.detach() for n, p in model.named_parameters() if p.requires_grad}, out)
    dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.parametrize('unrolled', [False, True])
def test_two_gloo_processes_equal_one_process_on_the_concatenated_batch(tmp_path, unrolled):
    out = str(tmp_path / 'ddp.pth')
    mp.spawn(worker, args=(2, free_port(), unrolled, out), nprocs=2, join=True)
    distributed = torch.load(out, weights_only=True)
    model, ow = build(unrolled)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    from mmseg_amsam.engine import bilevel_train_step
    for step in range(STEPS):
        bilevel_train_step(model, step_data(step, [0, 1]), ow)
    unmoved = []
    for name, value in distributed.items():
        single = dict(model.named_parameters())[name].detach()
        torch.testing.assert_close(value, single, rtol=1e-4, atol=1e-6,
                                   msg=lambda m: f"{name}: {m}")
        if torch.equal(single, before[name]):
            unmoved.append(name)
    assert not unmoved  # every trained tensor actually changed
    assert os.path.exists(out)


def test_dist_train_script_runs_bilevel_on_cpu_processes(demo_root, tmp_path, root):
    """tools/dist_train.sh (torchrun) with 2 CPU processes: gloo group, BiLevelDistributedDataParallel wrapper."""
    import subprocess
    opts = [f'{k}.dataset.data_root={demo_root}' for k in ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    env = dict(os.environ, PORT=str(free_port()), PYTHON=os.path.join(root, '.venv', 'bin', 'python'))
    if not os.path.exists(env['PYTHON']):
        import sys
        env['PYTHON'] = sys.executable
    proc = subprocess.run(['bash', os.path.join(root, 'tools', 'dist_train.sh'), os.path.join(root, 'configs',
                                                                                              'amsam_demo.py'), '2',
                           '--work-dir', str(tmp_path), '--cfg-options', 'train_cfg.max_epochs=1',
                           'model.prompter.imgsz=64', 'model.prompter.adapt=None', *opts],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    log = open(next(p for p in (tmp_path).rglob('*.log'))).read()
    assert 'BiLevelDistributedDataParallel' in log and 'lower.loss' in log and 'Distributed training: True' in log


# ---------------------------------------------------------------- shipped loss and AdamW, ranks stay identical
def shipped_models():
    """A single-level config (SAMed: no prompter, encoder LoRA) and a bi-level one (BLO-SAM: no prompter), both with
    the shipped loss (0.2 CE + 0.8 class-averaged Dice) and the shipped AdamW settings, tiny encoder."""
    import mmseg_amsam  # noqa: F401
    from mmengine.config import Config
    from mmengine.optim import OptimWrapper
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules

    from cfg_helpers import ROOT, shrink
    from mmseg_amsam.engine import BiLevelOptimWrapperConstructor
    register_all_modules(init_default_scope=True)
    built = {}
    for name in ('samed_isic_4shot', 'blosam_isic_4shot'):
        cfg = shrink(Config.fromfile(os.path.join(ROOT, 'configs', f'{name}.py')))
        cfg.model.update(sam_checkpoint=None, embedding_cache=None)
        cfg.model.backbone.arch = 'tiny'
        torch.manual_seed(0)
        model = MODELS.build(cfg.model)
        if name.startswith('samed'):
            opt = cfg.optim_wrapper.optimizer
            ow = OptimWrapper(torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=opt.lr,
                                                betas=opt.betas, weight_decay=opt.weight_decay))
        else:
            ow = BiLevelOptimWrapperConstructor(cfg.optim_wrapper)(model)
        built[name] = (model, ow)
    return built


def shipped_worker(rank, world, port, out):
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank, world_size=world)
    from mmengine.model import MMDistributedDataParallel

    from mmseg_amsam.engine import BiLevelDistributedDataParallel
    (single, single_ow), (blo, blo_ow) = shipped_models().values()
    ddp = MMDistributedDataParallel(module=single, device_ids=None, find_unused_parameters=False)
    blo_ddp = BiLevelDistributedDataParallel(module=blo, device_ids=[rank])
    for step in range(STEPS):  # each rank its own images
        ddp.train_step(batch([4 * step + rank]), single_ow)
        blo_ddp.train_step(step_data(step, [rank]), blo_ow)
    torch.save({f'{tag}.{n}': p.detach() for tag, m in (('single', single), ('bilevel', blo))
                for n, p in m.named_parameters() if p.requires_grad}, f'{out}.{rank}')
    dist.destroy_process_group()


def test_shipped_single_level_and_bilevel_configs_under_ddp_keep_ranks_identical(tmp_path):
    out = str(tmp_path / 'params')
    mp.spawn(shipped_worker, args=(2, free_port(), out), nprocs=2, join=True)
    rank0, rank1 = (torch.load(f'{out}.{r}', weights_only=True) for r in (0, 1))
    (single, _), (blo, _) = shipped_models().values()
    start = {f'{tag}.{n}': p.detach() for tag, m in (('single', single), ('bilevel', blo))
             for n, p in m.named_parameters() if p.requires_grad}
    assert set(rank0) == set(start) and any(k.startswith('single.backbone.') for k in rank0)  # encoder LoRA
    for name, value in rank0.items():
        assert torch.equal(value, rank1[name]), name
    moved = [n for n in start if not torch.equal(start[n], rank0[n])]
    assert set(moved) == set(start)  # every trained tensor actually moved
