"""What the proxy's Python callables accept.

``validator`` and ``bucket_creds_fetcher`` are called with ``(token,
bucket)``; identity-aware ones, those that also accept ``method``, ``key``
or ``operation`` (or ``**kwargs``), get those as keyword arguments, and the
proxy caches their answers per request shape instead of per bucket.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Tuple

# The keyword arguments identity-aware callables may take.
IDENTITY_ARGS: Tuple[str, ...] = ("method", "key", "operation")
IDENTITY_KINDS = ("validator", "bucket_creds_fetcher")


def identity_args(kind: str, fn: Callable[..., Any]) -> Tuple[str, ...]:
    """Which of method, key and operation ``fn`` accepts (all of them for a
    ``**kwargs`` callable); two-argument callables get none."""
    if kind not in IDENTITY_KINDS:
        return ()
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):  # builtins without a signature
        return ()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return IDENTITY_ARGS
    # The first two parameters receive token and bucket, whatever their names.
    names = {p.name for p in params[2:] if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}
    names |= {p.name for p in params[:2] if p.kind is inspect.Parameter.KEYWORD_ONLY}
    return tuple(a for a in IDENTITY_ARGS if a in names)




def callable_name(fn: Callable[..., Any]) -> str:
    """The callable's qualified name, for messages and reprs
    (functools.partial and callable objects have no __qualname__ of their
    own)."""
    name = getattr(fn, "__qualname__", None)
    return name if isinstance(name, str) else type(fn).__qualname__
