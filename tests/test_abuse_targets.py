"""Hostile request targets (see abuse_checks.py for the suite): bucket
names, dot segments, double encoding, the absolute form, CONNECT, and hosts
of unconfigured domains.
"""

from __future__ import annotations

import posixpath
import socket
import urllib.parse
from typing import Any, Callable, Iterator

import pytest

from abuse_checks import TIMEOUT, assert_any_xml_error, assert_still_serving
from helpers import FROM_RECORDER, assert_xml_error, raw_signed_headers, send_raw, stored_body, stored_keys
from s3wire import LoopbackServer, RecordingBackend, read_reply, render

DOMAIN = "s3.osp.test"


class Listener(LoopbackServer):
    """A TCP port that records whether anything connected to it."""

    def __init__(self) -> None:
        self.connections = 0
        super().__init__()

    def _connected(self, conn: socket.socket) -> None:
        self.connections += 1
        conn.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    other = Listener()
    yield other
    other.close()


@pytest.mark.parametrize("name", [
    pytest.param("bad%20name", id="space"),
    pytest.param("bad%00name", id="nul"),
    pytest.param("bad%0Aname", id="newline"),
    pytest.param("bad%3Fname", id="question-mark"),
    pytest.param("a%2Fb", id="encoded-slash"),
    pytest.param("..", id="dot-dot"),
    pytest.param("%2e%2e", id="encoded-dot-dot"),
    pytest.param(".", id="dot"),
    pytest.param("b" * 256, id="256-chars"),
])
def test_invalid_bucket_name(proxy: Any, direct: Any, bucket: str, name: str) -> None:
    """A name no bucket can have, under any rules: S3's (and versitygw's) 400
    InvalidBucketName, never an echo of control bytes, nothing created."""
    target = f"/{name}/k"
    reply = send_raw(proxy, "PUT", target, raw_signed_headers(proxy, "PUT", target, b"x"), b"x")
    assert_xml_error(reply, 400, "InvalidBucketName")
    assert b"\0" not in reply.body
    assert stored_keys(direct, bucket) == []
    assert_still_serving(proxy, direct, bucket)


TRAVERSALS = [
    pytest.param("{b}/../{o}/secret", id="dot-dot"),
    pytest.param("{b}/%2e%2e/{o}/secret", id="encoded-dot-dot"),
    pytest.param("{b}/%2E%2E/{o}/secret", id="encoded-upper-dot-dot"),
    pytest.param("{b}/.%2e/{o}/secret", id="half-encoded-dot-dot"),
    pytest.param("{b}/..%2F{o}%2Fsecret", id="dot-dot-encoded-slashes"),
    pytest.param("{b}/%2e%2e%2f{o}%2fsecret", id="all-encoded"),
    pytest.param("{b}/x/../../{o}/secret", id="deeper"),
    pytest.param("{b}/./../{o}/secret", id="dot-then-dot-dot"),
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_dot_segments_do_not_reach_another_bucket(proxy: Any, direct: Any, bucket: str,
                                                  make_bucket: Callable[..., str], path: str) -> None:
    """/<allowed>/../<other>/secret: the proxy authorised <allowed> only.
    A GET must not read <other>'s object, a PUT must not write there."""
    other = make_bucket("other")
    direct.put_object(Bucket=other, Key="secret", Body=b"TOP-SECRET")
    target = "/" + path.format(b=bucket, o=other)

    got = send_raw(proxy, "GET", target, raw_signed_headers(proxy, "GET", target))
    assert b"TOP-SECRET" not in got.body
    assert_any_xml_error(got)

    put = send_raw(proxy, "PUT", target, raw_signed_headers(proxy, "PUT", target, b"overwrite"), b"overwrite")
    assert stored_body(direct, other, "secret") == b"TOP-SECRET"
    assert stored_keys(direct, other) == ["secret"]
    if put.status != 200:  # a literal key inside <allowed> would be S3's reading
        assert_any_xml_error(put)
        assert stored_keys(direct, bucket) == []
    assert_still_serving(proxy, direct, bucket)


def _resolved(raw_target: str) -> str:
    """Where a backend that decodes and removes dot segments (RFC 3986
    section 6.2.2) would take a request target."""
    path = urllib.parse.unquote(raw_target.split("?", 1)[0])
    return posixpath.normpath(path)


@pytest.mark.parametrize("path", TRAVERSALS)
def test_dot_segments_are_not_forwarded(start_proxy: Callable[..., Any], backend: Any, recorder: RecordingBackend,
                                        path: str) -> None:
    """Whatever the proxy forwards for /<allowed>/../<other>/... must stay
    inside <allowed> on any backend, not only one (like versitygw) that
    refuses dot segments itself: refused by the proxy, or sent so that it
    cannot resolve elsewhere."""
    proxy = start_proxy(cos_map={"allowed": backend.entry(port=recorder.port)})
    target = "/" + path.format(b="allowed", o="other")
    for method, body in (("GET", b""), ("PUT", b"x")):
        reply = send_raw(proxy, method, target, raw_signed_headers(proxy, method, target, body), body)
        if reply.status != 200:
            assert_any_xml_error(reply)
    escaped = [(r.method, r.target) for r in recorder.requests if not (_resolved(r.target) + "/").startswith("/allowed/")]
    assert escaped == [], f"forwarded outside the authorised bucket: {escaped}"


def test_double_encoded_key_is_kept_literally(proxy: Any, direct: Any, bucket: str,
                                              make_bucket: Callable[..., str]) -> None:
    """%252F is a literal "%2F" in the key: stored as such, never decoded twice
    into a '/' (or a '../' into another bucket)."""
    other = make_bucket("other")
    for target, key in ((f"/{bucket}/a%252Fb", "a%2Fb"),
                        (f"/{bucket}/..%252F{other}%252Fsecret", f"..%2F{other}%2Fsecret"),
                        (f"/{bucket}/%252e%252e%252F{other}", f"%2e%2e%2F{other}")):
        reply = send_raw(proxy, "PUT", target, raw_signed_headers(proxy, "PUT", target, key.encode()), key.encode())
        assert reply.status == 200, (target, reply.status, reply.body[:300])
        assert stored_body(direct, bucket, key) == key.encode()
    assert sorted(stored_keys(direct, bucket)) == sorted(["a%2Fb", f"..%2F{other}%2Fsecret", f"%2e%2e%2F{other}"])
    assert stored_keys(direct, other) == []
    assert_still_serving(proxy, direct, bucket)


def test_absolute_form_never_reaches_the_named_host(proxy: Any, direct: Any, bucket: str, listener: Listener) -> None:
    """GET http://<other host>/<bucket>/key: the proxy is no forward proxy. A
    signed request is served from the bucket's backend (as boto3 sends
    through an HTTP proxy); an unsigned one is refused; the named host is
    never contacted."""
    direct.put_object(Bucket=bucket, Key="k", Body=b"from the backend")
    other = f"127.0.0.1:{listener.port}"
    target = f"http://{other}/{bucket}/k"
    reply = send_raw(proxy, "GET", target, raw_signed_headers(proxy, "GET", f"/{bucket}/k", host=other))
    assert (reply.status, reply.body) == (200, b"from the backend")

    reply = send_raw(proxy, "GET", target, [("Host", other)])
    assert_xml_error(reply, 403, "AccessDenied")
    reply = send_raw(proxy, "PUT", f"http://{other}/elsewhere/k", raw_signed_headers(proxy, "PUT", "/elsewhere/k", b"x", host=other),
                 b"x")
    assert_xml_error(reply, 404, "NoSuchBucket")
    assert listener.connections == 0
    assert stored_keys(direct, bucket) == ["k"]
    assert_still_serving(proxy, direct, bucket)


def test_connect_is_no_tunnel(proxy: Any, direct: Any, bucket: str, listener: Listener) -> None:
    """CONNECT host:port is refused with an S3 error, the connection is not
    turned into a tunnel and the host is never contacted."""
    other = f"127.0.0.1:{listener.port}"
    sock = socket.create_connection(("127.0.0.1", proxy.http_port), timeout=TIMEOUT)
    try:
        sock.sendall(render("CONNECT", other, [("Host", other)]))
        reply = read_reply(sock, "CONNECT")
        assert_xml_error(reply, reply.status, ("AccessDenied", "MethodNotAllowed", "InvalidRequest"))
        assert reply.status in (400, 403, 405)
        # Bytes sent after the answer go nowhere near the host.
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    finally:
        sock.close()
    assert listener.connections == 0
    assert_still_serving(proxy, direct, bucket)


def test_signed_connect_is_not_forwarded(start_proxy: Callable[..., Any], backend: Any, recorder: RecordingBackend) -> None:
    """Go parses ``CONNECT /bucket/key`` as a path; even signed, it is no S3
    request: the proxy answers 405 MethodNotAllowed itself instead of
    sending a CONNECT to the backend."""
    proxy = start_proxy(cos_map={"allowed": backend.entry(port=recorder.port)})
    target = "/allowed/k"
    reply = send_raw(proxy, "CONNECT", target, raw_signed_headers(proxy, "CONNECT", target))
    assert FROM_RECORDER not in reply.body
    assert_xml_error(reply, 405, "MethodNotAllowed")
    assert recorder.requests == []


@pytest.mark.parametrize("host", [
    pytest.param("{b}.evil.test", id="other-domain"),
    pytest.param("{b}.{d}.evil.test", id="proxy-domain-inside-another"),
    pytest.param("{b}{d}", id="no-dot-before-domain"),
    pytest.param("{b}.x{d}", id="domain-suffix-without-dot"),
])
def test_host_of_an_unconfigured_domain(start_proxy: Callable[..., Any], direct: Any, bucket: str,
                                        host: str) -> None:
    """virtual_host_domains set, Host under some other domain: path style, so
    ``PUT /key`` names the bucket "key" -- NoSuchBucket; the bucket in the
    Host is untouched."""
    proxy = start_proxy(bucket, virtual_host_domains=[DOMAIN])
    full = f"{host.format(b=bucket, d=DOMAIN)}:{proxy.http_port}"
    reply = send_raw(proxy, "PUT", "/key", raw_signed_headers(proxy, "PUT", "/key", b"x", host=full), b"x")
    fields = assert_xml_error(reply, 404, "NoSuchBucket")
    assert fields.get("Resource", "key") == "key"
    assert stored_keys(direct, bucket) == []
    assert_still_serving(proxy, direct, bucket)
