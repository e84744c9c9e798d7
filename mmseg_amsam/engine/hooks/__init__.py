from .data_check_hook import DataCheckHook
from .embedding_cache_hook import EmbeddingCacheHook
from .num_classes_check_hook import NumClassesCheckHook
from .trainable_only_checkpoint_hook import TrainableOnlyCheckpointHook
from .prompt_telemetry_hook import PromptTelemetryHook
from .safe_checkpoint_hook import SafeCheckpointHook

__all__ = ['DataCheckHook', 'EmbeddingCacheHook', 'NumClassesCheckHook', 'TrainableOnlyCheckpointHook',
           'PromptTelemetryHook', 'SafeCheckpointHook']
