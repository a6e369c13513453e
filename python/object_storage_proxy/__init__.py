"""object-storage-proxy: an S3 reverse proxy that runs inside a Python process.

The proxy itself is Go (libosp.so, shipped in this package); this package
configures it, runs it and answers its callbacks (validator,
bucket_creds_fetcher, hmac_fetcher).
"""

from __future__ import annotations

from ._native import VERSION as __version__  # include/osp.h's OSP_VERSION
from .config import ProxyServerConfig
from .counting import (
    disable_request_counting,
    enable_request_counting,
    get_request_count,
    reset_request_count,
)
from .server import ProxyServer, start_server

__all__ = [
    "ProxyServer",
    "ProxyServerConfig",
    "__version__",
    "disable_request_counting",
    "enable_request_counting",
    "get_request_count",
    "reset_request_count",
    "start_server",
]
