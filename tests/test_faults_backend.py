"""Backend faults (see faultclient.py for the suite): a backend that cannot
be reached, answers nonsense, is too slow, or cuts an upload or a download.
"""

from __future__ import annotations

import hashlib
import os
import time
from typing import Any, Callable, Optional

import pytest
from botocore.exceptions import BotoCoreError, ClientError

import awschunked as ac
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
from faultclient import (
    MiB,
    assert_raw_s3_error,
    call,
    chunked_upload_head,
    close_client,
    ok,
    raw_exchange,
    s3_code,
)
from helpers import CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY, assert_s3_error, make_client, stored_body, stored_keys
from leakguard import LeakGuard
from observe import eventually
from s3wire import RawResult, send_watching


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
