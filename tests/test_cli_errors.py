"""tools/train.py, test.py, infer.py, download_checkpoints.py on bad input: one message on stderr naming the file or
config field and the fix, exit code 2, nothing else printed; the traceback only with --debug (issue 11: 4, 8, 9)."""
import os
import os.path as osp
import subprocess
import sys
from functools import partial

import pytest
import torch
from segment_anything.modeling import ImageEncoderViT
from torch import nn

from cfg_helpers import ROOT, demo_cfg, load_tool
from mmseg_amsam.apis.cli_errors import is_user_error, run_cli
from mmseg_amsam.apis.prerequisites import Prerequisite, missing_prerequisites
from mmseg_amsam.datasets.demo_shapes import generate_demo_dataset
from mmseg_amsam.engine.trainable_checkpoint import FrozenWeightsError
from test_sam_checkpoint import tiny_sam_1024

ISIC_4SHOT = osp.join(ROOT, 'configs', 'amsam_isic_4shot.py')
ISIC_PREPARE = 'python tools/dataset_converters/isic2018.py /path/to/ISIC2018 data/isic2018'


@pytest.fixture(scope='module')
def demo_config(demo_root, tmp_path_factory):
    tmp = tmp_path_factory.mktemp('cli_errors')
    cfg = demo_cfg(demo_root, tmp / 'work')
    path = str(tmp / 'demo_small.py')
    cfg.dump(path)
    return path


@pytest.fixture(scope='module')
def sam_files(tmp_path_factory):
    """An official-layout SAM checkpoint of the tiny arch, and one whose image encoder has another width."""
    tmp = tmp_path_factory.mktemp('sam_files')
    state = tiny_sam_1024().state_dict()
    tiny = str(tmp / 'sam_vit_b_01ec64.pth')
    torch.save(state, tiny)
    narrow = ImageEncoderViT(img_size=1024, patch_size=16, embed_dim=32, depth=2, num_heads=2, out_chans=256,
                             qkv_bias=True, norm_layer=partial(nn.LayerNorm, eps=1e-6), use_rel_pos=True,
                             global_attn_indexes=(1, ), window_size=4)
    state = {k: v for k, v in state.items() if not k.startswith('image_encoder.')}
    state.update({f'image_encoder.{k}': v for k, v in narrow.state_dict().items()})
    wrong = str(tmp / 'sam_other_arch.pth')
    torch.save(state, wrong)
    return tiny, wrong


def one_message(capsys):
    """What the tool printed: nothing on stdout, one `error: ...` message (possibly several lines) on stderr."""
    out, err = capsys.readouterr()
    assert out == ''
    assert err.startswith('error: ') and 'Traceback' not in err
    return err[len('error: '):]


# ------------------------------------------------------------------ 4: a SAM file given as the trained checkpoint
def test_test_refuses_a_sam_file_as_trained_checkpoint(demo_config, sam_files, tmp_path, capsys):
    tool = load_tool('test')
    sam, _ = sam_files
    argv = [demo_config, sam, '--work-dir', str(tmp_path / 'work'), '--out', str(tmp_path / 'masks')]
    assert run_cli(tool.main, argv) == 2
    message = one_message(capsys)
    assert message.startswith(f'{sam} lacks the trained weights of this model: ') and 'decode_head (' in message
    assert 'official SAM checkpoint' in message and 'model.sam_checkpoint' in message
    assert message.count('\n') == 1  # one line
    assert not (tmp_path / 'masks').exists()  # nothing was evaluated or written
    with pytest.raises(FrozenWeightsError, match='lacks the trained weights'):  # --debug: the exception itself
        run_cli(tool.main, argv + ['--debug'])


def test_infer_refuses_a_sam_file_and_writes_nothing(demo_config, demo_root, sam_files, tmp_path, capsys):
    infer = load_tool('infer')
    sam, _ = sam_files
    out = tmp_path / 'out'
    assert run_cli(infer.main, [demo_config, sam, osp.join(demo_root, 'img_dir', 'test'), '--out', str(out)]) == 2
    _, err = capsys.readouterr()
    assert err.startswith(f'error: {sam} lacks the trained weights of this model') and 'Traceback' not in err
    assert not out.exists()


# ------------------------------------------------------------------ 5 through the tools: damaged checkpoints
def test_test_refuses_a_damaged_checkpoint(demo_config, tmp_path, capsys):
    bad = tmp_path / 'epoch_3.pth'
    bad.write_bytes(os.urandom(3000))
    tool = load_tool('test')
    assert run_cli(tool.main, [demo_config, str(bad), '--work-dir', str(tmp_path / 'work')]) == 2
    message = one_message(capsys)
    assert message.startswith(f'{bad}: cannot be read as a checkpoint') and 'damaged' in message


# ------------------------------------------------------------------ 8: one message, exit code 2
def test_missing_config_file(tmp_path, capsys):
    for name in ('train', 'test'):
        tool = load_tool(name)
        argv = [str(tmp_path / 'amsam_isic_4shoot.py')] + (['none'] if name == 'test' else [])
        assert run_cli(tool.main, argv) == 2
        assert one_message(capsys) == (f"config file '{tmp_path / 'amsam_isic_4shoot.py'}' not found; the configs "
                                       'are in configs/ (e.g. configs/amsam_isic_4shot.py, configs/amsam_demo.py)\n')


def test_a_dict_in_cfg_options_is_one_message(demo_config, capsys):
    from mmseg_amsam.apis.cli_errors import CFG_OPTIONS_HINT
    tool = load_tool('train')
    config = demo_config  # its data exist: the string value reaches the model build
    for value, raised in (("dict(type='MaskBoxPrompter',fallback='none')", RecursionError),  # DictAction recurses
                          ("dict(type='MaskBoxPrompter')", TypeError)):  # kept as a string, refused at build
        argv = [config, '--cfg-options', f'model.prompter={value}']
        assert run_cli(tool.main, argv) == 2
        assert one_message(capsys) == f'{CFG_OPTIONS_HINT}\n'
        with pytest.raises(raised):
            run_cli(tool.main, argv + ['--debug'])


def test_wrong_sam_architecture_is_one_message_without_the_start_up_log(demo_config, sam_files, tmp_path, capsys):
    _, wrong = sam_files
    tool = load_tool('train')
    argv = [demo_config, '--work-dir', str(tmp_path / 'work'), '--cfg-options', f'model.sam_checkpoint={wrong}']
    assert run_cli(tool.main, argv) == 2
    message = one_message(capsys)  # the Runner's environment + config log (hundreds of lines) was held back
    assert message.startswith(f"'{wrong}' does not fit the SAM image encoder (tiny, 128 px): ")
    assert 'shape mismatches' in message and 'config `arch`' in message


def test_a_bad_split_file_is_one_message(demo_config, tmp_path, capsys):
    """Found when the dataset is built (the split file exists but names an image that does not)."""
    split = tmp_path / 'train_2shot.txt'
    split.write_text('nope\n')
    argv = [demo_config, '--work-dir', str(tmp_path / 'work'), '--cfg-options',
            f'train_dataloader.dataset.ann_file={split}']
    assert run_cli(load_tool('train').main, argv) == 2
    message = one_message(capsys)
    assert message.startswith(f"DemoShapesDataset: split file '{split}' lists 1 name(s) with no image ")
    assert message.endswith("['nope']\n")


def test_download_checkpoints_dir_that_is_a_file(tmp_path, capsys):
    tool = load_tool('download_checkpoints')
    target = tmp_path / 'checkpoints'
    target.write_text('not a folder')
    assert run_cli(tool.main, ['sam_vit_b', '--dir', str(target), '--no-progress']) == 2
    assert one_message(capsys) == f'--dir {target} is a file, not a folder; give the folder to download into\n'
    assert target.read_text() == 'not a folder'


def test_which_errors_are_user_errors(tmp_path):
    def raises(exc):
        def main(argv):
            raise exc
        return main

    with pytest.raises(RuntimeError, match='a bug'):  # not a known user error: its traceback
        run_cli(raises(RuntimeError('a bug')), [])
    with pytest.raises(ValueError):  # a ValueError from outside our code is not one of our checks
        run_cli(raises(ValueError('x')), [])
    with pytest.raises(ValueError) as ours:  # one raised by our code is (it names what to change)
        generate_demo_dataset(str(tmp_path / 'd'), num_train=0)
    assert is_user_error(ours.value)
    assert run_cli(raises(ours.value), []) == 2
    with pytest.raises(KeyboardInterrupt):
        run_cli(raises(KeyboardInterrupt()), [])
    from mmseg_amsam.models.prompters.yolo_weights import DetectorWeightsError
    from mmseg_amsam.utils.file_checks import UnreadableFilesError
    for refusal in (DetectorWeightsError('refused'), UnreadableFilesError('unreadable')):  # raised anywhere
        assert is_user_error(refusal) and run_cli(raises(refusal), []) == 2


# ------------------------------------------------------------------ 9: every missing prerequisite at once
def expected_isic_missing(phases):
    weights = [Prerequisite('model.sam_checkpoint', 'checkpoints/sam_vit_b_01ec64.pth',
                            'python tools/download_checkpoints.py sam_vit_b'),
               Prerequisite('model.prompter.model', 'checkpoints/yolov8n.pt',
                            'python tools/download_checkpoints.py yolov8n')]
    data = []
    for phase in phases:
        data.append(Prerequisite(f'{phase}_dataloader.dataset.data_root', 'data/isic2018', ISIC_PREPARE))
        if phase == 'train':
            data.append(Prerequisite('train_dataloader.dataset.ann_file', 'data/isic2018/splits/train_4shot.txt',
                                     'python tools/dataset_converters/make_fewshot_split.py data/isic2018 --shots 4'))
    return weights + data


def test_a_missing_sam2_checkpoint_is_fixed_by_its_official_download(tmp_path, monkeypatch):
    from mmengine.config import Config
    monkeypatch.chdir(tmp_path)
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'amsam-sam2_isic_8shot.py'))
    cfg.model.backbone.arch = 'hiera_s'
    cfg.model.sam_checkpoint = 'weights/sam2.1_hiera_small.pt'
    assert missing_prerequisites(cfg, ('train', ))[0] == Prerequisite(
        'model.sam_checkpoint', 'weights/sam2.1_hiera_small.pt', 'wget -P weights https://dl.fbaipublicfiles.com/'
        'segment_anything_2/092824/sam2.1_hiera_small.pt (or --cfg-options model.sam_checkpoint=PATH)')


def test_missing_prerequisites_lists_weights_data_and_split(tmp_path, monkeypatch):
    from mmengine.config import Config
    monkeypatch.chdir(tmp_path)  # nothing prepared here
    cfg = Config.fromfile(ISIC_4SHOT)
    assert missing_prerequisites(cfg, ('train', 'val')) == expected_isic_missing(('train', 'val'))
    assert missing_prerequisites(cfg, ('test', )) == expected_isic_missing(('test', ))
    # a prepared dataset without its split file: only the split (and the weights) remain
    for sub in ('img_dir/train', 'img_dir/test', 'ann_dir/train', 'ann_dir/test'):
        (tmp_path / 'data' / 'isic2018' / sub).mkdir(parents=True)
    assert missing_prerequisites(cfg, ('train', 'val')) == [
        p for p in expected_isic_missing(('train', 'val')) if not p.field.endswith('data_root')]
    # a half-prepared one: the missing folder, with the converter command
    (tmp_path / 'data' / 'isic2018' / 'ann_dir' / 'test').rmdir()
    assert missing_prerequisites(cfg, ('test', ))[2:] == [Prerequisite(
        'test_dataloader.dataset.data_prefix.seg_map_path', 'data/isic2018/ann_dir/test',
        f'data/isic2018 is not a complete prepared dataset; prepare it again: {ISIC_PREPARE}')]


def test_train_and_test_list_every_missing_file_before_building(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert run_cli(load_tool('train').main, [ISIC_4SHOT]) == 2
    assert one_message(capsys) == (
        '4 file(s) or folder(s) this config needs are missing (nothing was built):\n'
        '  model.sam_checkpoint = checkpoints/sam_vit_b_01ec64.pth\n'
        '      fix: python tools/download_checkpoints.py sam_vit_b\n'
        '  model.prompter.model = checkpoints/yolov8n.pt\n'
        '      fix: python tools/download_checkpoints.py yolov8n\n'
        '  train_dataloader.dataset.data_root, val_dataloader.dataset.data_root = data/isic2018\n'
        f'      fix: {ISIC_PREPARE}\n'
        '  train_dataloader.dataset.ann_file = data/isic2018/splits/train_4shot.txt\n'
        '      fix: python tools/dataset_converters/make_fewshot_split.py data/isic2018 --shots 4\n')
    assert os.listdir(tmp_path) == []  # no work dir, nothing written
    assert run_cli(load_tool('test').main, [ISIC_4SHOT, 'work_dirs/x/best.pth']) == 2
    message = one_message(capsys)
    assert message.startswith('4 file(s) or folder(s)')
    assert '  load_from = work_dirs/x/best.pth\n      fix: give a checkpoint tools/train.py wrote' in message
    assert f'  test_dataloader.dataset.data_root = data/isic2018\n      fix: {ISIC_PREPARE}\n' in message


def test_train_script_as_a_user_runs_it(tmp_path):
    """The real entry point (`python tools/train.py`): exit code 2, the message is all that is printed."""
    proc = subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'train.py'), ISIC_4SHOT], cwd=str(tmp_path),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stdout == ''
    assert proc.stderr.startswith('error: 4 file(s) or folder(s) this config needs are missing')
    assert 'model.sam_checkpoint' in proc.stderr and 'Traceback' not in proc.stderr
