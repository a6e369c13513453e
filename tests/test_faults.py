"""Reliability: what a client sees when something around the proxy breaks,
and that the proxy is whole again afterwards.

Each fault must give the client a clear answer (an S3 XML error with the
right status and ``<Code>``: 502 BadGateway for a backend that answers
nonsense or cuts the connection, 503 ServiceUnavailable for one that cannot
be reached, 504 GatewayTimeout for one that does not answer in time), or, once
a response is under way, a connection cut before the announced length, never
a complete-looking truncated body. Nothing may be half-stored on versitygw,
the next request must succeed, and every fault test ends with a leak check
(:class:`LeakGuard`): the proxy's goroutines (``go_goroutines`` of its admin
metrics) and this process's file descriptors (the proxy runs inside pytest)
come back to their level before the fault.

The faulty backends are :class:`faultbackend.FaultBackend`, mostly as a
pass-through front of versitygw that injects the fault, so that what
versitygw stored (or not) can be checked with the direct client.

The retry tests follow the contract the proxy is being given: a GET/HEAD
that gets 500 or 503 from its backend is retried (at most twice, with a short
backoff), a request with a body (PUT/POST) never is.

Covered: backend refusing / going down and back; resetting, hanging up or
answering garbage or malformed HTTP; too slow (backend_timeout); resetting
mid-upload and mid-download; answering 500/503 (also early, before reading
an upload); clients crashing mid-upload and mid-download (64 MiB); slow-loris
clients (trickled headers, stalled bodies); Python callables slow, raising
or answering nonsense under concurrency; IAM down or hanging under
concurrency. What other files already cover (test_timeouts, test_callbacks,
test_callable_timeout, test_iam, test_streaming, test_objects) is not
repeated; these tests add concurrency, recovery and the leak check.
"""

from __future__ import annotations

import base64
import gc
import hashlib
import json
import os
import select
import socket
import struct
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, TypeVar, Union

import pytest
import requests
from botocore.exceptions import BotoCoreError, ClientError

import awschunked as ac
from bearer_front import BearerFront
from faultbackend import (
    Behaviour,
    CloseWithoutAnswer,
    FaultBackend,
    Forward,
    Garbage,
    RawResponse,
    Reset,
    ResetMidDownload,
    ResetMidUpload,
    S3Error,
    Slow,
    refused_port,
)
from helpers import (
    BACKEND_ACCESS_KEY,
    BACKEND_SECRET_KEY,
    CLIENT_ACCESS_KEY,
    CLIENT_SECRET_KEY,
    assert_s3_error,
    make_client,
    object_exists,
    parse_s3_error,
    sign_request,
    stored_body,
    stored_keys,
)
from iam_server import IamServer
from observe import eventually, scrape
from s3wire import RawResult, render, send_watching

T = TypeVar("T")

GOROUTINE_SLACK = 2
FD_SLACK = 1
# Go splices response bodies through pipes it keeps in a pool (two
# descriptors each) until its garbage collector empties the pool: up to
# two more pairs after a fault are that pool, not a leak.
PIPE_SLACK = 4
LEAK_WAIT = 5.0
GOOD_PAIR = {"access_key": BACKEND_ACCESS_KEY, "secret_key": BACKEND_SECRET_KEY}
MiB = 1024 * 1024


# --------------------------------------------------------------------------
# leak checks


def open_fds() -> Tuple[int, int]:
    """File descriptors of this process (the proxy's sockets among them),
    as (pipes, all others); garbage is collected first so that a socket
    only an unreachable cycle still holds does not count."""
    gc.collect()
    kinds = _fd_summary()
    pipes = kinds.get("pipe", 0)
    return pipes, sum(kinds.values()) - pipes


def goroutines(url: str) -> int:
    """The proxy's goroutines, as its admin listener's metrics (at
    ``url``) report them."""
    return int(scrape(url).value("go_goroutines"))


def sockets_to(port: int) -> int:
    """Sockets of this process connected to 127.0.0.1:``port`` (any TCP
    state but LISTEN): the proxy's connections to a backend."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    with open("/proc/self/net/tcp") as f:
        next(f)
        for line in f:
            parts = line.split()
            remote, state, inode = parts[2], parts[3], parts[9]
            if inode in inodes and state != "0A" and int(remote.split(":")[1], 16) == port:
                count += 1
    return count


class LeakGuard:
    """Goroutines and descriptors before a fault, checked after it.

    ``baseline(proxy)`` is taken once the proxy has served a request (lazy
    goroutines started, pools filled); it is the lowest of a few samples, so
    a connection that was just closing does not raise it. ``check()`` waits
    up to LEAK_WAIT seconds for both counts to be back within a small slack.
    """

    def __init__(self) -> None:
        self.url = ""
        self.goroutines = 0
        self.fds = 0
        self.pipes = 0

    def baseline(self, proxy: Any) -> None:
        self.url = proxy.admin_url
        samples = []
        for _ in range(3):
            samples.append((goroutines(self.url), *open_fds()))
            time.sleep(0.02)
        self.goroutines = min(g for g, _, _ in samples)
        self.pipes = min(p for _, p, _ in samples)
        self.fds = min(f for _, _, f in samples)

    def now(self) -> Tuple[int, int, int]:
        return (goroutines(self.url), *open_fds())

    def check(self, timeout: float = LEAK_WAIT) -> None:
        assert self.url, "LeakGuard.check() without a baseline"

        def back() -> None:
            g, p, f = self.now()
            assert (g <= self.goroutines + GOROUTINE_SLACK and f <= self.fds + FD_SLACK
                    and p <= self.pipes + PIPE_SLACK), (
                f"not back to the baseline after {timeout}s: goroutines {g} (baseline {self.goroutines}), "
                f"file descriptors {f} (baseline {self.fds}), pipes {p} (baseline {self.pipes}); "
                f"open fds: {_fd_summary()}")

        eventually(back, timeout=timeout, interval=0.1)


def _fd_summary() -> Dict[str, int]:
    kinds: Dict[str, int] = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        kind = target.split(":", 1)[0] if ":" in target else "file"
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


@pytest.fixture
def leaks() -> LeakGuard:
    """The leak check every fault test ends with (see LeakGuard)."""
    return LeakGuard()


# --------------------------------------------------------------------------
# backends


@pytest.fixture
def fault(backend: Any) -> Iterator[FaultBackend]:
    """A fault-injecting front of versitygw (Forward unless scripted)."""
    with FaultBackend((backend.host, backend.port)) as fb:
        yield fb


@pytest.fixture
def fault_proxy(start_proxy: Callable[..., Any], fault: FaultBackend, bucket: str) -> Callable[..., Any]:
    """``fault_proxy(**config)``: a proxy whose ``bucket`` is behind ``fault``."""

    def start(**options: Any) -> Any:
        return start_proxy(cos_map={bucket: fault.entry()}, **options)

    return start


# --------------------------------------------------------------------------
# raw, signed HTTP


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


# --------------------------------------------------------------------------
# backend unreachable


def test_backend_refusing_connections_is_503(start_proxy: Callable[..., Any], leaks: LeakGuard) -> None:
    """Nothing listens on the backend's port: a quick 503 ServiceUnavailable
    (S3 XML) for reads and writes alike, no hang."""
    proxy = start_proxy(cos_map={"refusing": FaultBackend(port=refused_port()).entry()})
    call(proxy, "GET", "/refusing/warm-up")
    leaks.baseline(proxy)
    for method, body in (("GET", b""), ("PUT", b"x" * 1000), ("HEAD", b"")):
        started = time.monotonic()
        r = call(proxy, method, "/refusing/k", body=body)
        if method == "HEAD":
            assert r.status_code == 503, r.status_code
        else:
            assert_s3_error(r, 503, "ServiceUnavailable")
        assert time.monotonic() - started < 3.0
    leaks.check()


def test_backend_down_then_back(fault_proxy: Callable[..., Any], fault: FaultBackend, bucket: str, direct: Any,
                                leaks: LeakGuard) -> None:
    """A backend that stops listening mid-life gives 503 ServiceUnavailable
    (nothing stored by the failed write); once it listens again on the same
    port the very next request succeeds (no stale connection or backoff)."""
    direct.put_object(Bucket=bucket, Key="k", Body=b"before the outage")
    proxy = fault_proxy()
    assert ok(call(proxy, "GET", f"/{bucket}/k")).content == b"before the outage"
    leaks.baseline(proxy)

    fault.stop()
    assert_s3_error(call(proxy, "GET", f"/{bucket}/k"), 503, "ServiceUnavailable")
    assert_s3_error(call(proxy, "PUT", f"/{bucket}/during", body=b"lost"), 503, "ServiceUnavailable")
    leaks.check()

    fault.start()
    assert ok(call(proxy, "GET", f"/{bucket}/k")).content == b"before the outage"
    assert stored_keys(direct, bucket) == ["k"]
    ok(call(proxy, "PUT", f"/{bucket}/after", body=b"back"))
    assert stored_body(direct, bucket, "after") == b"back"


# --------------------------------------------------------------------------
# backend answers nonsense: 502 BadGateway


BROKEN_ANSWERS = [
    pytest.param(Reset(), id="reset-on-accept"),
    pytest.param(Reset(after_head=True), id="reset-after-request-head"),
    pytest.param(CloseWithoutAnswer(), id="close-without-answer"),
    pytest.param(Garbage(), id="garbage"),
    pytest.param(RawResponse(b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n"), id="bad-status-code"),
    pytest.param(RawResponse(b"SPDY/9 200 OK\r\nContent-Length: 0\r\n\r\n"), id="bad-protocol"),
    pytest.param(RawResponse(b"HTTP/1.1 200 OK\r\nContent-Length: banana\r\n\r\nhello"), id="bad-content-length"),
    pytest.param(RawResponse(b"HTTP/1.1 200 OK\r\nthis header line has no colon\r\n\r\n"), id="header-without-colon"),
    pytest.param(RawResponse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"),
                 id="conflicting-content-lengths"),
    pytest.param(RawResponse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nhello"),
                 id="unknown-transfer-encoding"),
    pytest.param(RawResponse(b"HTTP/1.1 200 OK\r\nContent-Le"), id="head-cut-short"),
]


@pytest.mark.parametrize("method, behaviour", [
    *(pytest.param("GET", p.values[0], id=f"GET-{p.id}") for p in BROKEN_ANSWERS),
    # a PUT's body is on its way when the backend breaks
    *(pytest.param("PUT", p.values[0], id=f"PUT-{p.id}") for p in BROKEN_ANSWERS
      if p.id in ("reset-on-accept", "reset-after-request-head", "close-without-answer", "garbage")),
])
def test_broken_backend_answer_is_502(fault_proxy: Callable[..., Any], fault: FaultBackend, bucket: str,
                                      leaks: LeakGuard, behaviour: Behaviour, method: str) -> None:
    """A backend that resets, hangs up without a word, or answers something
    that is not a valid HTTP response: 502 BadGateway in S3 XML, quickly
    (three times over, so that a leak per fault would exceed the leak
    check's slack); then the backend heals and the next request succeeds."""
    proxy = fault_proxy()
    ok(call(proxy, "PUT", f"/{bucket}/k", body=b"stored before"))
    leaks.baseline(proxy)
    fault.script(then=behaviour)  # every attempt gets it, retried or not
    for _ in range(3):
        started = time.monotonic()
        r = call(proxy, method, f"/{bucket}/k", body=b"new body" if method == "PUT" else b"")
        if behaviour == Reset() and r.status_code == 503:
            # The RST can beat the proxy's connect(): a dial error, nothing
            # was sent, and 503 ServiceUnavailable says so as well.
            assert_s3_error(r, 503, "ServiceUnavailable")
        else:
            assert_s3_error(r, 502, "BadGateway")
        assert time.monotonic() - started < 3.0
    leaks.check()
    fault.script(then=Forward())
    assert ok(call(proxy, "GET", f"/{bucket}/k")).content == b"stored before"


# --------------------------------------------------------------------------
# backend too slow: 504 GatewayTimeout


def test_slow_backend_gives_504_and_is_let_go(fault_proxy: Callable[..., Any], fault: FaultBackend, bucket: str,
                                              direct: Any, leaks: LeakGuard) -> None:
    """backend_timeout bounds the wait for a backend's response headers: a
    backend that holds a PUT 4 s gets the client a 504 GatewayTimeout after
    about 1 s, the proxy closes that backend connection (it is not left
    waiting), and the held request, never passed on, stores nothing. A
    backend slower than usual but within the timeout is fine."""
    proxy = fault_proxy(backend_timeout=1)
    fault.script(Slow(0.4, then=Forward()))
    ok(call(proxy, "PUT", f"/{bucket}/within", body=b"in time"))
    leaks.baseline(proxy)

    fault.script(Slow(4.0, then=Forward()))
    started = time.monotonic()
    r = call(proxy, "PUT", f"/{bucket}/slow", body=b"too late")
    elapsed = time.monotonic() - started
    assert_s3_error(r, 504, "GatewayTimeout")
    assert 0.8 <= elapsed < 3.0, f"answered after {elapsed:.2f}s with backend_timeout=1"
    held = fault.received[-1]
    eventually(lambda: _assert(held.peer_closed_at is not None, "the proxy kept the timed-out backend connection"),
               timeout=1.5)
    leaks.check()
    assert stored_keys(direct, bucket) == ["within"]
    ok(call(proxy, "PUT", f"/{bucket}/after", body=b"fast again"))
    assert stored_body(direct, bucket, "after") == b"fast again"


def _assert(condition: bool, message: str) -> None:
    assert condition, message


# --------------------------------------------------------------------------
# backend cuts an upload / a download


# How the client's body goes upstream: passed through (signed sha256), framed
# by the proxy (UNSIGNED-PAYLOAD), decoded and re-framed (aws-chunked).
BODY_KINDS = [pytest.param(None, id="sha256"), pytest.param("UNSIGNED-PAYLOAD", id="unsigned"),
              pytest.param(ac.STREAMING_SIGNED, id="aws-chunked")]


def put_raw(proxy: Any, path: str, body: bytes, payload_hash: Optional[str]) -> RawResult:
    """A raw PUT of ``body`` sent as ``payload_hash`` says (see BODY_KINDS)."""
    if payload_hash in ac.MODES:
        upload = ac.build_upload("PUT", proxy.endpoint_url + path, body, payload_hash, chunk_size=64 * 1024)
        return send_watching(proxy.http_port, "PUT", chunked_upload_head(proxy, upload), upload.body())
    return raw_exchange(proxy, "PUT", path, body=body, payload_hash=payload_hash)


@pytest.mark.parametrize("payload_hash", BODY_KINDS)
def test_backend_reset_mid_upload(fault_proxy: Callable[..., Any], fault: FaultBackend, bucket: str, direct: Any,
                                  leaks: LeakGuard, payload_hash: Optional[str]) -> None:
    """The backend connection dies after versitygw got the head and 256 KiB of
    a 4 MiB PUT: the client gets 502 BadGateway (S3 XML), versitygw keeps the
    older version of the object (no half of the new one), and the same PUT
    succeeds once the backend is healthy."""
    direct.put_object(Bucket=bucket, Key="obj", Body=b"the older version")
    proxy = fault_proxy()
    ok(call(proxy, "GET", f"/{bucket}/obj"))
    leaks.baseline(proxy)

    body = os.urandom(4 * MiB)
    fault.clear()
    fault.script(ResetMidUpload(256 * 1024, forward=True))
    result = put_raw(proxy, f"/{bucket}/obj", body, payload_hash)
    assert_raw_s3_error(result, 502, "BadGateway")
    [cut] = fault.requests
    assert cut.forwarded and cut.body_complete is False
    leaks.check()
    time.sleep(0.3)  # versitygw has seen its connection cut
    assert stored_body(direct, bucket, "obj") == b"the older version"
    assert stored_keys(direct, bucket) == ["obj"]

    result = put_raw(proxy, f"/{bucket}/obj", body, payload_hash)
    assert result.status == 200, (result.status, result.error, result.body[:300])
    assert hashlib.sha256(stored_body(direct, bucket, "obj")).digest() == hashlib.sha256(body).digest()


@pytest.mark.parametrize("payload_hash", BODY_KINDS)
def test_backend_rejects_upload_early(fault_proxy: Callable[..., Any], fault: FaultBackend, bucket: str,
                                      direct: Any, leaks: LeakGuard, payload_hash: Optional[str]) -> None:
    """S3 answers 503 SlowDown to a large PUT as soon as it has the head,
    without reading the body, and closes once the sender stops (lingering
    close). The client must get that 503 SlowDown as the backend said it,
    not a 502 made of the broken pipe the rest of its body met, and
    nothing is stored; the next PUT succeeds."""
    proxy = fault_proxy()
    ok(call(proxy, "PUT", f"/{bucket}/warm", body=b"w"))
    leaks.baseline(proxy)
    fault.clear()

    body = os.urandom(8 * MiB)
    fault.script(S3Error(503, "SlowDown", early=True))
    result = put_raw(proxy, f"/{bucket}/throttled", body, payload_hash)
    assert_raw_s3_error(result, 503, "SlowDown")
    [seen] = fault.requests
    assert not seen.forwarded
    leaks.check()
    assert stored_keys(direct, bucket) == ["warm"]
    result = put_raw(proxy, f"/{bucket}/throttled", body, payload_hash)
    assert result.status == 200, (result.status, result.error, result.body[:300])


ANNOUNCED = 1 * MiB
CUT_DOWNLOADS = [
    pytest.param(ResetMidDownload(300_000, length=ANNOUNCED), id="content-length-then-rst"),
    pytest.param(ResetMidDownload(300_000, length=ANNOUNCED, graceful=True), id="content-length-then-fin"),
    pytest.param(ResetMidDownload(300_000, chunked=True), id="chunked-then-rst"),
    pytest.param(ResetMidDownload(300_000, forward=True), id="real-object-then-rst"),
    pytest.param(RawResponse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\nworld\r\n"),
                 id="broken-chunk-framing"),
]


@pytest.mark.parametrize("behaviour", CUT_DOWNLOADS)
def test_backend_cut_mid_download(fault_proxy: Callable[..., Any], fault: FaultBackend, bucket: str, direct: Any,
                                  leaks: LeakGuard, behaviour: Behaviour) -> None:
    """The backend's answer ends before its announced length (reset, close,
    missing final chunk, broken chunk framing). The client must not get a
    complete-looking body: either an error answer, or a connection cut before
    the Content-Length it was given (or before the final chunk). boto3, the
    typical client, must raise rather than return the truncated bytes."""
    data = os.urandom(ANNOUNCED)
    direct.put_object(Bucket=bucket, Key="big", Body=data)
    proxy = fault_proxy()
    assert ok(call(proxy, "GET", f"/{bucket}/big")).content == data
    leaks.baseline(proxy)

    fault.script(behaviour, behaviour)
    result = raw_exchange(proxy, "GET", f"/{bucket}/big")
    if result.status == 200:
        assert not result.complete, (f"a truncated backend answer reached the client as a complete 200: "
                                     f"{len(result.body)} bytes, headers {result.headers}")
        length = result.headers.get("content-length")
        if length is not None:  # the backend's, not rewritten to what arrived
            assert int(length) == ANNOUNCED, result.headers
            assert len(result.body) < ANNOUNCED
        else:
            assert "chunked" in result.headers.get("transfer-encoding", ""), result.headers
    else:
        assert result.status is None or result.status == 502, (result.status, result.body[:300])
        if result.status == 502:
            assert s3_code(result) == "BadGateway"

    client = make_client(proxy.endpoint_url, CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY)
    try:
        with pytest.raises((BotoCoreError, ClientError)):
            body = client.get_object(Bucket=bucket, Key="big")["Body"].read()
            print(f"boto3 returned {len(body)} bytes of {ANNOUNCED} without an error")
    finally:
        close_client(client)
    leaks.check()
    assert ok(call(proxy, "GET", f"/{bucket}/big")).content == data


# --------------------------------------------------------------------------
# backend 5xx: retried for reads, passed on for writes


@pytest.mark.parametrize("method, status, code, failures", [
    pytest.param("GET", 503, "ServiceUnavailable", 1, id="GET-503-once"),
    pytest.param("GET", 500, "InternalError", 2, id="GET-500-twice"),
    pytest.param("HEAD", 500, "InternalError", 1, id="HEAD-500-once"),
    pytest.param("HEAD", 503, "ServiceUnavailable", 2, id="HEAD-503-twice"),
])
def test_read_retried_after_backend_5xx(fault_proxy: Callable[..., Any], fault: FaultBackend, bucket: str,
                                        direct: Any, leaks: LeakGuard, method: str, status: int, code: str,
                                        failures: int) -> None:
    """A GET/HEAD has no body and changes nothing: after a 500/503 from the
    backend the proxy tries again (up to twice, soon), so the client gets
    the 200 and never sees the transient error. Each retry is signed anew
    (versitygw checks the one that is passed through)."""
    data = b"retried " * 100
    direct.put_object(Bucket=bucket, Key="k", Body=data)
    proxy = fault_proxy()
    ok(call(proxy, "GET", f"/{bucket}/k"))
    leaks.baseline(proxy)
    fault.clear()

    fault.script(*[S3Error(status, code)] * failures, then=Forward())
    started = time.monotonic()
    r = call(proxy, method, f"/{bucket}/k")
    elapsed = time.monotonic() - started
    seen = fault.requests
    assert r.status_code == 200, (f"{method} got {r.status_code} after {failures} backend {status}(s); "
                                  f"the backend saw {len(seen)} request(s)", r.content[:300])
    assert (r.content if method == "GET" else r.headers.get("Content-Length")) == (
        data if method == "GET" else str(len(data)))
    assert [(s.method, s.target) for s in seen] == [(method, f"/{bucket}/k")] * (failures + 1)
    assert elapsed < 3.0, f"retries took {elapsed:.2f}s: the backoff should be short"
    leaks.check()


@pytest.mark.parametrize("status, code", [(500, "InternalError"), (503, "ServiceUnavailable")])
def test_read_retries_are_bounded(fault_proxy: Callable[..., Any], fault: FaultBackend, bucket: str, direct: Any,
                                  leaks: LeakGuard, status: int, code: str) -> None:
    """A backend that keeps failing gets exactly 3 attempts (1 + 2 retries),
    within a short time; the client gets the backend's last error (status
    and S3 code), and the next request succeeds once the backend recovers."""
    direct.put_object(Bucket=bucket, Key="k", Body=b"v")
    proxy = fault_proxy()
    ok(call(proxy, "GET", f"/{bucket}/k"))
    leaks.baseline(proxy)
    fault.clear()

    fault.script(then=S3Error(status, code))
    started = time.monotonic()
    r = call(proxy, "GET", f"/{bucket}/k")
    elapsed = time.monotonic() - started
    assert_s3_error(r, status, code)
    assert len(fault.requests) == 3, f"the backend saw {len(fault.requests)} attempts, expected 1 + 2 retries"
    assert elapsed < 3.0, f"gave up after {elapsed:.2f}s"
    leaks.check()
    fault.script(then=Forward())
    assert ok(call(proxy, "GET", f"/{bucket}/k")).content == b"v"


def test_read_4xx_is_not_retried(fault_proxy: Callable[..., Any], fault: FaultBackend, bucket: str,
                                 leaks: LeakGuard) -> None:
    """Only a backend's server errors are worth a retry: a 404 NoSuchKey is
    the answer, passed on after one attempt."""
    proxy = fault_proxy()
    call(proxy, "GET", f"/{bucket}/warm")
    leaks.baseline(proxy)
    fault.clear()
    assert_s3_error(call(proxy, "GET", f"/{bucket}/missing"), 404, "NoSuchKey")
    assert len(fault.requests) == 1
    leaks.check()


def _delete_objects_body(keys: Sequence[str]) -> bytes:
    objects = "".join(f"<Object><Key>{k}</Key></Object>" for k in keys)
    return f'<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{objects}</Delete>'.encode()


@pytest.mark.parametrize("operation, status, code", [
    pytest.param("PutObject", 503, "ServiceUnavailable", id="PutObject-503"),
    pytest.param("PutObject", 500, "InternalError", id="PutObject-500"),
    pytest.param("DeleteObjects", 503, "SlowDown", id="DeleteObjects-503-SlowDown"),
])
def test_write_with_body_is_not_retried(fault_proxy: Callable[..., Any], fault: FaultBackend, bucket: str,
                                        direct: Any, leaks: LeakGuard, operation: str, status: int,
                                        code: str) -> None:
    """A PUT or POST with a body is not replayed by the proxy: the client
    gets the backend's error as it was (status and S3 code), the backend saw
    exactly one request, and nothing changed at versitygw. The client's own
    retry then succeeds."""
    direct.put_object(Bucket=bucket, Key="kept", Body=b"kept")
    proxy = fault_proxy()
    ok(call(proxy, "GET", f"/{bucket}/kept"))
    leaks.baseline(proxy)
    fault.clear()

    if operation == "PutObject":
        method, path, body, headers = "PUT", f"/{bucket}/new", b"new object " * 100, None
    else:
        body = _delete_objects_body(["kept"])
        md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
        method, path, headers = "POST", f"/{bucket}?delete=", {"Content-MD5": md5, "Content-Type": "application/xml"}
    fault.script(S3Error(status, code), then=Forward())
    started = time.monotonic()
    r = call(proxy, method, path, body=body, headers=headers)
    assert_s3_error(r, status, code)
    assert time.monotonic() - started < 3.0
    seen = fault.requests
    assert len(seen) == 1, f"the backend saw {len(seen)} {method}s: a request with a body was replayed"
    assert seen[0].body_complete
    leaks.check()
    assert stored_keys(direct, bucket) == ["kept"]

    ok(call(proxy, method, path, body=body, headers=headers))
    assert stored_keys(direct, bucket) == (["kept", "new"] if operation == "PutObject" else [])


# --------------------------------------------------------------------------
# clients that go away


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
    eventually(lambda: _assert(sockets_to(backend.port) <= to_backend,
                               f"{sockets_to(backend.port)} connections to versitygw, {to_backend} before"),
               timeout=LEAK_WAIT)
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
    eventually(lambda: _assert(sockets_to(backend.port) <= to_backend,
                               f"{sockets_to(backend.port)} connections to versitygw, {to_backend} before"),
               timeout=LEAK_WAIT)
    leaks.check()
    assert ok(call(proxy, "GET", f"/{bucket}/small")).content == b"small"


# --------------------------------------------------------------------------
# slow-loris clients


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


# --------------------------------------------------------------------------
# Python callables: slow, failing, concurrent


class InFlight:
    """Counts a callable's calls and the most that ran at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 0
        self.peak = 0
        self.calls: List[str] = []

    def __enter__(self) -> None:
        with self._lock:
            self.now += 1
            self.peak = max(self.peak, self.now)

    def __exit__(self, *exc: Any) -> None:
        with self._lock:
            self.now -= 1

    def add(self, key: str) -> None:
        with self._lock:
            self.calls.append(key)

    def reset(self) -> None:
        with self._lock:
            self.peak, self.calls = self.now, []


@pytest.mark.parametrize("kind", ["validator", "bucket_creds_fetcher"])
def test_slow_callable_serves_concurrent_requests_in_parallel(start_proxy: Callable[..., Any], bucket: str,
                                                              direct: Any, leaks: LeakGuard, kind: str) -> None:
    """32 concurrent PUTs each needing a 0.2 s callable (ttl 0: asked every
    time) all succeed, and together take well under the 6.4 s one-at-a-time
    would: the callables run in parallel (the GIL is released while they
    sleep), the proxy does not queue requests behind one another."""
    flight = InFlight()

    def slow(token: str, bucket_name: str, method: str, key: str, operation: str) -> Any:
        flight.add(key)
        with flight:
            time.sleep(0.2)
        return True if kind == "validator" else dict(GOOD_PAIR)

    if kind == "validator":
        proxy = start_proxy(bucket, entry={"ttl": 0}, validator=slow, callback_timeout=5)
    else:
        proxy = start_proxy(bucket, entry={"creds": False, "ttl": 0}, bucket_creds_fetcher=slow, callback_timeout=5)
    ok(call(proxy, "PUT", f"/{bucket}/warm", body=b"w"))
    leaks.baseline(proxy)
    flight.reset()

    n = 32
    started = time.monotonic()
    results = concurrently(n, lambda i: call(proxy, "PUT", f"/{bucket}/c{i:02d}", body=f"body {i}".encode()))
    elapsed = time.monotonic() - started
    bad = [(i, r if isinstance(r, BaseException) else (r.status_code, r.content[:200]))
           for i, r in enumerate(results) if isinstance(r, BaseException) or r.status_code != 200]
    assert bad == [], bad
    assert sorted(flight.calls) == [f"c{i:02d}" for i in range(n)]
    assert flight.peak >= 8, f"at most {flight.peak} {kind} calls ran at once"
    assert elapsed < 4.0, f"{n} requests with a 0.2 s {kind} took {elapsed:.2f}s (6.4 s one at a time)"
    leaks.check()
    assert sorted(stored_keys(direct, bucket)) == sorted(["warm"] + [f"c{i:02d}" for i in range(n)])


OUTCOMES = {"ok": (200, ""), "deny": (403, "AccessDenied"), "raise": (500, "InternalError"),
            "type": (500, "InternalError"), "exit": (500, "InternalError"), "interrupt": (500, "InternalError")}


def test_failing_validator_under_concurrency(start_proxy: Callable[..., Any], bucket: str, direct: Any,
                                             leaks: LeakGuard) -> None:
    """36 concurrent requests whose validator answers True, False, raises
    RuntimeError, returns a str, raises SystemExit or KeyboardInterrupt
    (BaseExceptions: they must neither unwind into Go nor stop pytest):
    each request gets its own outcome (200 / 403 AccessDenied / 500
    InternalError), never another's, only the allowed ones are stored, and
    the proxy keeps serving."""

    def validator(token: str, bucket_name: str, method: str, key: str, operation: str) -> Any:
        time.sleep(0.05)
        kind = key.split("-", 1)[0]
        if kind == "raise":
            raise RuntimeError("validator failed (test)")
        if kind == "exit":
            raise SystemExit(3)
        if kind == "interrupt":
            raise KeyboardInterrupt
        if kind == "type":
            return "yes"
        return kind != "deny"

    # 36 validator calls at once: above max_callable_calls' default (32),
    # whose excess would get SlowDown (test_control_plane.py tests that).
    proxy = start_proxy(bucket, entry={"ttl": 0}, validator=validator, max_callable_calls=64)
    ok(call(proxy, "PUT", f"/{bucket}/ok-warm", body=b"w"))
    leaks.baseline(proxy)

    kinds = list(OUTCOMES) * 6
    results = concurrently(len(kinds), lambda i: call(proxy, "PUT", f"/{bucket}/{kinds[i]}-{i:02d}", body=b"x"))
    wrong: List[Tuple[Any, ...]] = []
    for i, (kind, r) in enumerate(zip(kinds, results)):
        status, code = OUTCOMES[kind]
        if isinstance(r, BaseException):
            wrong.append((i, kind, repr(r)))
        elif r.status_code != status or (code and parse_s3_error(r.content)["Code"] != code):
            wrong.append((i, kind, r.status_code, r.content[:200]))
    assert wrong == [], wrong
    leaks.check()
    assert sorted(stored_keys(direct, bucket)) == sorted(
        ["ok-warm"] + [f"{k}-{i:02d}" for i, k in enumerate(kinds) if k == "ok"])
    ok(call(proxy, "PUT", f"/{bucket}/ok-after", body=b"a"))


@pytest.mark.parametrize("answer", [json.dumps({**GOOD_PAIR, "padding": "p" * 100_000}), "x" * 200_000, "\ud800"],
                         ids=["oversized-json", "oversized-str", "lone-surrogate"])
def test_creds_fetcher_unusable_answer(start_proxy: Callable[..., Any], bucket: str, direct: Any,
                                       leaks: LeakGuard, answer: str) -> None:
    """A bucket_creds_fetcher answer too long for the proxy's buffer, or a str
    that is not valid Unicode: 500 InternalError in S3 XML, nothing sent to
    the backend, and the next (good) answer works."""

    def fetcher(token: str, bucket_name: str, method: str, key: str, operation: str) -> Any:
        return answer if key == "bad" else dict(GOOD_PAIR)

    proxy = start_proxy(bucket, entry={"creds": False, "ttl": 0}, bucket_creds_fetcher=fetcher)
    ok(call(proxy, "PUT", f"/{bucket}/warm", body=b"w"))
    leaks.baseline(proxy)
    assert_s3_error(call(proxy, "PUT", f"/{bucket}/bad", body=b"x"), 500, "InternalError")
    leaks.check()
    assert stored_keys(direct, bucket) == ["warm"]
    ok(call(proxy, "PUT", f"/{bucket}/good", body=b"g"))


def test_hanging_validator_goroutines_end_when_it_returns(start_proxy: Callable[..., Any], bucket: str,
                                                          leaks: LeakGuard) -> None:
    """8 concurrent requests whose validator hangs past callback_timeout get
    503 ServiceUnavailable in about the timeout; the proxy stops waiting, and
    once the callables finally return nothing of those calls is left behind
    (goroutines and descriptors back to baseline)."""
    release = threading.Event()

    def validator(token: str, bucket_name: str, method: str, key: str, operation: str) -> bool:
        if key.startswith("hang"):
            release.wait(8)
        return True

    proxy = start_proxy(bucket, entry={"ttl": 0}, validator=validator, callback_timeout=0.5)
    ok(call(proxy, "PUT", f"/{bucket}/warm", body=b"w"))
    leaks.baseline(proxy)
    try:
        started = time.monotonic()
        results = concurrently(8, lambda i: call(proxy, "GET", f"/{bucket}/hang-{i}"))
        elapsed = time.monotonic() - started
        for r in results:
            assert not isinstance(r, BaseException), r
            assert_s3_error(r, 503, "ServiceUnavailable")
        assert elapsed < 3.0, f"answered after {elapsed:.2f}s with callback_timeout=0.5"
        ok(call(proxy, "GET", f"/{bucket}/warm"))  # served while 8 calls still hang
    finally:
        release.set()
    leaks.check()


# --------------------------------------------------------------------------
# IAM token service down or hanging


KEY_WARM = "apikey-warm-" + os.urandom(8).hex()
KEY_FAULT = "apikey-fault-" + os.urandom(8).hex()


@pytest.fixture
def iam() -> Iterator[IamServer]:
    with IamServer({KEY_WARM, KEY_FAULT}) as server:
        yield server


def _bearer_proxy(start_proxy: Callable[..., Any], iam: IamServer, front: BearerFront, warm: str,
                  faulty: str) -> Any:
    """A proxy with two buckets behind the bearer front, with different API
    keys: ``warm`` (its token fetched before the fault) and ``faulty``."""
    entry = {"host": "127.0.0.1", "port": front.port, "scheme": "http", "addressing_style": "path"}
    return start_proxy(cos_map={warm: {**entry, "apikey": KEY_WARM}, faulty: {**entry, "apikey": KEY_FAULT}},
                       iam_url=iam.url)


@pytest.mark.parametrize("mode", ["refused", "reset", "500"])
def test_iam_down_under_concurrency(start_proxy: Callable[..., Any], iam: IamServer, front: BearerFront,
                                    make_bucket: Callable[..., str], direct: Any, leaks: LeakGuard,
                                    mode: str) -> None:
    """16 concurrent first requests to a bucket whose token cannot be had
    (IAM refusing connections, resetting them, or answering 500): each gets
    503 ServiceUnavailable within the ~3 s retry budget, IAM is asked by one
    retry loop for all of them (not 16), nothing reaches the backend; IAM
    back, the next request succeeds at once; no leak."""
    warm, faulty = make_bucket("iam-warm"), make_bucket("iam-fault")
    direct.put_object(Bucket=faulty, Key="k", Body=b"still here")
    proxy = _bearer_proxy(start_proxy, iam, front, warm, faulty)
    ok(call(proxy, "GET", f"/{warm}?list-type=2"))
    leaks.baseline(proxy)

    if mode == "refused":
        iam.stop()
    else:
        iam.fail = mode
    iam.reset_calls()
    results = concurrently(16, lambda i: (time.monotonic(), call(proxy, "GET", f"/{faulty}/k")))
    done = time.monotonic()
    for r in results:
        assert not isinstance(r, BaseException), r
        assert_s3_error(r[1], 503, "ServiceUnavailable")
    assert done - min(r[0] for r in results if not isinstance(r, BaseException)) < 6.0
    if mode != "refused":
        assert 1 <= len(iam.calls) <= 40, f"{len(iam.calls)} IAM calls for 16 waiting requests"
    assert front.seen_for(faulty) == []

    if mode == "refused":
        iam.start()
    else:
        iam.fail = None
    started = time.monotonic()
    assert ok(call(proxy, "GET", f"/{faulty}/k")).content == b"still here"
    assert time.monotonic() - started < 2.0, "recovery waited for an old backoff"
    leaks.check()


def test_hanging_iam_under_concurrency(start_proxy: Callable[..., Any], iam: IamServer, front: BearerFront,
                                       make_bucket: Callable[..., str], direct: Any, leaks: LeakGuard) -> None:
    """IAM accepts the token request and answers only after 4 s, beyond the
    proxy's ~3 s budget: 8 concurrent requests get 503 ServiceUnavailable in
    bounded time, sharing one IAM call; the proxy drops that call (nothing
    left once IAM's late answer is gone), and recovers when IAM is fast."""
    warm, faulty = make_bucket("iam-warm"), make_bucket("iam-hang")
    direct.put_object(Bucket=faulty, Key="k", Body=b"v")
    proxy = _bearer_proxy(start_proxy, iam, front, warm, faulty)
    ok(call(proxy, "GET", f"/{warm}?list-type=2"))
    leaks.baseline(proxy)

    fetches = scrape(proxy).value("osp_iam_token_fetches_total")
    iam.delay = 4.0
    started = time.monotonic()
    results = concurrently(8, lambda i: call(proxy, "GET", f"/{faulty}/k"))
    elapsed = time.monotonic() - started
    for r in results:
        assert not isinstance(r, BaseException), r
        assert_s3_error(r, 503, "ServiceUnavailable")
    assert elapsed < 6.0, f"the clients waited {elapsed:.2f}s for a hanging IAM"
    iam.delay = 0.0
    time.sleep(max(0.0, 4.2 - (time.monotonic() - started)))  # IAM's late answers are out
    # (IamServer records no call whose client left before its answer: the
    # proxy's own count of IAM requests tells)
    calls = scrape(proxy).value("osp_iam_token_fetches_total") - fetches
    assert calls == 1, f"{calls} IAM token requests for 8 waiting requests"
    assert front.seen_for(faulty) == []
    leaks.check()
    assert ok(call(proxy, "GET", f"/{faulty}/k")).content == b"v"
