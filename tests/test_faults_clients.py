"""Clients that go away or crawl (see faultclient.py for the suite): a
client that crashes mid-upload or mid-download, one that trickles its
headers, one that stalls its body.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any, Callable, List, Optional, Tuple

import pytest

from faultclient import MiB, call, ok, rst_close, signed_head, wait_cut
from helpers import object_exists, stored_body, stored_keys
from leakguard import LEAK_WAIT, LeakGuard, goroutines, sockets_to
from observe import eventually


@pytest.mark.parametrize("payload_hash, target", [
    pytest.param(None, "object", id="sha256-object"),
    pytest.param("UNSIGNED-PAYLOAD", "object", id="unsigned-object"),
    pytest.param("UNSIGNED-PAYLOAD", "part", id="unsigned-part"),
])
def test_client_reset_mid_upload_stores_nothing(start_proxy: Callable[..., Any], backend: Any, bucket: str,
                                                direct: Any, leaks: LeakGuard, payload_hash: Optional[str],
                                                target: str) -> None:
    """A client that crashes (RST) after 2 MiB of an 8 MiB PUT, straight to
    versitygw through the proxy: the older object stays as it was, no part
    is recorded for an UploadPart, and the proxy lets go of its versitygw
    connection (no goroutine or descriptor left). (test_objects and
    test_streaming cover a graceful close of unsigned and aws-chunked
    bodies.)"""
    direct.put_object(Bucket=bucket, Key="obj", Body=b"the older version")
    upload_id = direct.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    proxy = start_proxy(bucket)
    ok(call(proxy, "GET", f"/{bucket}/obj"))
    to_backend = sockets_to(backend.port)
    leaks.baseline(proxy)

    body = os.urandom(8 * MiB)
    path = f"/{bucket}/obj" if target == "object" else f"/{bucket}/mp?partNumber=1&uploadId={upload_id}"
    sock = socket.create_connection(("127.0.0.1", proxy.http_port), timeout=10)
    sock.sendall(signed_head(proxy, "PUT", path, body=body, payload_hash=payload_hash))
    sock.sendall(body[: 2 * MiB])
    time.sleep(0.3)
    assert sockets_to(backend.port) > to_backend, "the upload was not on its way to versitygw"
    rst_close(sock)
    _wait_backend_sockets_back(backend, to_backend)
    leaks.check()

    assert stored_body(direct, bucket, "obj") == b"the older version"
    assert stored_keys(direct, bucket) == ["obj"]
    assert direct.list_parts(Bucket=bucket, Key="mp", UploadId=upload_id).get("Parts", []) == []


def test_client_disconnect_mid_download_of_64mib(start_proxy: Callable[..., Any], backend: Any, bucket: str,
                                                 direct: Any, leaks: LeakGuard) -> None:
    """A client that reads 1 MiB of a 64 MiB GET and then drops the
    connection: the proxy closes its versitygw connection too (it does not
    read the remaining 63 MiB into nowhere, nor keep the socket), and is
    back to its goroutine and descriptor baseline."""
    data = os.urandom(64 * MiB)
    direct.put_object(Bucket=bucket, Key="big", Body=data)
    direct.put_object(Bucket=bucket, Key="small", Body=b"small")
    proxy = start_proxy(bucket)
    ok(call(proxy, "GET", f"/{bucket}/small"))
    to_backend = sockets_to(backend.port)
    leaks.baseline(proxy)

    sock = socket.create_connection(("127.0.0.1", proxy.http_port), timeout=10)
    sock.sendall(signed_head(proxy, "GET", f"/{bucket}/big"))
    received = 0
    while received < 1 * MiB:
        chunk = sock.recv(65536)
        assert chunk, "the proxy closed before 1 MiB"
        received += len(chunk)
    assert sockets_to(backend.port) > to_backend, "no connection to versitygw during the download?"
    rst_close(sock)
    _wait_backend_sockets_back(backend, to_backend)
    leaks.check()
    assert ok(call(proxy, "GET", f"/{bucket}/small")).content == b"small"


def test_trickled_headers_are_cut_off(start_proxy: Callable[..., Any], bucket: str, leaks: LeakGuard) -> None:
    """A client that keeps sending header bytes (one every 0.1 s) but never
    ends its head is cut off by client_header_timeout (a deadline for the
    whole head, not an idle timer a trickle could keep resetting); others
    are served meanwhile and afterwards."""
    proxy = start_proxy(bucket, client_header_timeout=1)
    ok(call(proxy, "GET", f"/{bucket}?list-type=2"))
    leaks.baseline(proxy)

    sock = socket.create_connection(("127.0.0.1", proxy.http_port), timeout=5)
    try:
        sock.sendall(f"GET /{bucket}/k HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ".encode())
        holder: List[Tuple[Optional[float], bytes]] = []
        watcher = threading.Thread(target=lambda: holder.append(wait_cut(sock, 6.0, trickle=b"a", every=0.1)))
        watcher.start()
        time.sleep(0.3)
        ok(call(proxy, "GET", f"/{bucket}?list-type=2"))  # served while the trickle goes on
        watcher.join(8)
        [(cut_after, answer)] = holder
    finally:
        sock.close()
    assert cut_after is not None, "a client trickling its headers for 6 s was never cut off"
    assert cut_after < 3.0, f"cut off after {cut_after:.1f}s with client_header_timeout=1"
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer[:200]
    leaks.check()
    ok(call(proxy, "GET", f"/{bucket}?list-type=2"))


@pytest.mark.parametrize("stall", ["before-body", "mid-body"])
def test_stalled_body_is_cut_off(start_proxy: Callable[..., Any], backend: Any, bucket: str, direct: Any,
                                 leaks: LeakGuard, stall: str) -> None:
    """A client that sends the head of a 1 MiB PUT (and maybe 256 KiB of it)
    and then nothing is an idle client connection: with client_idle_timeout
    = 1 it is cut off within a few seconds (a closed connection or an S3
    400 RequestTimeout), rather than holding a goroutine and a versitygw
    connection for as long as it likes; nothing is stored."""
    proxy = start_proxy(bucket, client_header_timeout=1, client_idle_timeout=1)
    ok(call(proxy, "GET", f"/{bucket}?list-type=2"))
    to_backend = sockets_to(backend.port)
    leaks.baseline(proxy)

    body = os.urandom(1 * MiB)
    sock = socket.create_connection(("127.0.0.1", proxy.http_port), timeout=5)
    try:
        sock.sendall(signed_head(proxy, "PUT", f"/{bucket}/stalled", body=body))
        if stall == "mid-body":
            sock.sendall(body[: 256 * 1024])
        cut_after, answer = wait_cut(sock, 5.0)
        held = (f"{goroutines(proxy.admin_url) - leaks.goroutines} goroutine(s) and "
                f"{sockets_to(backend.port) - to_backend} versitygw connection(s) above the baseline")
    finally:
        sock.close()
    assert cut_after is not None, f"a client silent for 5 s in the middle of its request was never cut off; {held}"
    assert cut_after < 4.0, f"cut off after {cut_after:.1f}s with client_idle_timeout=1"
    if answer:
        status_line = answer.split(b"\r\n", 1)[0]
        assert status_line.split(b" ")[1] in (b"400", b"408"), answer[:300]
        assert b"<Code>RequestTimeout</Code>" in answer, answer[:500]
    leaks.check()
    assert not object_exists(direct, bucket, "stalled")


def _wait_backend_sockets_back(backend: Any, to_backend: int) -> None:
    """Waits until the proxy holds no more versitygw connections than
    to_backend (the count before the client went away)."""
    eventually(lambda: _assert(sockets_to(backend.port) <= to_backend,
                               f"{sockets_to(backend.port)} connections to versitygw, {to_backend} before"),
               timeout=LEAK_WAIT)


def _assert(condition: bool, message: str) -> None:
    assert condition, message
