"""What users and tools/ call: inference (PyTorch; ONNX export and ONNX Runtime), drawing, official-checkpoint
files, run logs, run configs."""
from .checkpoint_files import KNOWN_FILES, ChecksumError, KnownFile, download, verify_file
from .cli_errors import held_console, is_user_error, run_cli, user_message
from .inferencer import AMSAMInferencer, ImageLoadError, InferenceResult
from .onnx_export import check_exportable, export_from_config, export_model
from .onnx_inference import ONNXInferencer, ONNXSegmentor
from .onnx_manifest import ExportIntegrityError, read_manifest
from .prerequisites import Prerequisite, PrerequisitesError, check_prerequisites, missing_prerequisites
from .run_config import load_run_config
from .run_logs import RunError, find_test_runs, parse_experiment, val_curve

__all__ = ['AMSAMInferencer', 'ImageLoadError', 'InferenceResult', 'KNOWN_FILES', 'ChecksumError', 'KnownFile',
           'download', 'verify_file', 'load_run_config', 'RunError', 'find_test_runs', 'parse_experiment',
           'val_curve', 'held_console', 'is_user_error', 'run_cli', 'user_message', 'Prerequisite',
           'PrerequisitesError', 'check_prerequisites', 'missing_prerequisites', 'check_exportable',
           'export_from_config', 'export_model', 'ONNXInferencer', 'ONNXSegmentor', 'ExportIntegrityError',
           'read_manifest']
