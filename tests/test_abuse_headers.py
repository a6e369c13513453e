"""Hostile header sections (see abuse_checks.py for the suite): CR, LF, NUL
and size limits, and request smuggling (Content-Length and
Transfer-Encoding).
"""

from __future__ import annotations

from typing import Any, Callable, List, Tuple

import pytest

from abuse_checks import assert_go_answered, assert_still_serving, replace
from helpers import assert_xml_error, raw_signed_headers, send_raw, stored_keys
from s3wire import Headers, RecordingBackend, render


def test_crlf_injected_amz_header(proxy: Any, direct: Any, bucket: str) -> None:
    """A value carrying CRLF (or a bare LF) smuggles a second x-amz-* header
    in: it is not signed, so the request is refused."""
    for key, eol in (("crlf", "\r\n"), ("lf", "\n")):
        target = f"/{bucket}/{key}"
        headers = raw_signed_headers(proxy, "PUT", target, b"x", extra=[("X-Amz-Meta-A", "1")])
        headers = [(n, v + f"{eol}X-Amz-Meta-Injected: 1" if n == "X-Amz-Meta-A" else v) for n, v in headers]
        reply = send_raw(proxy, "PUT", target, headers, b"x")
        assert_xml_error(reply, 403, "AccessDenied")
    assert stored_keys(direct, bucket) == []
    assert_still_serving(proxy, direct, bucket)


def test_obs_fold_of_a_signed_header(proxy: Any, direct: Any, bucket: str) -> None:
    """An obsolete line folding of a signed header (RFC 9112: reject, or read
    as a space): either way not the signed value, so refused."""
    target = f"/{bucket}/fold"
    headers = raw_signed_headers(proxy, "PUT", target, b"x", extra=[("X-Amz-Meta-A", "1")])
    headers = [(n, v + "\r\n folded" if n == "X-Amz-Meta-A" else v) for n, v in headers]
    reply = send_raw(proxy, "PUT", target, headers, b"x", check_closed=True)
    if reply.headers.get("Content-Type", "").startswith("text/plain"):
        assert_go_answered(reply, 400)
    else:
        assert_xml_error(reply, 403, ("SignatureDoesNotMatch", "AccessDenied"))
    assert stored_keys(direct, bucket) == []
    assert_still_serving(proxy, direct, bucket)


# Shapes Go's HTTP server answers itself, in plain text, before the handler
# runs: (id, how to break a valid signed PUT, Go's status).
GO_ANSWERED: List[Tuple[str, Callable[[Headers], Headers], int]] = [
    ("bare-cr-in-value", lambda h: h + [("X-Amz-Meta-A", "a\rb")], 400),
    ("nul-in-value", lambda h: h + [("X-Amz-Meta-A", "a\0b")], 400),
    ("space-before-colon", lambda h: h + [("X-Amz-Meta-A ", "1")], 400),
    ("two-host-headers", lambda h: h + [("Host", "other.example")], 400),
    ("no-host-header", lambda h: replace(h, "Host"), 400),
    ("one-mib-of-headers", lambda h: h + [(f"X-Pad-{i}", "v" * 500) for i in range(2100)], 431),
]


@pytest.mark.parametrize("mangle, status", [pytest.param(m, s, id=i) for i, m, s in GO_ANSWERED])
def test_answered_by_go(proxy: Any, direct: Any, bucket: str, mangle: Callable[[Headers], Headers],
                        status: int) -> None:
    """Go's server refuses these (plain text, not S3 XML): the status, the
    connection closed, nothing stored."""
    target = f"/{bucket}/go"
    reply = send_raw(proxy, "PUT", target, mangle(raw_signed_headers(proxy, "PUT", target, b"x")), b"x", check_closed=True)
    assert_go_answered(reply, status)
    assert stored_keys(direct, bucket) == []
    assert_still_serving(proxy, direct, bucket)


HEADER_SETS = [pytest.param(2000, 1, id="2000-headers-20kb"), pytest.param(2000, 12, id="2000-headers-45kb")]


@pytest.mark.parametrize("count, size", HEADER_SETS)
def test_huge_header_set_is_refused_by_the_proxy(start_proxy: Callable[..., Any], backend: Any, recorder: RecordingBackend,
                                                 count: int, size: int) -> None:
    """Thousands of headers, under Go's 64 KiB limit but far over S3's 8 KiB:
    the proxy answers S3's 400 RequestHeaderSectionTooLarge itself (or Go a
    plain 431, if its limit is lowered) instead of handing them to the
    backend -- versitygw then refuses and closes while the proxy is still
    writing, which comes back as a 502 or its 400, by chance."""
    proxy = start_proxy(cos_map={"allowed": backend.entry(port=recorder.port)})
    target = "/allowed/many"
    headers = raw_signed_headers(proxy, "PUT", target, b"x") + [(f"X-Pad-{i:05d}", "v" * size) for i in range(count)]
    reply = send_raw(proxy, "PUT", target, headers, b"x", check_closed=True)
    if reply.status == 431:
        assert_go_answered(reply, 431)
    else:
        assert_xml_error(reply, 400, "RequestHeaderSectionTooLarge")
    assert recorder.requests == []


@pytest.mark.parametrize("count, size", HEADER_SETS)
def test_huge_header_set_stores_nothing(proxy: Any, direct: Any, bucket: str, count: int, size: int) -> None:
    """The same against versitygw: refused (never a 2xx), nothing stored, the
    proxy still serving."""
    target = f"/{bucket}/many"
    headers = raw_signed_headers(proxy, "PUT", target, b"x") + [(f"X-Pad-{i:05d}", "v" * size) for i in range(count)]
    reply = send_raw(proxy, "PUT", target, headers, b"x")
    assert reply.status >= 400, (reply.status, reply.body[:300])
    assert stored_keys(direct, bucket) == []
    assert_still_serving(proxy, direct, bucket)


def test_content_length_and_transfer_encoding(proxy: Any, direct: Any, bucket: str) -> None:
    """Content-Length and Transfer-Encoding: chunked together (RFC 9112 section
    6.1: "ought to be handled as an error"). A front end framing by
    Content-Length sees one request; a server framing by chunked sees the
    request hidden in the body as a second one. Refused as S3 refuses any
    HTTP-chunked body (501 NotImplemented), connection closed, neither
    request executed."""
    hidden_target = f"/{bucket}/smuggled"
    hidden = render("PUT", hidden_target, raw_signed_headers(proxy, "PUT", hidden_target, b"hello")
                    + [("Content-Length", "5")]) + b"hello"
    body = b"5\r\nhello\r\n0\r\n\r\n" + hidden
    target = f"/{bucket}/front"
    headers = raw_signed_headers(proxy, "PUT", target, b"hello") + [("Content-Length", str(len(body))),
                                                       ("Transfer-Encoding", "chunked")]
    reply = send_raw(proxy, "PUT", target, headers, body, content_length=False, check_closed=True)
    assert stored_keys(direct, bucket) == [], "the request hidden in the body was executed"
    assert_xml_error(reply, 501, "NotImplemented")
    assert reply.closed, "the connection stayed open: the hidden request can follow"
    assert_still_serving(proxy, direct, bucket)


def test_two_different_content_lengths(proxy: Any, direct: Any, bucket: str) -> None:
    """Answered by Go's server: 400, connection closed, nothing stored."""
    target = f"/{bucket}/two-lengths"
    headers = raw_signed_headers(proxy, "PUT", target, b"hello") + [("Content-Length", "5"), ("Content-Length", "6")]
    reply = send_raw(proxy, "PUT", target, headers, b"hello!", content_length=False, check_closed=True)
    assert_go_answered(reply, 400)
    assert stored_keys(direct, bucket) == []
    assert_still_serving(proxy, direct, bucket)


def test_chunked_not_the_final_transfer_coding(proxy: Any, direct: Any, bucket: str) -> None:
    """Transfer-Encoding: chunked, identity -- chunked is not last, so the body
    length cannot be known. RFC 9112 section 6.3 says 400 and close; Go's
    server answers 501 and closes (plain text), which is also what S3 says to
    any Transfer-Encoding."""
    target = f"/{bucket}/te"
    headers = raw_signed_headers(proxy, "PUT", target, b"hello") + [("Transfer-Encoding", "chunked, identity")]
    reply = send_raw(proxy, "PUT", target, headers, b"5\r\nhello\r\n0\r\n\r\n", content_length=False,
                 check_closed=True)
    assert_go_answered(reply, 501)
    assert stored_keys(direct, bucket) == []
    assert_still_serving(proxy, direct, bucket)
