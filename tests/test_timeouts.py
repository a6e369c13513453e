"""Client and backend timeouts: a slow client is cut off, a silent backend
gives the client a clear S3 error, and neither takes the server down."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any, Callable, Iterator, List

import pytest

from helpers import assert_s3_error, send_signed


@pytest.fixture
def silent_backend() -> Iterator[int]:
    """A TCP server that accepts requests and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: List[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                held.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_silent_backend_gives_gateway_timeout(start_proxy: Callable[..., Any], backend: Any,
                                              silent_backend: int) -> None:
    proxy = start_proxy(cos_map={"silent": backend.entry(port=silent_backend)}, backend_timeout=1)
    started = time.monotonic()
    response = send_signed("GET", f"{proxy.endpoint_url}/silent/k")
    assert_s3_error(response, 504, "GatewayTimeout")
    assert time.monotonic() - started < 5


def test_slow_client_headers_are_cut_off(start_proxy: Callable[..., Any], client_for: Callable[..., Any],
                                         bucket: str) -> None:
    proxy = start_proxy(bucket, client_header_timeout=1)
    slow = socket.create_connection(("127.0.0.1", proxy.http_port), timeout=5)
    slow.sendall(b"GET /" + bucket.encode() + b"/k HTTP/1.1\r\nHost: x\r\n")  # never finishes
    started = time.monotonic()
    answer = slow.recv(1024)  # raises socket.timeout after 5 s if the proxy keeps waiting
    closed_after = time.monotonic() - started
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer
    slow.close()
    assert closed_after < 4, "a client that never finished its headers was kept"
    # ... and keeps serving everyone else.
    client_for(proxy).list_objects_v2(Bucket=bucket)


def test_timeouts_are_checked() -> None:
    from object_storage_proxy import ProxyServerConfig

    entry = {"host": "127.0.0.1", "port": 9, "access_key": "a", "secret_key": "s"}
    for name in ("client_header_timeout", "client_idle_timeout", "backend_timeout"):
        with pytest.raises(ValueError):
            ProxyServerConfig({"b": entry}, http_port=0, **{name: 0})
        with pytest.raises(TypeError):
            ProxyServerConfig({"b": entry}, http_port=0, **{name: "30"})
