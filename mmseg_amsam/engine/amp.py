"""``--amp``: mixed precision for the forward passes and the lower level; the unrolled hypergradient stays fp32."""
from mmengine.config import Config


def enable_amp(cfg: Config, dtype: str = 'float16') -> None:
    """Switch a config's optim wrapper(s) to mmengine's ``AmpOptimWrapper`` (CUDA only, as mmengine requires).

    Bi-level configs: the lower level always -- and the frozen parts (encoder, prompter; ~90 % of an uncached step)
    run under the lower level's autocast too (``bilevel_train_step``); the upper level only in first-order mode --
    the unrolled hypergradient (virtual step + Hessian-vector product) is computed in fp32: AdamW's update
    derivative reaches ``lr / eps`` for tiny gradients, which half precision cannot resolve.
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
