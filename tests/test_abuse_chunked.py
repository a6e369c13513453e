"""Broken aws-chunked framing (see abuse_checks.py for the suite): valid
headers and signatures, only the framing is bad.
"""

from __future__ import annotations

from typing import Any, Callable, Dict

import pytest

import awschunked as ac
from abuse_checks import TIMEOUT, assert_still_serving
from awschunked import STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER
from helpers import assert_xml_error, stored_keys
from s3wire import exchange, render

# Codes S3 uses for a body whose aws-chunked framing is broken.
FRAMING_CODES = ("InvalidRequest", "InvalidArgument", "IncompleteBody", "MalformedTrailerError")


CHUNK = 8192
SHORT = {STREAMING_SIGNED: "signed", STREAMING_SIGNED_TRAILER: "signed-trailer",
         STREAMING_UNSIGNED_TRAILER: "unsigned-trailer"}


def _upload(proxy: Any, bucket: str, mode: str) -> ac.Upload:
    # Content-Length not signed: the tests send other bodies.
    data = bytes(range(256)) * ((3 * CHUNK + 500) // 256 + 1)
    return ac.build_upload("PUT", f"{proxy.endpoint_url}/{bucket}/framed", data[:3 * CHUNK + 500], mode,
                           content_length=False)


def _first_size(text: bytes) -> Callable[[bytes], bytes]:
    """Replaces the first chunk's size (2000, hex) with ``text``."""

    def change(body: bytes) -> bytes:
        assert body.startswith(b"2000"), body[:40]
        return text + body[4:]

    return change


def _first_line_end(body: bytes) -> int:
    return body.index(b"\r\n")


FRAMINGS: Dict[str, Callable[[bytes], bytes]] = {
    "size-ffffffffffffffff": _first_size(b"ffffffffffffffff"),
    "size-7fffffffffffffff": _first_size(b"7fffffffffffffff"),
    "size-17-digits": _first_size(b"00000000000002000"),
    "size-negative": _first_size(b"-2000"),
    "size-empty": _first_size(b""),
    "size-line-bare-lf": lambda body: body[:_first_line_end(body)] + b"\n" + body[_first_line_end(body) + 2:],
    "size-line-5000-bytes": lambda body: (body[:_first_line_end(body)] + b" " * 5000
                                          + body[_first_line_end(body):]),
    "crlf-after-data-missing": lambda body: (body[:_first_line_end(body) + 2 + CHUNK]
                                             + body[_first_line_end(body) + 4 + CHUNK:]),
}


@pytest.mark.parametrize("mode", [STREAMING_SIGNED, STREAMING_UNSIGNED_TRAILER],
                         ids=[SHORT[STREAMING_SIGNED], SHORT[STREAMING_UNSIGNED_TRAILER]])
@pytest.mark.parametrize("framing", list(FRAMINGS))
def test_broken_chunk_framing(proxy: Any, direct: Any, bucket: str, mode: str, framing: str) -> None:
    """A chunk size that overflows, is negative or missing, a size line that
    ends with a bare LF or runs on, chunk data not followed by CRLF: 400,
    nothing stored."""
    upload = _upload(proxy, bucket, mode)
    assert_xml_error((ac.send(upload, body=FRAMINGS[framing](upload.body()), timeout=TIMEOUT)), 400,
                     FRAMING_CODES)
    assert stored_keys(direct, bucket) == []
    assert_still_serving(proxy, direct, bucket)


def _trailer_lines(upload: ac.Upload, extra: bytes) -> bytes:
    """The body with ``extra`` trailer lines right after the final chunk's line."""
    body = upload.body()
    final = upload.chunks[-1].size_line()
    at = body.rindex(final) + len(final)
    return body[:at] + extra + body[at:]


TRAILERS: Dict[str, Callable[[ac.Upload], bytes]] = {
    # 200 lines of 88 bytes: over any sane limit for the whole trailer section.
    "section-17kib": lambda u: _trailer_lines(u, b"".join(b"x-amz-trailer-signature:" + b"0" * 64 + b"\r\n"
                                                          for _ in range(200))),
    "one-line-5000-bytes": lambda u: _trailer_lines(u, b"x-amz-meta-pad:" + b"p" * 5000 + b"\r\n"),
    "line-without-colon": lambda u: _trailer_lines(u, b"not a trailer line\r\n"),
    "second-checksum": lambda u: _trailer_lines(u, b"x-amz-checksum-sha256:" + b"A" * 44 + b"\r\n"),
}


@pytest.mark.parametrize("mode", [STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER],
                         ids=[SHORT[STREAMING_SIGNED_TRAILER], SHORT[STREAMING_UNSIGNED_TRAILER]])
@pytest.mark.parametrize("trailer", list(TRAILERS))
def test_broken_trailer(proxy: Any, direct: Any, bucket: str, mode: str, trailer: str) -> None:
    """A trailer section too large, an overlong or malformed trailer line, a
    second checksum: 400, nothing stored."""
    upload = _upload(proxy, bucket, mode)
    assert_xml_error((ac.send(upload, body=TRAILERS[trailer](upload), timeout=TIMEOUT)), 400, FRAMING_CODES)
    assert stored_keys(direct, bucket) == []
    assert_still_serving(proxy, direct, bucket)


HTTP_CHUNKINGS: Dict[str, Callable[[bytes], bytes]] = {
    "size-not-hex": lambda b: b"zz\r\n" + b + b"\r\n0\r\n\r\n",
    "size-overflows": lambda b: b"f" * 20 + b"\r\n" + b + b"\r\n0\r\n\r\n",
    "data-longer-than-size": lambda b: f"{len(b) - 7:x}\r\n".encode() + b + b"\r\n0\r\n\r\n",
    "cut-inside-the-data": lambda b: f"{len(b):x}\r\n".encode() + b[:len(b) // 2],
}


@pytest.mark.parametrize("chunking", list(HTTP_CHUNKINGS))
def test_broken_http_chunking_around_aws_chunked(proxy: Any, direct: Any, bucket: str, chunking: str) -> None:
    """A valid aws-chunked body inside broken HTTP Transfer-Encoding: chunked
    framing (Go decodes that layer): 400 S3 XML, nothing stored."""
    upload = _upload(proxy, bucket, STREAMING_SIGNED)
    headers = list({**upload.headers, "Host": f"127.0.0.1:{proxy.http_port}",
                    "Transfer-Encoding": "chunked"}.items())
    raw = render("PUT", upload.path, headers) + HTTP_CHUNKINGS[chunking](upload.body())
    # half-closed: with "cut-inside-the-data" the body just ends
    reply = exchange(proxy.http_port, raw, method="PUT", half_close=True, timeout=TIMEOUT)
    assert_xml_error(reply, 400, FRAMING_CODES)
    assert stored_keys(direct, bucket) == []
    assert_still_serving(proxy, direct, bucket)
