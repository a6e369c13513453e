"""The body and the backend: what reaches a backend, and what comes back.

Issue 12, items 3 and 11:

* an aws-chunked body whose chunk sizes add up past x-amz-decoded-content-length
  (or overflow an int64) is refused before the backend receives the last byte
  of the declared length: a bearer (IBM API key) backend checks no payload hash,
  so a complete body it receives is stored;
* a backend's authentication error (401, 403) reaches the client as the proxy's
  own 403 AccessDenied, without the backend's access key, string to sign,
  canonical request or signature.

(Item 13, replays of non-idempotent requests, is tested in Go: upstream's
transport_test.go.)
"""

from __future__ import annotations

import random
import secrets
import socket
import urllib.parse
from typing import Any, Callable, Iterator, List, Mapping, Optional

import pytest

import awschunked as ac
from bearer_front import BearerFront
from helpers import assert_s3_error, object_exists, parse_s3_error, stored_keys
from iam_server import IamServer

KEY_A = "apikey-a-" + secrets.token_hex(12)

# --------------------------------------------------------------------------
# fixtures: a bearer (IBM API key) backend in front of versitygw


@pytest.fixture
def iam() -> Iterator[IamServer]:
    with IamServer({KEY_A}) as server:
        yield server


@pytest.fixture
def front(iam: IamServer, backend: Any) -> Iterator[BearerFront]:
    with BearerFront(iam, backend.endpoint_url) as f:
        yield f


@pytest.fixture
def bearer_proxy(start_proxy: Callable[..., Any], iam: IamServer, front: BearerFront) -> Callable[..., Any]:
    """``bearer_proxy({bucket: apikey, ...})``: a proxy whose buckets are
    behind the bearer front, with the local IAM."""

    def start(buckets: Mapping[str, Optional[str]], **options: Any) -> Any:
        options.setdefault("iam_url", iam.url)
        return start_proxy(cos_map={name: front.entry(key) for name, key in buckets.items()}, **options)

    return start


def payload(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


def send_raw(url: str, method: str, headers: Mapping[str, str], body: bytes, *,
             shut: bool = True) -> Optional[ac.Response]:
    """Sends exactly these headers and body on one connection, then (with
    ``shut``) half-closes it as a client that has nothing more to say.
    Returns the answer, or None if the server closed without one."""
    import http.client

    parts = urllib.parse.urlsplit(url)
    lines = [f"{method} {parts.path} HTTP/1.1", f"Host: {parts.netloc}"]
    lines += [f"{name}: {value}" for name, value in headers.items() if name.lower() != "host"]
    sock = socket.create_connection((parts.hostname, parts.port), timeout=20)
    try:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        if shut:
            sock.shutdown(socket.SHUT_WR)
        raw = http.client.HTTPResponse(sock, method=method)
        try:
            raw.begin()
        except (http.client.RemoteDisconnected, ConnectionError):
            return None
        return ac.Response(raw.status, ac.CaseInsensitiveDict(raw.getheaders()), raw.read())
    finally:
        sock.close()


def assert_nothing_complete_reached(front: BearerFront, direct: Any, bucket: str, key: str) -> None:
    front.wait_idle()
    complete = [s for s in front.seen_for(bucket, key) if s.complete]
    assert complete == [], f"the backend received a complete body: {complete}"
    assert not object_exists(direct, bucket, key), f"{key} was stored"


# --------------------------------------------------------------------------
# item 3: chunk sizes past the declared length, or past int64


def overflowing_upload(url: str, mode: str, declared: int, first: int, size_line: str, tail: bytes) -> ac.Upload:
    """An upload announcing ``declared`` decoded bytes whose first chunk
    (``first`` bytes) is signed correctly, followed by a chunk header
    ``size_line`` (with a forged signature in signed modes) and ``tail``:
    the attacker's bytes, never signed."""
    upload = ac.build_upload("PUT", url, payload(first, seed=30), mode, chunk_size=first,
                             checksum_algorithm=None, content_length=False, decoded_length=declared)
    good = upload.chunks[0].size_line() + upload.chunks[0].data + b"\r\n"
    signature = f";chunk-signature={'0' * 64}" if mode in ac.SIGNED_MODES else ""
    upload.raw_body = good + f"{size_line}{signature}\r\n".encode() + tail  # type: ignore[attr-defined]
    return upload


OVERFLOWS = [
    pytest.param("7fffffffffffffff", id="int64-max"),
    pytest.param("7ffffffffffffffe", id="int64-max-minus-1"),
    pytest.param("8000000000000000", id="int64-min"),  # ParseInt refuses it: a malformed size
    pytest.param("ffffffffffffffff", id="uint64-max"),
    pytest.param("1000", id="past-declared"),  # 4096 > what is left of 1000
]


@pytest.mark.parametrize("mode", [ac.STREAMING_SIGNED, ac.STREAMING_UNSIGNED_TRAILER], ids=["signed", "unsigned"])
@pytest.mark.parametrize("size_line", OVERFLOWS)
def test_chunk_size_overflow_never_completes_a_bearer_upload(bearer_proxy: Callable[..., Any], front: BearerFront,
                                                             direct: Any, bucket: str, mode: str,
                                                             size_line: str) -> None:
    """One valid chunk of 10 bytes, then a chunk header whose size overflows
    the running total (or exceeds what is left of the declared 1000 bytes),
    then 2000 bytes the client never signed: the proxy refuses it, and the
    bearer backend never receives a whole 1000-byte body to store."""
    proxy = bearer_proxy({bucket: KEY_A})
    declared = 1000
    url = f"{proxy.endpoint_url}/{bucket}/overflow"
    upload = overflowing_upload(url, mode, declared, 10, size_line, b"E" * 2 * declared)
    body: bytes = upload.raw_body  # type: ignore[attr-defined]
    headers = {**upload.headers, "Content-Length": str(len(body))}
    r = send_raw(url, "PUT", headers, body)
    assert_nothing_complete_reached(front, direct, bucket, "overflow")
    assert r is not None, "the proxy closed the connection without an S3 error"
    assert_s3_error(r, 400, "InvalidRequest")
    assert stored_keys(direct, bucket) == []


def test_chunk_size_past_s3_limit_is_refused_before_any_data(bearer_proxy: Callable[..., Any],
                                                             front: BearerFront, direct: Any, bucket: str) -> None:
    """A declared length past S3's 5 GiB limit of one PUT: EntityTooLarge,
    and nothing is sent to the backend."""
    proxy = bearer_proxy({bucket: KEY_A})
    url = f"{proxy.endpoint_url}/{bucket}/huge"
    declared = 5 * 1024 ** 3 + 1
    upload = overflowing_upload(url, ac.STREAMING_UNSIGNED_TRAILER, declared, 10, "140000000", b"E" * 100)
    body: bytes = upload.raw_body  # type: ignore[attr-defined]
    r = send_raw(url, "PUT", {**upload.headers, "Content-Length": str(len(body))}, body)
    assert r is not None, "the proxy closed the connection without an S3 error"
    assert_s3_error(r, 400, "EntityTooLarge")
    front.wait_idle()
    assert front.seen_for(bucket, "huge") == []
    assert not object_exists(direct, bucket, "huge")


_ = (List, parse_s3_error)  # used by the backend-error tests below
