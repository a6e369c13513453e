"""Process-wide request counting, as in the original project.

Counting is off by default; while on, every request the proxy serves (from
any server in this process) adds one.
"""

from __future__ import annotations

from . import _native


def enable_request_counting() -> None:
    _native.set_request_counting(True)


def disable_request_counting() -> None:
    """Stops counting; the count so far is kept."""
    _native.set_request_counting(False)


def get_request_count() -> int:
    return _native.get_request_count()


def reset_request_count() -> None:
    _native.reset_request_count()
