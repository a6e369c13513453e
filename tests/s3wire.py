"""The wire under the tests: SigV4 signing, raw HTTP, and a recording backend.

One module, shared by every suite that needs control over the bytes:

signing
    :func:`signing_key` (the SigV4 key derivation, written once),
    :func:`sign_headers` (botocore's S3 signer, as a client signs),
    :func:`sign_raw` (by hand, over exactly the headers that go on the wire,
    duplicates included), :func:`presign` (a presigned URL by hand: any date,
    expiry, region, extra signed headers or parameters),
    :func:`presign_with_botocore` (botocore's query signer at a fixed time) and
    :func:`clock_at` (freezes botocore's clock).
raw HTTP
    :func:`render` writes a request head byte for byte (header names and
    order as given: duplicates, odd case and ``_`` survive), :func:`exchange`
    sends bytes on a new connection and reads one answer (:func:`send_then_shut`
    half-closes first, and tells an answer from none),
    :func:`send_expect_continue` plays the ``Expect: 100-continue`` dance,
    :func:`send_watching` reads an answer without trusting it (a body cut
    short is reported, not hidden).
HTTP/1.1 framing
    :func:`read_head` and :func:`read_body`, as a server reads a request
    (the recording backend here, faultbackend.FaultBackend).
a recording backend
    :class:`RecordingBackend`, a loopback HTTP/1.1 server that records each
    request it receives (request line, headers in order, body) and answers
    what the test configures; :class:`LoopbackServer` is its accept loop.
    The other test servers share two pieces with it: :func:`serve_in_thread`
    (an http.server on a daemon thread, TLS if asked; iam_server.py,
    bearer_front.py) and :func:`cut` (every open connection shut down at
    once, on stop; faultbackend.py, iam_server.py).

This module knows no test keys: callers pass them (helpers.py holds them and
wraps :func:`sign_headers` as ``sign_request`` with the client's keys).
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import http.client
import socket
import socketserver
import ssl
import threading
import time
import types
import urllib.parse
from dataclasses import dataclass, field
from typing import IO, Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple
from unittest import mock

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from requests.structures import CaseInsensitiveDict

REGION = "us-east-1"
ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"

Headers = List[Tuple[str, str]]

# --------------------------------------------------------------------------
# signing


def clock_at(when: datetime.datetime) -> Any:
    """A stand-in for botocore.auth's ``datetime`` module whose utcnow() is
    ``when`` (botocore's SigV4Auth.add_auth reads datetime.datetime.utcnow()).
    Use as ``mock.patch.object(botocore.auth, "datetime", clock_at(at))``."""

    class FrozenDateTime(datetime.datetime):
        @classmethod
        def utcnow(cls) -> datetime.datetime:  # type: ignore[override]
            return when

    return types.SimpleNamespace(**{**vars(datetime), "datetime": FrozenDateTime})


def utcnow() -> datetime.datetime:
    """Naive UTC now, as botocore's signer uses."""
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def amz_now() -> str:
    """Now as an X-Amz-Date (20240101T000000Z)."""
    return utcnow().strftime("%Y%m%dT%H%M%SZ")


def signing_key(secret: str, date: str, region: str = REGION, service: str = "s3") -> bytes:
    """SigV4's derived key: HMAC chain over date (YYYYMMDD), region, service
    and ``aws4_request``, starting from ``"AWS4" + secret``."""
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def hmac_hex(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def string_to_sign(amz_date: str, scope: str, canonical_request: str) -> str:
    return "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()])


class _FixedPayloadAuth(botocore.auth.S3SigV4Auth):
    """S3 SigV4 with an x-amz-content-sha256 the test chooses."""

    def __init__(self, credentials: Credentials, payload_hash: str, region: str) -> None:
        super().__init__(credentials, "s3", region)
        self._payload_hash = payload_hash

    def payload(self, request: Any) -> str:
        return self._payload_hash


def sign_headers(
    method: str,
    url: str,
    *,
    access_key: str,
    secret_key: str,
    body: bytes = b"",
    headers: Optional[Mapping[str, str]] = None,
    payload_hash: Optional[str] = None,
    at: Optional[datetime.datetime] = None,
    region: str = REGION,
) -> Dict[str, str]:
    """Signs a request with botocore's S3 SigV4 signer, as a client would,
    and returns the headers to send. The payload hash is the sha256 of
    ``body`` unless ``payload_hash`` is given; the signing time is now unless
    ``at`` (naive UTC) is given."""
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    credentials = Credentials(access_key, secret_key)
    auth: botocore.auth.SigV4Auth
    if payload_hash is None:
        auth = botocore.auth.S3SigV4Auth(credentials, "s3", region)
    else:
        auth = _FixedPayloadAuth(credentials, payload_hash, region)
    if at is None:
        auth.add_auth(request)
    else:
        with mock.patch.object(botocore.auth, "datetime", clock_at(at)):
            auth.add_auth(request)
    return dict(request.headers.items())


def presign_with_botocore(url: str, *, access_key: str, secret_key: str, at: datetime.datetime,
                          method: str = "GET", expires: int = 300, region: str = REGION) -> str:
    """A presigned URL made by botocore's query signer at a fixed time."""
    request = AWSRequest(method=method, url=url)
    auth = botocore.auth.S3SigV4QueryAuth(Credentials(access_key, secret_key), "s3", region, expires=expires)
    with mock.patch.object(botocore.auth, "datetime", clock_at(at)):
        auth.add_auth(request)
    return str(request.url)


def quote(text: str) -> str:
    """SigV4's URI encoding: everything but unreserved characters."""
    return urllib.parse.quote(text, safe="-_.~")


def canonical_uri(raw_path: str) -> str:
    """S3's canonical URI: each segment decoded once, then encoded once."""
    return "/".join(quote(urllib.parse.unquote(segment)) for segment in raw_path.split("/"))


def canonical_query(raw_query: str) -> str:
    """The canonical query string of a raw query (decoded once, encoded
    once, sorted)."""
    pairs = []
    for part in raw_query.split("&"):
        if part:
            key, _, value = part.partition("=")
            pairs.append((quote(urllib.parse.unquote_plus(key)), quote(urllib.parse.unquote_plus(value))))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def sign_raw(method: str, target: str, headers: Sequence[Tuple[str, str]], payload_line: str, amz_date: str,
             *, access_key: str, secret_key: str, signed: Optional[Sequence[str]] = None,
             region: str = REGION) -> Tuple[str, str, str]:
    """SigV4 over ``headers`` as they will be sent: a header given twice is
    signed as its values joined with ',' (RFC 9110 section 5.3, as SigV4
    says); ``signed`` chooses the signed names (default: all). Returns
    (credential, signed headers, signature)."""
    path, _, query = target.partition("?")
    names = sorted({name.lower() for name, _ in headers}) if signed is None else list(signed)
    canonical_headers = "".join(
        name + ":" + ",".join(" ".join(v.split()) for n, v in headers if n.lower() == name) + "\n"
        for name in names)
    canonical = "\n".join([method, canonical_uri(path), canonical_query(query), canonical_headers,
                           ";".join(names), payload_line])
    scope = f"{amz_date[:8]}/{region}/s3/aws4_request"
    signature = hmac_hex(signing_key(secret_key, amz_date[:8], region), string_to_sign(amz_date, scope, canonical))
    return f"{access_key}/{scope}", ";".join(names), signature


def authorization(credential: str, signed_headers: str, signature: str) -> str:
    """An Authorization header value from sign_raw's parts."""
    return f"{ALGORITHM} Credential={credential}, SignedHeaders={signed_headers}, Signature={signature}"


def presign(
    method: str,
    endpoint_url: str,
    bucket: str,
    key: str,
    *,
    access_key: str,
    secret_key: str,
    expires: Any = 300,
    at: Optional[datetime.datetime] = None,
    region: str = REGION,
    query: Optional[Mapping[str, str]] = None,
    headers: Optional[Mapping[str, str]] = None,
    payload: str = UNSIGNED_PAYLOAD,
) -> str:
    """A SigV4 presigned URL for ``endpoint_url/bucket/key``, signed by hand.
    ``query`` is extra (signed) query parameters, ``headers`` extra signed
    headers the caller must then send; ``payload`` is the canonical
    request's payload line (a body hash goes with an X-Amz-Content-Sha256
    parameter in ``query``)."""
    at = at or utcnow()
    amz_date = at.strftime("%Y%m%dT%H%M%SZ")
    scope = f"{at:%Y%m%d}/{region}/s3/aws4_request"
    host = urllib.parse.urlsplit(endpoint_url).netloc
    path = "/" + "/".join(quote(segment) for segment in f"{bucket}/{key}".split("/"))
    signed = {"host": host, **{k.lower(): v.strip() for k, v in (headers or {}).items()}}
    signed_names = ";".join(sorted(signed))
    params: Dict[str, str] = {
        **dict(query or {}),
        "X-Amz-Algorithm": ALGORITHM,
        "X-Amz-Credential": f"{access_key}/{scope}",
        "X-Amz-Date": amz_date,
        "X-Amz-Expires": str(expires),
        "X-Amz-SignedHeaders": signed_names,
    }
    canonical_query_text = "&".join(f"{quote(k)}={quote(v)}" for k, v in sorted(params.items()))
    canonical_headers = "".join(f"{name}:{signed[name]}\n" for name in sorted(signed))
    canonical_request = "\n".join([method, path, canonical_query_text, canonical_headers, signed_names, payload])
    signature = hmac_hex(signing_key(secret_key, f"{at:%Y%m%d}", region),
                         string_to_sign(amz_date, scope, canonical_request))
    return f"{endpoint_url}{path}?{canonical_query_text}&X-Amz-Signature={signature}"


# --------------------------------------------------------------------------
# raw HTTP


@dataclass
class Reply:
    """One HTTP response read off a raw socket."""

    status: int
    headers: CaseInsensitiveDict
    body: bytes
    closed: Optional[bool] = None  # the server closed the connection after it (None: not checked)

    # Enough of requests.Response for helpers.assert_s3_error and friends.
    @property
    def status_code(self) -> int:
        return self.status

    @property
    def content(self) -> bytes:
        return self.body


def render(method: str, target: str, headers: Sequence[Tuple[str, str]]) -> bytes:
    """A request head, byte for byte (UTF-8; nothing is validated)."""
    lines = [f"{method} {target} HTTP/1.1"] + [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def read_reply(sock: socket.socket, method: str, *, check_closed: bool = False) -> Reply:
    """Reads one response off ``sock``. ``check_closed`` then waits (at most
    1 s) to see whether the server closed the connection."""
    response = http.client.HTTPResponse(sock, method=method)
    response.begin()
    body = response.read()
    closed: Optional[bool] = None
    if check_closed:
        sock.settimeout(1.0)
        try:
            closed = sock.recv(1) == b""
        except socket.timeout:
            closed = False
        except ConnectionError:
            closed = True
    return Reply(response.status, CaseInsensitiveDict(response.getheaders()), body, closed)


def exchange(port: int, raw: bytes, *, method: str = "GET", check_closed: bool = False, half_close: bool = False,
             timeout: float = 5.0, host: str = "127.0.0.1") -> Reply:
    """Sends raw bytes on a new connection to host:port and reads one
    response (see read_reply). ``half_close`` then shuts the sending side,
    so that a body cut short just ends."""
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        try:
            sock.sendall(raw)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server answered and stopped reading (a too large request)
        return read_reply(sock, method, check_closed=check_closed)
    finally:
        sock.close()


def send_then_shut(port: int, raw: bytes, *, method: str = "GET", timeout: float = 20.0,
                   host: str = "127.0.0.1") -> Optional[Reply]:
    """Sends raw bytes on a new connection, then shuts the sending side as a
    client with nothing more to say (a body cut short just ends there), and
    reads one response; None if the server closed without one."""
    try:
        return exchange(port, raw, method=method, half_close=True, timeout=timeout, host=host)
    except (http.client.RemoteDisconnected, ConnectionError):
        return None


def send_expect_continue(host: str, port: int, head: bytes, body: bytes, *, method: str, wait: float = 5.0,
                         timeout: float = 20.0) -> Tuple[bool, Reply]:
    """Sends ``head`` (which carries ``Expect: 100-continue``), waits up to
    ``wait`` seconds for ``100 Continue``, then sends the body unless a final
    answer came first. Returns (whether 100 Continue came, the final reply)."""
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        sock.sendall(head)
        sock.settimeout(wait)
        try:
            first = sock.recv(12, socket.MSG_PEEK)
        except socket.timeout:
            first = b""
        sock.settimeout(timeout)
        got_continue = first.startswith(b"HTTP/1.1 100") or first.startswith(b"HTTP/1.0 100")
        if got_continue:
            seen = b""
            while not seen.endswith(b"\r\n\r\n"):
                byte = sock.recv(1)
                assert byte, "connection closed after 100 Continue"
                seen += byte
        if got_continue or not first:
            sock.sendall(body)
        return got_continue, read_reply(sock, method)
    finally:
        sock.close()


@dataclass
class RawResult:
    """What a raw client got, not trusting the server: the status (None if
    the connection was cut before an answer), headers (lower-case names),
    the body bytes read, whether the body was whole (its Content-Length
    reached, or the final chunk of a chunked body read), what went wrong,
    and how long it all took."""

    status: Optional[int]
    headers: Dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    complete: bool = False
    error: str = ""
    elapsed: float = 0.0


def send_watching(port: int, method: str, head: bytes, body: bytes, *, timeout: float = 10.0,
                  host: str = "127.0.0.1") -> RawResult:
    """Sends a request on a raw socket (the body from a thread, so an early
    answer is read while the body is still going) and reads the answer
    without trusting it: a short body is reported, not hidden."""
    sock = socket.create_connection((host, port), timeout=timeout)
    started = time.monotonic()

    def send_body() -> None:
        try:
            sock.sendall(body)
        except OSError:
            pass  # the server answered early and closed

    sock.sendall(head)
    sender = threading.Thread(target=send_body, daemon=True)
    if body:
        sender.start()
    result = RawResult(None)
    raw = http.client.HTTPResponse(sock, method=method)
    try:
        try:
            raw.begin()
        except (http.client.HTTPException, OSError) as e:
            result.error = f"no answer: {type(e).__name__}: {e}"
            return result
        result.status = raw.status
        result.headers = {k.lower(): v for k, v in raw.getheaders()}
        pieces: List[bytes] = []
        try:
            while True:
                # (read(amt) returns b"" at a premature EOF instead of raising:
                # the length is compared below)
                piece = raw.read(65536)
                if not piece:
                    break
                pieces.append(piece)
            result.complete = True
        except http.client.IncompleteRead as e:  # chunked bodies
            pieces.append(bytes(e.partial))
            result.error = f"IncompleteRead after {sum(map(len, pieces))} bytes"
        except (http.client.HTTPException, OSError) as e:
            result.error = f"{type(e).__name__}: {e}"
        result.body = b"".join(pieces)
        length = result.headers.get("content-length")
        if result.complete and length is not None and method != "HEAD" and len(result.body) != int(length):
            result.complete = False
            result.error = f"connection closed after {len(result.body)} of {length} bytes"
        return result
    finally:
        result.elapsed = time.monotonic() - started
        raw.close()
        try:
            sock.shutdown(socket.SHUT_RDWR)  # unblocks the sender before the descriptor goes
        except OSError:
            pass
        if body:
            sender.join(5)
        sock.close()


# --------------------------------------------------------------------------
# HTTP/1.1 framing, as a server reads it


MAX_HEAD = 64 * 1024


class PeerGone(Exception):
    """The peer went away before the message was whole."""


def read_head(rfile: IO[bytes]) -> Tuple[bytes, str, List[Tuple[str, str]]]:
    """Reads a message head: (raw bytes, first line, headers). Raises PeerGone
    on EOF before the blank line."""
    raw = bytearray()
    lines: List[bytes] = []
    while True:
        line = rfile.readline(MAX_HEAD + 1)
        if not line:
            raise PeerGone("connection closed before the end of the head" if raw else "no request")
        raw += line
        if len(raw) > MAX_HEAD:
            raise ValueError("head too long")
        if line in (b"\r\n", b"\n"):
            if not lines:
                continue  # stray CRLF before a request line
            break
        lines.append(line.rstrip(b"\r\n"))
    first = lines[0].decode("latin-1")
    headers = []
    for line in lines[1:]:
        name, _, value = line.decode("latin-1").partition(":")
        headers.append((name.strip(), value.strip()))
    return bytes(raw), first, headers


def header_value(headers: Sequence[Tuple[str, str]], name: str) -> Optional[str]:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def body_framing(headers: Sequence[Tuple[str, str]]) -> Tuple[bool, Optional[int]]:
    """(chunked?, Content-Length or None)."""
    chunked = "chunked" in (header_value(headers, "transfer-encoding") or "").lower()
    length = header_value(headers, "content-length")
    return chunked, (int(length) if length is not None and not chunked else None)


def read_body(rfile: IO[bytes], chunked: bool, length: Optional[int], *, until_eof: bool = False,
               limit: Optional[int] = None, sink: Optional["socket.socket"] = None) -> Tuple[bytes, bool]:
    """Reads a body as it is on the wire (chunk framing included) and
    returns it with whether it arrived whole. Stops after ``limit`` bytes
    (then it is not whole). Every piece read is also sent to ``sink``."""
    out = bytearray()

    def take(data: bytes) -> None:
        out.extend(data)
        if sink is not None:
            sink.sendall(data)

    def room() -> int:
        return (limit - len(out)) if limit is not None else 1 << 30

    def take_exactly(n: int) -> int:
        """Takes up to n bytes, as room allows; returns how many are left."""
        while n > 0 and room() > 0:
            data = rfile.read(min(n, 1 << 16, room()))
            if not data:
                break
            take(data)
            n -= len(data)
        return n

    if chunked:
        while room() > 0:
            line = rfile.readline(4096)
            if not line.endswith(b"\n"):
                take(line[: room()])
                return bytes(out), False
            take(line[: room()])
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while room() > 0:
                    trailer = rfile.readline(4096)
                    take(trailer[: room()])
                    if not trailer.endswith(b"\n"):
                        return bytes(out), False
                    if trailer in (b"\r\n", b"\n"):
                        return bytes(out), True
                return bytes(out), False
            if take_exactly(size + 2) > 0:
                return bytes(out), False
        return bytes(out), False
    if length is None:
        if not until_eof:
            return b"", True
        while room() > 0:
            data = rfile.read1(min(1 << 16, room()))  # type: ignore[attr-defined]  # a BufferedReader
            if not data:
                return bytes(out), True
            take(data)
        return bytes(out), False
    whole = take_exactly(length) == 0
    return bytes(out), whole


def dechunk(wire: bytes) -> bytes:
    """The data of a whole Transfer-Encoding: chunked body, as read_body
    returns it (framing included)."""
    out = bytearray()
    rest = wire
    while True:
        line, _, rest = rest.partition(b"\r\n")
        size = int(line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            return bytes(out)
        out += rest[:size]
        rest = rest[size + 2:]


# --------------------------------------------------------------------------
# a recording backend


def serve_in_thread(server: socketserver.TCPServer, name: str, tls_cert: Optional[str] = None,
                    tls_key: Optional[str] = None) -> threading.Thread:
    """Serves ``server`` (bound on 127.0.0.1) on a daemon thread named
    ``<name>-<port>``, over TLS with ``tls_cert`` and ``tls_key`` if given
    (the handshake on first read, in the connection's own thread); returns
    the thread."""
    if tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls_cert, tls_key)
        server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name=f"{name}-{server.server_address[1]}", daemon=True)
    thread.start()
    return thread


def cut(connections: Iterable[socket.socket]) -> None:
    """Shuts each connection down both ways, whatever state it is in: a
    thread blocked on it wakes up, its peer sees the connection end."""
    for conn in connections:
        try:
            conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class LoopbackServer:
    """A TCP port on 127.0.0.1 whose accepted connections go to
    ``_connected``, on an accept thread, until ``close``."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.port = int(self.sock.getsockname()[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self._connected(conn)

    def _connected(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@dataclass
class RecordedRequest:
    """One request as a backend received it: the request line's method and
    target, the headers in the order and spelling received, and the body
    (de-chunked if it came with Transfer-Encoding: chunked)."""

    method: str
    target: str
    headers: Headers
    body: bytes = b""

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> str:
        return self.target.partition("?")[2]

    def header(self, name: str) -> List[str]:
        """Every value of ``name`` (case-insensitive), in order."""
        return [v for n, v in self.headers if n.lower() == name.lower()]


@dataclass
class Answer:
    """What the recording backend answers."""

    status: int = 200
    headers: Headers = field(default_factory=list)
    body: bytes = b""


def default_answer(request: RecordedRequest) -> Answer:
    """An S3-ish success: an empty XML document (no body for HEAD)."""
    body = b'<?xml version="1.0" encoding="UTF-8"?>\n<Result/>'
    return Answer(200, [("Content-Type", "application/xml"), ("x-amz-request-id", "RECORDER")], body)


class RecordingBackend(LoopbackServer):
    """A raw HTTP/1.1 server on 127.0.0.1 that records each request it gets
    (any method, any headers, Content-Length or chunked bodies, keep-alive)
    and answers ``answer(request)`` (default: :func:`default_answer`): what a
    proxy forwards, seen from its backend."""

    def __init__(self, answer: Callable[[RecordedRequest], Answer] = default_answer, *,
                 timeout: float = 10.0) -> None:
        self.answer = answer
        self.timeout = timeout
        self._lock = threading.Lock()
        self._requests: List[RecordedRequest] = []
        super().__init__()

    @property
    def requests(self) -> List[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def take(self) -> List[RecordedRequest]:
        """The requests recorded so far, forgetting them."""
        with self._lock:
            taken, self._requests = self._requests, []
        return taken

    def only(self) -> RecordedRequest:
        """The one request recorded so far (fails unless exactly one)."""
        got = self.requests
        assert len(got) == 1, [(r.method, r.target) for r in got]
        return got[0]

    def _connected(self, conn: socket.socket) -> None:
        threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(self.timeout)
        reader = conn.makefile("rb")

        def expect_continue() -> None:
            conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")

        try:
            while True:
                request = _read_request(reader, expect_continue)
                if request is None:
                    return
                with self._lock:
                    self._requests.append(request)
                answer = self.answer(request)
                headers = list(answer.headers)
                body = b"" if request.method == "HEAD" else answer.body
                if not any(n.lower() == "content-length" for n, _ in headers):
                    headers.append(("Content-Length", str(len(answer.body))))
                reason = http.client.responses.get(answer.status, "Status")
                conn.sendall(render_response(answer.status, reason, headers) + body)
        except (OSError, ValueError):
            return
        finally:
            reader.close()
            conn.close()


def render_response(status: int, reason: str, headers: Sequence[Tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}"] + [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def _read_request(reader: Any, expect_continue: Callable[[], None]) -> Optional[RecordedRequest]:
    """One request off a buffered socket reader, or None once the peer has
    gone. ``expect_continue`` is called before the body of a request that
    carries ``Expect: 100-continue`` (as a server that wants the body does)."""
    try:
        _, line, headers = read_head(reader)
    except PeerGone:
        return None
    method, target = (line.split(" ") + ["", ""])[:2]
    if (header_value(headers, "expect") or "").lower() == "100-continue":
        expect_continue()
    chunked, length = body_framing(headers)
    body, whole = read_body(reader, chunked, length)
    if not whole:
        return None
    return RecordedRequest(method, target, headers, dechunk(body) if chunked else body)
