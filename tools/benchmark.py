"""Benchmark bi-level training steps (cache on/off, first-order/unrolled, batch sizes) and inference (PyTorch and
ONNX Runtime, other models such as SAM 2), in one run.

    python tools/benchmark.py configs/amsam_isic_8shot.py --steps 10 [--device cuda] [--profile]
    python tools/benchmark.py configs/amsam_isic_8shot.py --compare configs/amsam-sam2_isic_8shot.py \
        configs/amsam-sam2_isic_8shot.py@hiera_s --infer-sizes 256 1024

Random weights (no checkpoint needed): SAM parts are built with ``sam_checkpoint=None`` and the YOLO prompter from
``yolov8n.yaml`` unless its weights file exists. Each bi-level step sees the same two 256 px images (D1, D2 batches
of 1: the paper's setting); the batch rows use D1 and D2 batches of 1, 4 and 8 (cache on, first-order). Inference
rows (``apis.inference_speed``, detector excluded): images/s of encoder + decoder in PyTorch and ONNX Runtime (CPU;
exported to a temporary folder) at each ``--infer-sizes`` x ``--infer-batches``. Prints medians after warm-up.

This file is longer than 250 lines because every measured row and the ratios between them belong to one run (the
ratios are only meaningful between rows measured in the same process on the same machine state)."""
import argparse
import copy
import os
import os.path as osp
import resource
import statistics
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.structures import PixelData  # noqa: E402
from mmseg.registry import MODELS  # noqa: E402
from mmseg.structures import SegDataSample  # noqa: E402
from mmseg.utils import register_all_modules  # noqa: E402

import mmseg_amsam  # noqa: E402,F401
from mmseg_amsam.engine import BiLevelOptimWrapperConstructor, bilevel_train_step  # noqa: E402
from mmseg_amsam.models.backbones.embedding_cache import EmbeddingCache  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config')
    p.add_argument('--arch', default=None, help='SAM encoder arch (vit_b, vit_l, vit_h, tiny); default: config')
    p.add_argument('--img-size', type=int, default=256)
    p.add_argument('--steps', type=int, default=10, help='timed steps per setting (median reported)')
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--infer-batch', type=int, default=4)
    p.add_argument('--train-batches', type=int, nargs='+', default=[1, 4, 8], help='D1 / D2 batch sizes timed')
    p.add_argument('--infer-batches', type=int, nargs='+', default=[1, 8], help='PyTorch vs ONNX Runtime batches')
    p.add_argument('--infer-sizes', type=int, nargs='+', default=[256], help='input sizes of the inference rows')
    p.add_argument('--compare', nargs='*', default=[], help='more CONFIG[@ARCH] for the inference rows (SAM 2)')
    p.add_argument('--no-onnx', action='store_true', help='skip the inference rows')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--threads', type=int, default=None, help='torch CPU threads (default: torch default)')
    p.add_argument('--profile', action='store_true', help='profile cached first-order steps, print top ops')
    return p.parse_args()


def build(cfg, args, img_size=None):
    img_size = img_size or args.img_size
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.sam_checkpoint = None
    model_cfg.img_size = img_size
    model_cfg.data_preprocessor.size = (img_size, img_size)
    if args.arch:
        model_cfg.backbone.arch = args.arch
    prompter = model_cfg.get('prompter')
    if prompter and prompter.get('type') == 'YOLOBoxPrompter' and not osp.isfile(str(prompter.get('model'))):
        prompter.model = 'yolov8n.yaml'
    torch.manual_seed(0)
    model = MODELS.build(model_cfg).to(args.device)
    model.train()
    ow = BiLevelOptimWrapperConstructor(copy.deepcopy(cfg.optim_wrapper))(model)
    return model, ow


def batch(seed, n, size):
    g = torch.Generator().manual_seed(seed)
    imgs, samples = [], []
    for _ in range(n):
        imgs.append((torch.rand(3, size, size, generator=g) * 255).to(torch.uint8))
        s = SegDataSample(metainfo=dict(ori_shape=(size, size), img_shape=(size, size), pad_shape=(size, size),
                                        padding_size=[0, 0, 0, 0]))
        gt = torch.zeros(1, size, size, dtype=torch.long)
        gt[0, size // 4:3 * size // 4, size // 5:4 * size // 5] = 1
        s.gt_sem_seg = PixelData(data=gt)
        samples.append(s)
    return dict(inputs=imgs, data_samples=samples)


def sync(device):
    if str(device).startswith('cuda'):
        torch.cuda.synchronize()


def timed(fn, steps, warmup, device):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        sync(device)
        t = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def peak_mb(device):
    if str(device).startswith('cuda'):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process high-water mark (RSS)


def reset_peak(device):
    if str(device).startswith('cuda'):
        torch.cuda.reset_peak_memory_stats()


def main():
    args = parse_args()
    os.environ.setdefault('YOLO_OFFLINE', '1')
    register_all_modules(init_default_scope=True)
    cfg = Config.fromfile(args.config)
    model, ow = build(cfg, args)
    torch.set_num_threads(args.threads or os.cpu_count())  # (importing ultralytics may have lowered it)
    owner = model.backbone.cache_key
    data = dict(lower=batch(1, 1, args.img_size), upper=batch(2, 1, args.img_size))
    rows, results = [], {}
    for unrolled in (False, True):
        model.train_cfg['unrolled'] = unrolled
        for cached in (False, True):
            model.embedding_cache = EmbeddingCache(owner) if cached else None
            reset_peak(args.device)
            t = timed(lambda: bilevel_train_step(model, copy.deepcopy(data), ow), args.steps, args.warmup, args.device)
            name = f"{'unrolled' if unrolled else 'first-order'} step, cache {'on' if cached else 'off'}"
            results[(unrolled, cached)] = t
            rows.append((name, f'{t * 1000:9.1f} ms', f'{peak_mb(args.device):9.0f} MB'))

    # the unrolled term's float64 passes (the default model.train_cfg.hypergrad_dtype) against float32 ones
    model.train_cfg.update(unrolled=True, hypergrad_dtype='float32')
    model.embedding_cache = EmbeddingCache(owner)
    reset_peak(args.device)
    t32 = timed(lambda: bilevel_train_step(model, copy.deepcopy(data), ow), args.steps, args.warmup, args.device)
    rows.append(('unrolled step, cache on, hypergrad_dtype float32', f'{t32 * 1000:9.1f} ms',
                 f'{peak_mb(args.device):9.0f} MB'))
    model.train_cfg.pop('hypergrad_dtype')
    model.train_cfg['unrolled'] = False

    # where the time goes: one encoder pass alone
    model.embedding_cache = None
    x = model.data_preprocessor(copy.deepcopy(data['lower']), True)['inputs']
    t_enc = timed(lambda: model.extract_feat(x), max(3, args.steps // 2), 1, args.device)
    rows.append(('encoder forward alone (1 image)', f'{t_enc * 1000:9.1f} ms', ''))

    model.eval()
    infer = model.data_preprocessor(batch(3, args.infer_batch, args.img_size), False)

    def predict():
        with torch.inference_mode():
            model.predict(infer['inputs'], copy.deepcopy(infer['data_samples']))
    reset_peak(args.device)
    t_inf = timed(predict, max(3, args.steps // 2), 1, args.device)
    rows.append((f'inference, batch {args.infer_batch}, cache off', f'{args.infer_batch / t_inf:9.2f} img/s',
                 f'{peak_mb(args.device):9.0f} MB'))

    model.train()  # bi-level steps at larger batches: images per second of D1 + D2 (cache on, first-order)
    model.train_cfg['unrolled'] = False
    model.embedding_cache = EmbeddingCache(owner)
    for n in args.train_batches:
        data_n = dict(lower=batch(1, n, args.img_size), upper=batch(2, n, args.img_size))
        t = timed(lambda: bilevel_train_step(model, copy.deepcopy(data_n), ow), args.steps, args.warmup,
                  args.device)
        rows.append((f'first-order step, cache on, D1 + D2 batches of {n}', f'{2 * n / t:9.2f} img/s',
                     f'{t * 1000:9.1f} ms'))
    if not args.no_onnx:
        rows += inference_rows(args, [args.config] + list(args.compare))

    arch = args.arch or cfg.model.backbone.arch
    print(f'\nAM-SAM benchmark: {args.config}, arch {arch}, {args.img_size} px, device {args.device}, '
          f'{torch.get_num_threads()} threads, median of {args.steps} steps after {args.warmup} warm-up')
    width = max(len(r[0]) for r in rows)
    print(f"{'setting':<{width}} | {'time':>12} | {'peak mem':>12}")
    for name, t, m in rows:
        print(f'{name:<{width}} | {t:>12} | {m:>12}')
    print('\nratios:')
    print(f'  cache speed-up, first-order: {results[(False, False)] / results[(False, True)]:6.1f}x  (target >= 10x)')
    print(f'  cache speed-up, unrolled:    {results[(True, False)] / results[(True, True)]:6.1f}x')
    print(f'  unrolled / first-order (cache on): {results[(True, True)] / results[(False, True)]:5.2f}x '
          '(target <= 3x)')
    print(f'  unrolled / first-order (cache off): {results[(True, False)] / results[(False, False)]:5.2f}x')
    print(f'  unrolled, hypergrad_dtype float64 (default) / float32 (cache on): {results[(True, True)] / t32:5.2f}x')
    print(f'  encoder share of an uncached first-order step: '
          f'{100 * 2 * t_enc / results[(False, False)]:5.1f}% (2 images)')

    if args.profile:
        model.train()
        model.train_cfg['unrolled'] = False
        model.embedding_cache = EmbeddingCache(owner)
        bilevel_train_step(model, copy.deepcopy(data), ow)
        from torch.profiler import ProfilerActivity, profile
        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if str(args.device).startswith('cuda') else [])
        with profile(activities=acts) as prof:
            for _ in range(3):
                bilevel_train_step(model, copy.deepcopy(data), ow)
        key = 'self_cuda_time_total' if str(args.device).startswith('cuda') else 'self_cpu_time_total'
        print('\nprofile of 3 cached first-order steps (top ops):')
        print(prof.key_averages().table(sort_by=key, row_limit=15))


def inference_rows(args, configs):
    """PyTorch and ONNX Runtime inference rows for each config and size (module doc)."""
    import tempfile
    from mmseg_amsam.apis import export_model
    from mmseg_amsam.apis.inference_speed import measure_speed
    rows = []
    for config in configs:  # CONFIG or CONFIG@ARCH (another image encoder, e.g. @hiera_s)
        config, _, arch = config.partition('@')
        cfg = Config.fromfile(config)
        cfg.model.backbone.arch = arch or cfg.model.backbone.arch
        name = osp.splitext(osp.basename(config))[0] + (f'@{arch}' if arch else '')
        pipeline = cfg.get('test_dataloader', {}).get('dataset', {}).get('pipeline', [])
        if config != args.config:  # another model (e.g. SAM 2): its cached first-order step at batch 1 too
            model, ow = build(cfg, args)
            torch.set_num_threads(args.threads or os.cpu_count())  # building the YOLO may have lowered it
            data = dict(lower=batch(1, 1, args.img_size), upper=batch(2, 1, args.img_size))
            t = timed(lambda: bilevel_train_step(model, copy.deepcopy(data), ow), args.steps, args.warmup,
                      args.device)
            rows.append((f'{name}: first-order step, cache on', f'{t * 1000:9.1f} ms', ''))
        for size in args.infer_sizes:
            model, _ = build(cfg, args, size)
            model.embedding_cache = None
            threads = args.threads or os.cpu_count()  # building the YOLO and ultralytics' export lower it
            torch.set_num_threads(threads)
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    export_model(model.cpu().eval(), osp.join(tmp, 'export'), pipeline,
                                 dict(classes=('background', 'foreground')))
                except ValueError as e:  # not exportable (e.g. calibration='batch'): PyTorch rows only
                    print(f'[benchmark] {name}: no ONNX export ({e})')
                    rows += pytorch_rows(model.to(args.device), name, size, args)
                    continue
                torch.set_num_threads(threads)
                model.to(args.device)
                for r in measure_speed(model, osp.join(tmp, 'export'), args.infer_batches,
                                      repeats=args.steps // 2 + 1):
                    note = f"max |diff| {r['max_abs_diff']:.1e}" if 'max_abs_diff' in r else ''
                    rows.append((f"{name} {size} px, {r['backend']}, batch {r['batch_size']}",
                                 f"{r['images_per_s']:9.2f} img/s", note))
    return rows


def pytorch_rows(model, name, size, args):  # images/s of ``model.predict`` (detector included): no export
    rows = []
    for n in args.infer_batches:
        data = model.eval().data_preprocessor(batch(3, n, size), False)
        with torch.inference_mode():
            t = timed(lambda: model.predict(data['inputs'], copy.deepcopy(data['data_samples'])),
                      args.steps // 2 + 1, 1, args.device)
        rows.append((f'{name} {size} px, pytorch (predict), batch {n}', f'{n / t:9.2f} img/s', ''))
    return rows


if __name__ == '__main__':
    main()
