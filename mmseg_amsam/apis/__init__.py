from .inferencer import AMSAMInferencer, ImageLoadError, InferenceResult

__all__ = ['AMSAMInferencer', 'ImageLoadError', 'InferenceResult']
