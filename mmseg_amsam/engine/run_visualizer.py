"""The visualizer of our configs: mmseg's ``SegLocalVisualizer``, one per run, and still buildable without a Runner.

mmengine keeps one visualizer per *name* and process (``ManagerMixin.get_instance`` returns the existing one and
ignores the new ``save_dir``). A fixed ``name`` in the config would make two runs in one process (the tests,
``tools/toy_table.py``) share the first run's visualizer and write into its folder; so the config names none and
mmengine's Runner names it after the run (``Runner.build_visualizer``: ``name=experiment_name``). Clients that
build ``cfg.visualizer`` themselves (mmseg's ``tools/analysis_tools/browse_dataset.py``:
``VISUALIZERS.build(cfg.visualizer)``) give no name, which ``SegLocalVisualizer.get_instance`` requires: they get
mmseg's usual name, :data:`DEFAULT_NAME`.
"""
from mmseg.registry import VISUALIZERS
from mmseg.visualization import SegLocalVisualizer

DEFAULT_NAME = 'visualizer'  # the name mmseg's own configs give


@VISUALIZERS.register_module(name='RunSegLocalVisualizer')
def run_seg_local_visualizer(name: str = DEFAULT_NAME, **kwargs) -> SegLocalVisualizer:
    """``SegLocalVisualizer.get_instance(name, **kwargs)``; ``name`` defaults to :data:`DEFAULT_NAME` (module doc)."""
    return SegLocalVisualizer.get_instance(name, **kwargs)
