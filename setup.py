from setuptools import find_packages, setup

setup(
    name='mmseg-amsam',
    version='0.1.0',
    description='AM-SAM (automated prompting and mask calibration for SAM) as an mmsegmentation plugin',
    packages=find_packages(include=['mmseg_amsam', 'mmseg_amsam.*']),
    python_requires='>=3.10',
    # mmcv must be built with ops (MMCV_WITH_OPS=1); tools/setup_env.sh does it.
    install_requires=[
        'torch>=2.1,<2.10', 'mmcv>=2.0.0,<2.2.0', 'mmengine>=0.10', 'mmsegmentation==1.2.*', 'mmdet>=3.0',
        'segment-anything>=1.0', 'ultralytics>=8.4,<8.5', 'numpy',
    ],
)
