"""The informative line of a library's error, for our one-line messages: torch's weights-only advice (load with
``weights_only=False``, or allowlist the named global: both would run the file's code) is left out, and so are
ANSI colour codes and ultralytics' emoji."""
import re

ANSI = re.compile(r'\x1b\[[0-9;]*m')


def error_summary(exc: BaseException, limit: int = 200) -> str:
    """``'TypeName: first informative line'`` of ``exc``, on one line."""
    text = ANSI.sub('', str(exc)).replace('ERROR ❌️', '').strip()
    if 'WeightsUnpickler error:' in text:
        text = text.split('WeightsUnpickler error:', 1)[1]
        text = re.split(r'Please use|Check the documentation of torch\.load', text)[0]
    elif 'Weights only load failed' in text:
        text = 'the file names objects outside the weights-only allow-list'
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    detail = lines[0] if lines else ('the file ends early' if isinstance(exc, EOFError) else 'no details')
    return f'{type(exc).__name__}: {detail[:limit]}'
