"""The embedded default learns: from the committed toy SAM / YOLO (toy_world/), a short bi-level run on the demo's
4 shots raises the Dice on D2 far above the untrained model's, as `make demo` shows at full length."""
import json

from mmengine.hooks import Hook
from mmengine.runner import Runner

from cfg_helpers import demo_cfg
from mmseg_amsam.datasets import generate_demo_dataset

EPOCHS = 3
# measured on a 2-core x86_64 CPU (data/demo_shapes' 4 training images, D2 = train_002, train_003): D2 Dice
# untrained 82.8, after epoch 3 90.0 (lower lr 2e-4, configs/amsam_demo.py)
MARGIN = 5.0


class D2DiceBeforeTraining(Hook):
    """The Dice of the model as built on D2 (the bi-level loop has pointed the val loop at D2 by now)."""

    def before_train(self, runner):
        loop = runner.val_loop
        runner.model.eval()
        for batch in loop.dataloader:
            loop.evaluator.process(runner.model.val_step(batch), batch)
        self.dice = loop.evaluator.evaluate(len(loop.dataloader.dataset))['mDice']
        runner.model.train()


def test_four_shot_bilevel_run_raises_d2_dice_over_the_untrained_model(tmp_path):
    root = generate_demo_dataset(tmp_path / 'demo', num_train=4, num_test=1)
    cfg = demo_cfg(root, tmp_path / 'work', img_size=128, max_epochs=EPOCHS, val_interval=1)
    cfg.model.prompter.imgsz = 128  # the toy YOLO's own size (demo_cfg shrinks it for speed)
    runner = Runner.from_cfg(cfg)
    before = D2DiceBeforeTraining()
    runner.register_hook(before)
    runner.train()
    assert json.load(open(tmp_path / 'work' / 'bilevel_split.json'))['d2'] == ['train_002.png', 'train_003.png']
    after = runner.message_hub.get_scalar('val/mDice').current()
    print(f'D2 Dice untrained {before.dice:.1f}, after {EPOCHS} epochs {after:.1f}')
    assert after >= before.dice + MARGIN, (before.dice, after)
