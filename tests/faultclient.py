"""The client side of the fault suite (faultbackend.py is the backend side;
leakguard.py the leak check): signed requests with short timeouts, raw
sockets that are cut or stall, requests released together.

The suite, one file a kind of fault (test_faults_*.py), checks what a client
sees when something around the proxy breaks, and that the proxy is whole
again afterwards. Each fault must give the client a clear answer (an S3 XML
error with the right status and ``<Code>``: 502 BadGateway for a backend
that answers nonsense or cuts the connection, 503 ServiceUnavailable for one
that cannot be reached, 504 GatewayTimeout for one that does not answer in
time), or, once a response is under way, a connection cut before the
announced length, never a complete-looking truncated body. Nothing may be
half-stored on versitygw, the next request must succeed, and every fault
test ends with a leak check (leakguard.LeakGuard).

The faulty backends are :class:`faultbackend.FaultBackend`, mostly as a
pass-through front of versitygw that injects the fault, so that what
versitygw stored (or not) can be checked with the direct client.

Covered: backend refusing / going down and back; resetting, hanging up or
answering garbage or malformed HTTP; too slow (backend_timeout); resetting
mid-upload and mid-download (test_faults_backend.py); answering 500/503
(also early, before reading an upload; test_faults_retries.py); clients
crashing mid-upload and mid-download (64 MiB); slow-loris clients (trickled
headers, stalled bodies; test_faults_clients.py); Python callables slow,
raising or answering nonsense under concurrency (test_faults_callables.py);
IAM down or hanging under concurrency (test_faults_iam.py). What other files
already cover (test_timeouts, test_callbacks, test_callable_timeout,
test_iam, test_streaming, test_objects) is not repeated; these tests add
concurrency, recovery and the leak check.
"""

from __future__ import annotations

import select
import socket
import struct
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple, TypeVar, Union

import requests

import awschunked as ac
from helpers import parse_s3_error, sign_request
from s3wire import RawResult, render, send_watching

MiB = 1024 * 1024
T = TypeVar("T")


def call(proxy: Any, method: str, path: str, *, body: bytes = b"", payload_hash: Optional[str] = None,
         headers: Optional[Dict[str, str]] = None, timeout: float = 10) -> requests.Response:
    """A signed request through the proxy (``requests``, no keep-alive left
    behind) with a short timeout."""
    url = proxy.endpoint_url + path
    signed = sign_request(method, url, body=body, headers=headers, payload_hash=payload_hash)
    with requests.Session() as session:
        return session.request(method, url, data=body, headers=signed, timeout=timeout, allow_redirects=False)


def s3_code(result: RawResult) -> str:
    """The Code of the S3 XML error a raw client got."""
    assert "xml" in result.headers.get("content-type", ""), result.headers
    return parse_s3_error(result.body)["Code"]


def signed_head(proxy: Any, method: str, path: str, *, body: bytes = b"",
                payload_hash: Optional[str] = None) -> bytes:
    """The raw head of a request signed for ``body`` (Content-Length: the
    body's, sent or not)."""
    url = proxy.endpoint_url + path
    headers = sign_request(method, url, body=body, payload_hash=payload_hash)
    lines = [("Host", f"127.0.0.1:{proxy.http_port}")]
    lines += [(k, v) for k, v in headers.items() if k.lower() != "content-length"]
    if body or method in ("PUT", "POST"):
        lines.append(("Content-Length", str(len(body))))
    return render(method, path, lines)


def rst_close(sock: socket.socket) -> None:
    """Closes with a TCP RST (SO_LINGER 0), as a crashing client does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def raw_exchange(proxy: Any, method: str, path: str, *, body: bytes = b"", payload_hash: Optional[str] = None,
                 timeout: float = 10.0) -> RawResult:
    """Sends a signed request on a raw socket (see s3wire.send_watching)."""
    head = signed_head(proxy, method, path, body=body, payload_hash=payload_hash)
    return send_watching(proxy.http_port, method, head, body, timeout=timeout)


def chunked_upload_head(proxy: Any, upload: ac.Upload) -> bytes:
    """The raw head of an aws-chunked upload built by awschunked.build_upload."""
    return render(upload.method, upload.path, [("Host", f"127.0.0.1:{proxy.http_port}"), *upload.headers.items()])


def assert_raw_s3_error(result: RawResult, status: int, code: str) -> None:
    assert result.status == status, (result.status, result.error, result.body[:500])
    assert s3_code(result) == code, result.body[:500]


def wait_cut(sock: socket.socket, limit: float, *, trickle: Optional[bytes] = None,
             every: float = 0.1) -> Tuple[Optional[float], bytes]:
    """Waits up to ``limit`` seconds for the server to answer or close
    (optionally sending ``trickle`` every ``every`` seconds meanwhile).
    Returns (seconds until then or None, what was received)."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if trickle is not None:
            try:
                sock.sendall(trickle)
            except OSError:
                return time.monotonic() - started, b""
        ready, _, _ = select.select([sock], [], [], every)
        if ready:
            try:
                data = sock.recv(65536)
            except OSError:
                return time.monotonic() - started, b""
            return time.monotonic() - started, data
    return None, b""


def concurrently(n: int, fn: Callable[[int], T], timeout: float = 30.0) -> List[Union[T, BaseException]]:
    """Runs fn(0..n-1) in n threads released together; returns each result
    or the exception it raised."""
    barrier = threading.Barrier(n)
    results: List[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = fn(i)
        except BaseException as e:  # noqa: BLE001 - reported to the caller
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), f"requests still running after {timeout}s"
    return results


def close_client(client: Any) -> None:
    """Drops a boto3 client's pooled connections (they would count as fds)."""
    client._endpoint.http_session.close()


def ok(response: requests.Response) -> requests.Response:
    assert response.status_code == 200, (response.status_code, response.content[:500])
    return response
