"""ProxyServer lifecycle as an embedding application sees it."""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import threading
import time
from typing import Any, Callable

import pytest

from helpers import CLIENT_ACCESS_KEY, CLIENT_KEYSTORE, CLIENT_SECRET_KEY, make_client, sign_request, stored_body
from object_storage_proxy import ProxyServer, ProxyServerConfig


def _config(backend: Any, bucket: str, **options: Any) -> ProxyServerConfig:
    options.setdefault("http_port", 0)
    return ProxyServerConfig({bucket: backend.entry()}, hmac_keystore=dict(CLIENT_KEYSTORE),
                             bind_address="127.0.0.1", **options)


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_context_manager_serves_then_stops(backend: Any, direct: Any, bucket: str) -> None:
    with ProxyServer(_config(backend, bucket)) as server:
        port = server.http_port
        assert port and server.endpoint_url == f"http://127.0.0.1:{port}"
        make_client(server.endpoint_url, CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY).put_object(
            Bucket=bucket, Key="k", Body=b"served")
    assert stored_body(direct, bucket, "k") == b"served"
    assert server.http_port is None
    assert not _accepts(port)


def test_port_zero_picks_distinct_free_ports(start_proxy: Callable[..., Any], bucket: str) -> None:
    a, b = start_proxy(bucket), start_proxy(bucket)
    assert a.http_port != b.http_port
    assert _accepts(a.http_port) and _accepts(b.http_port)


def test_port_in_use_is_an_error(backend: Any, bucket: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        server = ProxyServer(_config(backend, bucket, http_port=port))
        with pytest.raises(RuntimeError):
            server.start()
        assert server.http_port is None


def test_start_twice_is_an_error_and_stop_is_idempotent(backend: Any, bucket: str) -> None:
    server = ProxyServer(_config(backend, bucket))
    server.start()
    try:
        with pytest.raises(RuntimeError):
            server.start()
    finally:
        server.stop()
    server.stop()


def test_restart_after_stop(backend: Any, direct: Any, bucket: str) -> None:
    server = ProxyServer(_config(backend, bucket, validator=lambda token, b: True))
    server.start()
    server.stop()
    server.start()
    try:
        make_client(server.endpoint_url, CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY).put_object(
            Bucket=bucket, Key="again", Body=b"restarted")
    finally:
        server.stop()
    assert stored_body(direct, bucket, "again") == b"restarted"


def test_graceful_stop_during_a_download(start_proxy: Callable[..., Any], direct: Any, bucket: str) -> None:
    """stop() closes the listener at once but lets a download that is under
    way finish, byte for byte, before it returns."""
    body = os.urandom(32 * 1024 * 1024)
    direct.put_object(Bucket=bucket, Key="big", Body=body)
    server = start_proxy(bucket)
    url = f"{server.endpoint_url}/{bucket}/big"
    headers = sign_request("GET", url)
    conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=30)
    conn.putrequest("GET", f"/{bucket}/big", skip_host=True, skip_accept_encoding=True)
    for name, value in {**headers, "Host": f"127.0.0.1:{server.http_port}"}.items():
        conn.putheader(name, value)
    conn.endheaders()
    response = conn.getresponse()
    assert response.status == 200
    received = bytearray(response.read(1024 * 1024))

    stopper = threading.Thread(target=server.stop, kwargs={"timeout": 20})
    stopper.start()
    time.sleep(0.3)
    with pytest.raises(OSError):  # the listener is closed: nothing new gets in
        socket.create_connection(("127.0.0.1", server.http_port), timeout=1).close()
    assert stopper.is_alive(), "stop() returned while a download was still running"
    while chunk := response.read(256 * 1024):
        received += chunk
        time.sleep(0.001)
    conn.close()
    stopper.join(timeout=20)
    assert not stopper.is_alive()
    assert hashlib.sha256(received).digest() == hashlib.sha256(body).digest()
