import os
import os.path as osp
import sys

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault('YOLO_VERBOSE', 'False')
os.environ.setdefault('YOLO_OFFLINE', '1')

import mmseg_amsam  # noqa: E402,F401  register everything
from mmseg.utils import register_all_modules  # noqa: E402

register_all_modules(init_default_scope=True)

torch.set_num_threads(2)


@pytest.fixture(scope='session')
def root():
    return ROOT


@pytest.fixture(scope='session')
def demo_root(tmp_path_factory):
    """The generated demo dataset (small), shared by the tests that need real files."""
    from mmseg_amsam.datasets.demo_shapes import generate_demo_dataset
    path = str(tmp_path_factory.mktemp('demo_shapes'))
    generate_demo_dataset(path, num_train=4, num_test=2, size=96, seed=0)
    return path
