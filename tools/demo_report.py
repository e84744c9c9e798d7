#!/usr/bin/env python
"""Print what `make demo` showed: test Dice before training (zero-shot: pretrained toy SAM + YOLO box, nothing
trained) and after the few-shot bi-level training, the D2 validation curve, and the YOLO prompts' telemetry.

    python tools/demo_report.py work_dirs/amsam_demo

Reads WORK_DIR/zero_shot and WORK_DIR/test (tools/test.py runs) and WORK_DIR's validation log.
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmseg_amsam.apis.run_logs import RunError, find_test_runs, val_curve  # noqa: E402


def read_test_metrics(work_dir: str) -> dict:
    runs = find_test_runs(work_dir)
    if not runs:
        raise RunError(f'{work_dir}: no tools/test.py result (TIMESTAMP/TIMESTAMP.json); run `make demo`')
    return runs[-1][1]


def prompts_line(metrics: dict) -> str:
    """The prompt telemetry the test run logged (PromptTelemetryHook / DiceMetric)."""
    if metrics.get('test/prompt_detection_rate') is None:
        return 'no prompt telemetry in this run'
    return (f'{100 * metrics["test/prompt_detection_rate"]:.0f} % of the test images got a detected box (the '
            f'others: the whole-image box), prompt-box IoU with the GT box {metrics["test/prompt_box_iou"]:.3f} '
            f'(mean), {100 * metrics["test/prompt_box_iou_ge_0.5"]:.0f} % >= 0.5')


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('work_dir')
    args = parser.parse_args(argv)
    try:
        before = read_test_metrics(osp.join(args.work_dir, 'zero_shot'))
        after = read_test_metrics(osp.join(args.work_dir, 'test'))
        curve = val_curve(args.work_dir)
        with open(osp.join(args.work_dir, 'bilevel_split.json')) as f:
            split = json.load(f)
    except (RunError, OSError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    shots = sum(len(split[k]) for k in ('d1', 'd2') if isinstance(split.get(k), list))
    print('\n=== AM-SAM demo: few-shot transfer to a held-out domain of the shapes world ===')
    print(f'YOLO prompts (test): {prompts_line(after)}')
    print(f'test Dice before training (zero-shot: toy SAM + YOLO box): {before["mDice"]:6.2f}')
    print(f'test Dice after {shots}-shot bi-level training (best on D2):     {after["mDice"]:6.2f}')
    print('D2 Dice per epoch: ' + ', '.join(f'{e}: {v:.1f}' for e, v in curve))
    return 0


if __name__ == '__main__':
    sys.exit(main())
