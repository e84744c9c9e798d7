"""Bi-level training with batch size > 1: per-sample prompts, D1 / D2 loaders with their own batch sizes."""
import copy

import torch
from mmengine.runner import Runner
from mmseg.registry import MODELS

from cfg_helpers import demo_cfg, model_cfg
from mmseg_amsam.engine import BiLevelOptimWrapperConstructor, bilevel_train_step
from test_bilevel import data_batch

CE_ONLY = [dict(type='CrossEntropyLoss', use_sigmoid=False, avg_non_ignore=True, loss_weight=1.0)]


def model_and_sgd(seed=0):
    """The tiny AM-SAM with a per-sample box (the GT box) and a loss that is a per-pixel mean (CE only): over images
    of equal size the batch loss is the mean of the images' losses, so its gradient is the mean of theirs."""
    torch.manual_seed(seed)
    model = MODELS.build(model_cfg(prompter=dict(type='MaskBoxPrompter'), decode_head=dict(loss_decode=CE_ONLY)))
    ow = BiLevelOptimWrapperConstructor(dict(
        lower=dict(type='OptimWrapper', params=[r'^decode_head\.'], optimizer=dict(type='SGD', lr=0.5)),
        upper=dict(type='OptimWrapper', params=[r'^learnable_prompt\.'], optimizer=dict(type='SGD', lr=0.5))))(model)
    return model, ow


def joined(*batches):
    return dict(inputs=sum((b['inputs'] for b in batches), []),
                data_samples=sum((b['data_samples'] for b in batches), []))


def mean_grad(model, params, batches):
    """Mean over single-image batches of d loss / d params (two batch-1 passes accumulated)."""
    total = [torch.zeros_like(p) for p in params]
    for b in batches:
        d = model.data_preprocessor(copy.deepcopy(b), True)
        loss, _ = model.parse_losses(model.loss(d['inputs'], d['data_samples']))
        for t, g in zip(total, torch.autograd.grad(loss, params)):
            t += g / len(batches)
    return total


def test_batch_of_two_is_the_mean_of_two_single_image_gradients():
    model, ow = model_and_sgd()
    ref, ref_ow = model_and_sgd()
    d1, d2 = [data_batch(0), data_batch(1)], [data_batch(2), data_batch(3)]  # different GT boxes per image
    bilevel_train_step(model, dict(lower=joined(*d1), upper=joined(*d2)), ow)
    for level, batches in (('lower', d1), ('upper', d2)):  # by hand: SGD steps with the averaged gradients
        params = [p for g in ref_ow[level].optimizer.param_groups for p in g['params']]
        grads = mean_grad(ref, params, batches)
        with torch.no_grad():
            for p, g in zip(params, grads):
                p -= 0.5 * g
    changed = 0
    for (n, p), (_, q), (_, p0) in zip(model.named_parameters(), ref.named_parameters(),
                                       model_and_sgd()[0].named_parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=n)
        changed += int(not torch.equal(p, p0))
    assert changed > 10  # LoRA, decoder parts and the prompt all moved
    d = model.data_preprocessor(copy.deepcopy(joined(*d1)), True)
    boxes, _ = model.prompter(d['inputs'], d['data_samples'])
    assert boxes[0, 1] != boxes[1, 1]  # each sample had its own prompt (its GT box)


def test_loops_give_d1_and_d2_their_own_batch_sizes(demo_root, tmp_path):
    cfg = demo_cfg(demo_root, tmp_path, lower_batch_size=2, upper_batch_size=1, max_epochs=2)
    cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=100)
    sizes = []
    runner = Runner.from_cfg(cfg)
    original = runner.train_loop.run_iter

    def spy(idx, data_batch):
        sizes.append((len(data_batch['lower']['inputs']), len(data_batch['upper']['inputs'])))
        return original(idx, data_batch)

    runner.train_loop.run_iter = spy
    runner.train()
    assert sizes == [(2, 1), (2, 1)]  # D1 = 2 images: one batch of 2 per epoch; D2 batches of 1
