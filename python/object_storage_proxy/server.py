"""ProxyServer (non-blocking) and start_server (blocking, as in the original)."""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import threading
from types import FrameType, TracebackType
from typing import Any, Callable, Dict, List, Optional, Tuple, Type

from . import _native
from .config import ProxyServerConfig

logger = logging.getLogger("object_storage_proxy")

# Bind addresses that a local client reaches as the loopback address.
_LOCAL_BINDS = {"0.0.0.0": "127.0.0.1", "127.0.0.1": "127.0.0.1", "::": "::1", "::1": "::1"}


def _tls_paths(config: ProxyServerConfig) -> Tuple[Optional[str], Optional[str]]:
    """The certificate and key for an HTTPS listener: from the config, else
    from TLS_CERT_PATH / TLS_KEY_PATH (as the original, which read them from
    the environment or .env)."""
    if config.https_port is None:
        return config.tls_cert_path, config.tls_key_path
    cert = config.tls_cert_path or os.environ.get("TLS_CERT_PATH") or None
    key = config.tls_key_path or os.environ.get("TLS_KEY_PATH") or None
    if cert is None or key is None:
        raise ValueError(
            "https_port needs a TLS certificate and key: set tls_cert_path/tls_key_path "
            "or the TLS_CERT_PATH/TLS_KEY_PATH environment variables"
        )
    return cert, key


def _url_host(bind: str) -> str:
    """The host part of a URL that reaches a listener bound to ``bind``
    from this host."""
    host = _LOCAL_BINDS.get(bind, bind)
    try:
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    except ValueError:
        pass  # a host name
    return host


class ProxyServer:
    """A proxy server running in the background of this process.

    ``start()`` returns once the listeners are bound; ``stop()`` shuts it down
    gracefully. As a context manager it runs for the ``with`` block. A server
    still running when the interpreter exits is stopped then.
    """

    def __init__(self, config: ProxyServerConfig) -> None:
        if not isinstance(config, ProxyServerConfig):
            raise TypeError(f"config: expected ProxyServerConfig, got {type(config).__name__}")
        self._config = config
        self._lock = threading.Lock()
        self._handle: Optional[int] = None
        self._ports: Dict[str, Optional[int]] = {}
        self._bind = config.bind_address
        self._admin_bind = config.admin_bind
        # kind -> (callable, id) registered for the running server.
        self._registered: Dict[str, Tuple[Callable[..., Any], int]] = {}

    @property
    def config(self) -> ProxyServerConfig:
        return self._config

    @property
    def running(self) -> bool:
        return self._handle is not None

    def start(self) -> None:
        """Validates the config and starts serving. Raises ValueError or
        TypeError for a bad config, RuntimeError if the proxy cannot start
        (e.g. a port in use) or is already running."""
        with self._lock:
            if self._handle is not None:
                raise RuntimeError("server is already running")
            config = self._config
            document, registered, fresh = self._prepare(config, {})
            handle = _native.start(document, fresh)  # owns the ids from here, even on failure
            try:
                self._ports = _native.ports(handle)
            except BaseException:
                _native.stop(handle, 0)
                raise
            self._handle = handle
            self._bind = config.bind_address
            self._admin_bind = config.admin_bind
            self._registered = registered

    @staticmethod
    def _prepare(
        config: ProxyServerConfig, current: Dict[str, Tuple[Callable[..., Any], int]]
    ) -> Tuple[str, Dict[str, Tuple[Callable[..., Any], int]], List[int]]:
        """Validates ``config`` and registers its callables: the native JSON,
        kind -> (callable, id), and the ids registered here. A callable that
        is the very object ``current`` has for its kind keeps its id."""
        config.validate()
        cert, key = _tls_paths(config)
        registered: Dict[str, Tuple[Callable[..., Any], int]] = {}
        fresh: List[int] = []
        try:
            for kind, fn in config.callables().items():
                previous = current.get(kind)
                if previous is not None and previous[0] is fn:
                    registered[kind] = previous
                else:
                    registered[kind] = (fn, _native.register(kind, fn))
                    fresh.append(registered[kind][1])
            ids = {kind: callable_id for kind, (_, callable_id) in registered.items()}
            document = config.to_native_json(ids, tls_cert_path=cert, tls_key_path=key)
        except BaseException:
            _native.unregister(fresh)
            raise
        return document, registered, fresh

    def reload(self, config: ProxyServerConfig) -> None:
        """Swaps the running server's configuration for ``config``: cos_map,
        keystore, TTLs, callables, timeouts, logging and the other settings,
        except the listeners (ports, bind address, TLS files), which cannot
        change without a restart, and ``threads``, set at start. The admin
        listener cannot move either. Requests in flight finish with the
        configuration they started with; new requests get the new one, with
        empty caches of callable answers: a client key the hmac_fetcher no
        longer knows (or a validator now refuses) is refused from the next
        request on.

        A callable that is the very object the running config has keeps its
        registration; replaced ones stay callable for a while for requests
        that began before the reload (see ``_native.RETIRE_AFTER``).

        Raises TypeError or ValueError for a bad config or one that moves
        the listeners, RuntimeError if the server is not running; the server
        then keeps its old configuration. On success ``self.config`` is
        ``config``."""
        if not isinstance(config, ProxyServerConfig):
            raise TypeError(f"config: expected ProxyServerConfig, got {type(config).__name__}")
        with self._lock:
            handle = self._handle
            if handle is None:
                raise RuntimeError("server is not running")
            document, registered, _ = self._prepare(config, self._registered)
            # The server owns the new ids from here (or, on failure, they
            # are dropped); the old ones it no longer uses are retired.
            _native.reload(handle, document, [callable_id for _, callable_id in registered.values()])
            self._config = config
            self._registered = registered

    def stop(self, timeout: float = 10.0) -> None:
        """Stops the server: listeners close at once, in-flight requests get
        up to ``timeout`` seconds. Does nothing if it is not running."""
        if timeout < 0:
            raise ValueError("timeout: must be >= 0")
        with self._lock:
            handle, self._handle = self._handle, None
            if handle is None:
                return
            self._registered = {}
            problem = _native.stop(handle, timeout)
        if problem:
            # Stopped all the same (e.g. requests cut at the timeout): say so, don't raise.
            logger.warning("server stopped uncleanly: %s", problem)

    def _port(self, key: str) -> Optional[int]:
        return self._ports.get(key) if self._handle is not None else None

    @property
    def http_port(self) -> Optional[int]:
        """The bound HTTP port (a 0 in the config resolved), None when not
        running or not configured."""
        return self._port("http_port")

    @property
    def https_port(self) -> Optional[int]:
        """The bound HTTPS port, None when not running or not configured."""
        return self._port("https_port")

    @property
    def admin_port(self) -> Optional[int]:
        """The bound port of the admin listener (healthz, readyz, metrics),
        None when not running or without ``admin_port``."""
        return self._port("admin_port")

    @property
    def admin_url(self) -> Optional[str]:
        """``http://host:port`` of the admin listener, None without one."""
        port = self.admin_port
        if port is None:
            return None
        return f"http://{_url_host(self._admin_bind)}:{port}"

    @property
    def endpoint_url(self) -> str:
        """The URL a client on this host uses: HTTP if there is an HTTP
        listener, else HTTPS. Raises RuntimeError when not running."""
        if self.http_port is not None:
            scheme, port = "http", self.http_port
        elif self.https_port is not None:
            scheme, port = "https", self.https_port
        else:
            raise RuntimeError("server is not running")
        return f"{scheme}://{_url_host(self._bind)}:{port}"

    def __enter__(self) -> "ProxyServer":
        self.start()
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"running at {self.endpoint_url}" if self.running else "stopped"
        return f"<ProxyServer {state}>"


def _load_dotenv() -> None:
    """Loads ./.env like the original (TLS_CERT_PATH and friends). The
    current directory, not this package's: dotenv's default search starts at
    the calling file. Variables already set win."""
    try:
        from dotenv import find_dotenv, load_dotenv
    except ImportError:
        logger.debug("python-dotenv is not installed; .env not loaded")
        return
    load_dotenv(find_dotenv(usecwd=True))


def start_server(config: ProxyServerConfig) -> None:
    """Starts the proxy and blocks until Ctrl+C or SIGTERM, then stops it
    gracefully. The original project's entry point."""
    _load_dotenv()
    server = ProxyServer(config)
    server.start()
    logger.info("object-storage-proxy listening on %s", server.endpoint_url)
    stopping = threading.Event()

    def on_sigterm(signum: int, frame: Optional[FrameType]) -> None:
        stopping.set()

    # signal.signal only works in the main thread; elsewhere the caller owns signals.
    previous: Any = None
    in_main = threading.current_thread() is threading.main_thread()
    if in_main:
        previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        # A timed wait keeps the main thread responsive to Ctrl+C.
        while not stopping.wait(0.5):
            pass
        logger.info("SIGTERM received, stopping")
    except KeyboardInterrupt:
        logger.info("interrupted, stopping")
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
        server.stop()
