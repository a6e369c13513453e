"""A bearer-token S3 front: IBM COS as seen by the proxy, in front of versitygw.

``BearerFront`` listens on 127.0.0.1 (plain HTTP, or TLS with a given
certificate) and accepts only ``Authorization: Bearer <token>`` with a token
the test's IamServer issued and that is still valid; anything else gets
``403 AccessDenied`` in S3 XML and is never forwarded. It understands both
virtual-hosted (``Host: bucket.<domain>``, for the domains it is given) and
path-style requests.

It reads each request body completely (Content-Length or HTTP chunked) and
refuses to forward a body that ends before its announced length: a proxy that
aborts an upload half-way thus leaves nothing at versitygw. Whole requests
are forwarded to versitygw path style, re-signed with botocore SigV4
(``UNSIGNED-PAYLOAD``: like IBM COS with a bearer token, nothing checks the
payload hash on the way) with versitygw's root keys, and versitygw's status,
headers and body are relayed back.

Every request is recorded (:class:`Seen`): method, path, query, Host header,
token, headers, body length, whether the body was complete, whether it was
accepted, the status answered.
"""

from __future__ import annotations

import http.client
import secrets
import socket
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Sequence, Tuple
from xml.sax.saxutils import escape

from helpers import BACKEND_ACCESS_KEY, BACKEND_SECRET_KEY, object_exists, sign_request
from iam_server import IamServer
from s3wire import serve_in_thread

# Request headers never forwarded to versitygw: hop-by-hop, the client's
# authentication, and the aws-chunked framing (the front forwards plain bytes).
_DROP = {
    "host", "authorization", "connection", "keep-alive", "proxy-connection", "te", "trailer",
    "transfer-encoding", "upgrade", "expect", "content-length", "x-amz-date", "x-amz-content-sha256",
    "x-amz-security-token", "x-amz-decoded-content-length", "x-amz-trailer", "user-agent",
    "accept-encoding",
}
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "content-length",
               "date", "server"}  # the front sends its own Date and Server


@dataclass
class Seen:
    """One request as the front received it."""

    at: float
    method: str
    path: str  # the raw (percent-encoded) path, without the query
    query: str
    host: str  # the Host header as sent
    bucket: str  # from the Host (virtual) or the first path segment
    key: str  # the decoded object key ("" for bucket-level requests)
    virtual: bool
    authorization: str
    token: Optional[str]
    headers: Dict[str, str]  # lower-case names
    content_length: Optional[int] = None
    body_length: int = 0
    complete: Optional[bool] = None  # None: the body is still being read
    accepted: bool = False
    reason: str = ""
    status: int = 0
    tls: bool = False
    body_sample: bytes = field(default=b"", repr=False)


def s3_error(code: str, message: str, resource: str = "") -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{escape(code)}</Code>'
            f"<Message>{escape(message)}</Message><Resource>{escape(resource)}</Resource>"
            f"<RequestId>{secrets.token_hex(8)}</RequestId></Error>").encode()


class _Incomplete(Exception):
    pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10  # a sender that stalls mid-body counts as gone
    server: "_Server"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (ConnectionError, ssl.SSLError, socket.timeout):
            self.close_connection = True

    def _reply(self, status: int, headers: Sequence[Tuple[str, str]], body: bytes, *, head: bool = False) -> None:
        self.send_response(status)
        length = str(len(body))
        for name, value in headers:
            if head and name.lower() == "content-length":
                length = value  # HEAD: the object's length, no body
            elif name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", length)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _read_body(self, seen: Seen) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts: List[bytes] = []
            while True:
                line = self.rfile.readline(65537)
                if not line.endswith(b"\n"):
                    raise _Incomplete("chunk size line cut")
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while True:  # trailer section
                        trailer = self.rfile.readline(65537)
                        if not trailer:
                            raise _Incomplete("trailers cut")
                        if trailer in (b"\r\n", b"\n"):
                            return b"".join(parts)
                data = self.rfile.read(size)
                parts.append(data)
                seen.body_length += len(data)
                if len(data) < size or self.rfile.read(2) != b"\r\n":
                    raise _Incomplete("chunk cut")
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        seen.content_length = int(length)
        chunks: List[bytes] = []
        remaining = seen.content_length
        while remaining > 0:
            data = self.rfile.read(min(remaining, 1 << 16))
            if not data:
                raise _Incomplete(f"body ended {remaining} bytes short of Content-Length")
            chunks.append(data)
            seen.body_length += len(data)
            remaining -= len(data)
        return b"".join(chunks)

    def _handle(self) -> None:
        front = self.server.front
        parts = urllib.parse.urlsplit(self.path)
        host = self.headers.get("Host", "")
        bucket, raw_key, virtual = front.route(host, parts.path)
        authorization = self.headers.get("Authorization", "")
        token = authorization[len("Bearer "):].strip() if authorization.startswith("Bearer ") else None
        seen = Seen(time.time(), self.command, parts.path, parts.query, host, bucket,
                    urllib.parse.unquote(raw_key), virtual, authorization, token,
                    {k.lower(): v for k, v in self.headers.items()}, tls=front.tls)
        front._record(seen)

        if token is None:
            seen.reason = "no bearer token"
        elif front.iam.token(token) is None:
            seen.reason = "unknown token"
        elif not front.iam.is_valid(token, seen.at):
            seen.reason = "expired token"
        if seen.reason:
            seen.complete = False  # refused before its body was read
            seen.status = 403
            self.close_connection = True
            self._reply(403, [("Content-Type", "application/xml")],
                        s3_error("AccessDenied", f"Bearer front: {seen.reason}.", parts.path),
                        head=self.command == "HEAD")
            return

        try:
            body = self._read_body(seen)
        except (_Incomplete, ConnectionError, socket.timeout, ValueError) as e:
            seen.complete = False
            seen.reason = f"incomplete body: {e}"
            self.close_connection = True
            return  # never forwarded, no answer: the sender is gone anyway
        seen.complete = True
        seen.body_sample = body[:64]
        seen.accepted = True
        status, headers, answer = front.forward(self.command, bucket, raw_key, parts.query, self.headers, body)
        seen.status = status
        self._reply(status, headers, answer, head=self.command == "HEAD")

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog of 5 resets connections when the
    # proxy opens dozens at once, as a real S3 endpoint never would.
    request_queue_size = 128
    front: "BearerFront"


class BearerFront:
    """The front. ``domains``: host names whose subdomains are buckets
    (virtual-hosted requests)."""

    def __init__(self, iam: IamServer, backend_url: str, *, domains: Sequence[str] = (),
                 tls_cert: Optional[str] = None, tls_key: Optional[str] = None,
                 access_key: str = BACKEND_ACCESS_KEY, secret_key: str = BACKEND_SECRET_KEY) -> None:
        self.iam = iam
        self.backend = urllib.parse.urlsplit(backend_url)
        self.backend_url = backend_url.rstrip("/")
        self.domains = [d.lower() for d in domains]
        self.tls_cert, self.tls_key = tls_cert, tls_key
        self.access_key, self.secret_key = access_key, secret_key
        self._lock = threading.Lock()
        self._seen: List[Seen] = []
        self._server: Optional[_Server] = None
        self.port = 0

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def entry(self, apikey: Optional[str], **overrides: Any) -> Dict[str, Any]:
        """A cos_map entry for a bucket behind this front over plain HTTP,
        path style, with an IBM API key if given."""
        entry: Dict[str, Any] = {"host": "127.0.0.1", "port": self.port, "scheme": "http",
                                 "addressing_style": "path"}
        if apikey is not None:
            entry["apikey"] = apikey
        entry.update(overrides)
        return entry

    def start(self) -> "BearerFront":
        server = _Server(("127.0.0.1", 0), _Handler)
        server.front = self
        self.port = server.server_address[1]
        self._server = server
        serve_in_thread(server, "front", self.tls_cert, self.tls_key)
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def __enter__(self) -> "BearerFront":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ---------------------------------------------------------------- records

    def _record(self, seen: Seen) -> None:
        with self._lock:
            self._seen.append(seen)

    @property
    def seen(self) -> List[Seen]:
        with self._lock:
            return list(self._seen)

    def seen_for(self, bucket: str, key: Optional[str] = None) -> List[Seen]:
        return [s for s in self.seen if s.bucket == bucket and (key is None or s.key == key)]

    def wait_idle(self, timeout: float = 12.0) -> None:
        """Waits until every request body has been read completely or
        found incomplete."""
        deadline = time.monotonic() + timeout
        while any(s.complete is None for s in self.seen):
            if time.monotonic() > deadline:
                pending = [(s.method, s.path, s.body_length, s.content_length)
                           for s in self.seen if s.complete is None]
                raise AssertionError(f"the sender neither finished nor abandoned these bodies: {pending}")
            time.sleep(0.02)

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()

    # ---------------------------------------------------------------- routing

    def route(self, host: str, path: str) -> Tuple[str, str, bool]:
        """(bucket, raw key, virtual?) of a request."""
        hostname = host.rsplit(":", 1)[0].lower() if not host.startswith("[") else host
        for domain in self.domains:
            if hostname.endswith("." + domain):
                return hostname[: -len(domain) - 1], path.lstrip("/"), True
        bucket, _, key = path.lstrip("/").partition("/")
        return urllib.parse.unquote(bucket), key, False

    def forward(self, method: str, bucket: str, raw_key: str, query: str, headers: Any,
                body: bytes) -> Tuple[int, List[Tuple[str, str]], bytes]:
        """Sends the request to versitygw path style, SigV4-signed with
        UNSIGNED-PAYLOAD, and returns its answer."""
        key = urllib.parse.unquote(raw_key)
        path = "/" + urllib.parse.quote(bucket, safe="")
        if key or raw_key:
            path += "/" + urllib.parse.quote(key, safe="/-_.~")
        url = self.backend_url + path + (f"?{query}" if query else "")
        forward: Dict[str, str] = {}
        for name, value in headers.items():
            lower = name.lower()
            if lower in _DROP:
                continue
            if lower == "content-encoding":
                value = ",".join(v for v in (p.strip() for p in value.split(",")) if v and v != "aws-chunked")
                if not value:
                    continue
            forward[name] = value
        forward["Content-Length"] = str(len(body))
        signed = sign_request(method, url, access_key=self.access_key, secret_key=self.secret_key,
                              body=body, headers=forward, payload_hash="UNSIGNED-PAYLOAD")
        conn = http.client.HTTPConnection(self.backend.hostname, self.backend.port, timeout=30)
        try:
            conn.request(method, path + (f"?{query}" if query else ""), body=body if body or method in (
                "PUT", "POST") else None, headers=signed)
            response = conn.getresponse()
            answer = response.read()
            return response.status, list(response.getheaders()), answer
        finally:
            conn.close()


def assert_nothing_complete_reached(front: BearerFront, direct: Any, bucket: str, key: str) -> None:
    """The front never received a whole body for ``bucket/key`` (so a bearer
    backend, which checks no payload hash, stored nothing), and versitygw
    holds no such object."""
    front.wait_idle()
    complete = [s for s in front.seen_for(bucket, key) if s.complete]
    assert complete == [], f"the backend received a complete body: {complete}"
    assert not object_exists(direct, bucket, key), f"{key} was stored"
