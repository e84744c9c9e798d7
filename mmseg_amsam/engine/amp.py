"""``--amp``: mixed precision for the forward passes and the lower level; the unrolled hypergradient stays fp32."""
from mmengine.config import Config


def enable_amp(cfg: Config, dtype: str = 'float16') -> None:
    """Switch a config's optim wrapper(s) to mmengine's ``AmpOptimWrapper`` (CUDA only, as mmengine requires).

    Bi-level configs: the lower level always; the upper level only in first-order mode -- the unrolled
    hypergradient (virtual step + finite-difference Hessian-vector product) is computed in fp32 because the
    finite difference of two nearly equal fp16 gradients would be mostly rounding error.
    """
    ow = cfg.optim_wrapper
    amp = dict(type='AmpOptimWrapper', dtype=dtype, loss_scale='dynamic')
    if ow.get('constructor') == 'BiLevelOptimWrapperConstructor':
        ow['lower'].update(amp)
        unrolled = cfg.model.get('train_cfg', {}).get('unrolled', False)
        if not unrolled:
            ow['upper'].update(amp)
    else:
        ow.update(amp)
