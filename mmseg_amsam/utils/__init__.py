"""Utilities for users of the plugin (not registered components)."""
from .checkpoints import KNOWN_FILES, ChecksumError, KnownFile, download, verify_file
from .runs import RunError, parse_experiment, find_test_runs, val_curve

__all__ = ['KNOWN_FILES', 'ChecksumError', 'KnownFile', 'download', 'verify_file', 'RunError', 'parse_experiment',
           'find_test_runs', 'val_curve']
