"""A programmable, fault-injecting HTTP/1.1 backend for the reliability tests
(test_faults_*.py).

``FaultBackend`` listens on 127.0.0.1 (plain TCP sockets, one thread per
connection, stdlib only) and is a cos_map backend like versitygw
(:meth:`FaultBackend.entry`). Each connection it accepts takes the next
behaviour of its script (:meth:`FaultBackend.script`), or the default one
once the script is used up:

``Respond``            a canned answer (200 and an empty body by default)
``S3Error``            a 500/503 (or any status) with an S3 XML error body
``Forward``            pass-through to the upstream (versitygw): the request
                       bytes go on unchanged, so versitygw checks the proxy's
                       signature (SigV4 signs the Host header, not the socket)
``Reset``              accept, then RST at once (or after the request head)
``CloseWithoutAnswer`` read the whole request, then close (FIN), no answer
``Slow``               read the request, wait N seconds (watching for the proxy
                       to give up), then do another behaviour
``ResetMidUpload``     read part of the body (forwarding the head and that
                       part to the upstream if asked), then RST
``ResetMidDownload``   send headers announcing N body bytes, then fewer, then
                       RST (canned, or a forwarded real answer cut short)
``Garbage``            answer bytes that are not HTTP at all, then close
``RawResponse``        answer exact (malformed) bytes, then close

:meth:`FaultBackend.stop` closes the port (connection refused) and every open
connection; :meth:`FaultBackend.start` opens the same port again.

Every connection is recorded (:class:`Received`): the behaviour it got, the
request line, headers, the body bytes as they arrived on the wire (the
proxy's aws-chunked framing included), whether the body arrived whole, and
when the proxy closed the connection while the backend still held it.

Every answer closes its connection (``Connection: close``): the proxy never
pools a connection to this backend, so goroutine and descriptor counts taken
by the tests after a fault are exact, and each request is one connection.
"""

from __future__ import annotations

import errno
import secrets
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import IO, Any, Dict, List, Optional, Sequence, Set, Tuple, Union
from xml.sax.saxutils import escape

from helpers import BACKEND_ACCESS_KEY, BACKEND_SECRET_KEY, REGION
from s3wire import PeerGone, body_framing, cut, read_body, read_head

IO_TIMEOUT = 15.0  # a peer silent this long counts as gone


# --------------------------------------------------------------------------
# behaviours


@dataclass(frozen=True)
class Respond:
    """A canned answer (the request body is read first)."""

    status: int = 200
    body: bytes = b""
    headers: Sequence[Tuple[str, str]] = ()
    reason: str = "OK"


@dataclass(frozen=True)
class S3Error:
    """An S3 XML error answer, as S3 sends for an internal error or SlowDown.
    With ``early``, it is sent as soon as the request head is in, before the
    body is read (as S3 refuses an upload); the connection is then closed
    gracefully: the backend stops writing and reads (drops) what the sender
    still sends until it stops, then closes (a lingering close, so that the
    answer is not destroyed by a reset)."""

    status: int = 503
    code: str = "ServiceUnavailable"
    message: str = "Please reduce your request rate. (fault backend)"
    early: bool = False


@dataclass(frozen=True)
class Forward:
    """Pass-through to the upstream: request and answer bytes unchanged
    (the answer gets ``Connection: close``)."""


@dataclass(frozen=True)
class Reset:
    """Accept the connection, then RST it before reading a byte (the RST may
    then reach the proxy while it is still connecting), or, with
    ``after_head``, once the request head has arrived."""

    after_head: bool = False


@dataclass(frozen=True)
class CloseWithoutAnswer:
    """Read the whole request, then close the connection (FIN) without a word."""


@dataclass(frozen=True)
class Slow:
    """Read the request, hold it ``seconds`` before answering with ``then``.
    If the proxy closes the connection meanwhile, that is recorded
    (``Received.peer_closed_at``) and ``then`` never runs: a Forward that
    was given up on stores nothing upstream."""

    seconds: float
    then: "Behaviour" = Respond()


@dataclass(frozen=True)
class ResetMidUpload:
    """Read the head and ``after_bytes`` bytes of the body, then RST. With
    ``forward``, the head and those bytes went on to the upstream first, and
    the upstream connection is cut too: the upstream saw a body cut short."""

    after_bytes: int
    forward: bool = False


@dataclass(frozen=True)
class ResetMidDownload:
    """Answer headers announcing ``length`` bytes (``Content-Length``, or
    ``Transfer-Encoding: chunked`` if ``chunked``), send only ``send_bytes``
    of the body, then RST (or FIN if ``graceful``). With ``forward``, the
    answer is the upstream's real one, cut after ``send_bytes`` body bytes."""

    send_bytes: int
    length: int = 1 << 20
    chunked: bool = False
    forward: bool = False
    graceful: bool = False


@dataclass(frozen=True)
class Garbage:
    """Answer bytes that are not HTTP, then close."""

    data: bytes = b"\x16\x03\x01\x00\xff SSH-2.0-not-http \x00\x01\x02\r\n\xfe\xfd garbage \r\n\r\n"


@dataclass(frozen=True)
class RawResponse:
    """Answer exactly ``data`` (a malformed HTTP response), then close."""

    data: bytes


Behaviour = Union[Respond, S3Error, Forward, Reset, CloseWithoutAnswer, Slow, ResetMidUpload, ResetMidDownload,
                  Garbage, RawResponse]


def s3_error_body(code: str, message: str, resource: str = "") -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{escape(code)}</Code>'
            f"<Message>{escape(message)}</Message><Resource>{escape(resource)}</Resource>"
            f"<RequestId>{secrets.token_hex(8)}</RequestId></Error>").encode()


# --------------------------------------------------------------------------
# records


@dataclass
class Received:
    """One connection the backend accepted, and the request on it."""

    behaviour: str
    started: float  # time.monotonic()
    method: str = ""  # "" when no request line was read (Reset, or the peer left first)
    target: str = ""  # the request target as sent (path and query)
    headers: List[Tuple[str, str]] = field(default_factory=list)
    body: bytes = field(default=b"", repr=False)  # as received on the wire
    content_length: Optional[int] = None
    chunked: bool = False
    body_complete: Optional[bool] = None  # None: not read (yet)
    peer_closed_at: Optional[float] = None  # monotonic time the proxy closed on us, if seen
    forwarded: bool = False  # (part of) the request went to the upstream
    upstream_status: int = 0
    error: str = ""
    done: bool = False

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> str:
        return self.target.split("?", 1)[1] if "?" in self.target else ""

    def header(self, name: str) -> Optional[str]:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


def _rst(sock: socket.socket) -> None:
    """Closes with a TCP RST (SO_LINGER 0) instead of a FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def _peer_closed(sock: socket.socket) -> bool:
    """Whether the peer closed (or reset) the connection; never blocks."""
    try:
        data = sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return False
    except OSError:
        return True
    return data == b""


# --------------------------------------------------------------------------
# the server


class FaultBackend:
    """The backend. ``upstream``: (host, port) of the real S3 server that
    Forward and the forwarding faults pass requests to."""

    def __init__(self, upstream: Optional[Tuple[str, int]] = None, *, default: Optional[Behaviour] = None,
                 port: int = 0) -> None:
        self.upstream = upstream
        self.default: Behaviour = default if default is not None else (Forward() if upstream else Respond())
        self.port = port
        self._lock = threading.Lock()
        self._script: List[Behaviour] = []
        self._received: List[Received] = []
        self._open: Set[socket.socket] = set()
        self._threads: List[threading.Thread] = []
        self._listener: Optional[socket.socket] = None
        self._acceptor: Optional[threading.Thread] = None
        self._stopping = threading.Event()

    # ---------------------------------------------------------------- life

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._listener is not None

    def entry(self, **overrides: Any) -> Dict[str, Any]:
        """A cos_map entry for a bucket on this backend (versitygw's root keys,
        path style, plain HTTP)."""
        entry: Dict[str, Any] = {"host": "127.0.0.1", "port": self.port, "scheme": "http", "region": REGION,
                                 "addressing_style": "path", "access_key": BACKEND_ACCESS_KEY,
                                 "secret_key": BACKEND_SECRET_KEY}
        entry.update(overrides)
        return entry

    def start(self) -> "FaultBackend":
        """Listens (again) on 127.0.0.1, on the same port as before if any."""
        assert self._listener is None, "already listening"
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._stopping.clear()
        self._acceptor = threading.Thread(target=self._accept_loop, args=(listener,), name=f"fault-{self.port}",
                                          daemon=True)
        self._acceptor.start()
        return self

    def stop(self) -> None:
        """Closes the port (connection refused from now on) and cuts every
        open connection; waits for the connection threads."""
        listener, self._listener = self._listener, None
        if listener is None:
            return
        self._stopping.set()
        if self._acceptor is not None:
            self._acceptor.join(5)
        listener.close()
        with self._lock:
            conns = list(self._open)
            threads = list(self._threads)
        cut(conns)
        for thread in threads:
            thread.join(5)

    def __enter__(self) -> "FaultBackend":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ---------------------------------------------------------------- control

    def script(self, *behaviours: Behaviour, then: Optional[Behaviour] = None) -> None:
        """The next connections get ``behaviours`` in order, the later ones
        ``then`` (if given; else the current default)."""
        with self._lock:
            self._script = list(behaviours)
            if then is not None:
                self.default = then

    def clear(self) -> None:
        with self._lock:
            self._received.clear()

    @property
    def received(self) -> List[Received]:
        """Every connection so far (a Reset one has no method)."""
        with self._lock:
            return list(self._received)

    @property
    def requests(self) -> List[Received]:
        """The connections on which a request line arrived."""
        return [r for r in self.received if r.method]

    def wait_done(self, timeout: float = 10.0) -> List[Received]:
        """Waits until every connection so far was handled to its end."""
        deadline = time.monotonic() + timeout
        while True:
            pending = [r for r in self.received if not r.done]
            if not pending:
                return self.received
            if time.monotonic() > deadline:
                raise AssertionError(f"the fault backend is still busy with {pending}")
            time.sleep(0.02)

    # ---------------------------------------------------------------- serving

    def _next(self) -> Behaviour:
        with self._lock:
            return self._script.pop(0) if self._script else self.default

    def _accept_loop(self, listener: socket.socket) -> None:
        while not self._stopping.is_set():
            try:
                ready, _, _ = select.select([listener], [], [], 0.05)
            except (OSError, ValueError):
                return
            if not ready:
                continue
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            behaviour = self._next()
            record = Received(type(behaviour).__name__, time.monotonic())
            thread = threading.Thread(target=self._serve, args=(conn, behaviour, record), daemon=True,
                                      name=f"fault-{self.port}-conn")
            with self._lock:
                self._open.add(conn)
                self._received.append(record)
                self._threads = [t for t in self._threads if t.is_alive()] + [thread]
            thread.start()

    def _serve(self, conn: socket.socket, behaviour: Behaviour, rec: Received) -> None:
        conn.settimeout(IO_TIMEOUT)
        rfile = conn.makefile("rb")
        upstream: Optional[socket.socket] = None
        rst = False
        try:
            if isinstance(behaviour, Reset) and not behaviour.after_head:
                rst = True
                return
            raw_head, line, headers = read_head(rfile)
            parts = line.split(" ")
            if len(parts) != 3:
                raise ValueError(f"bad request line {line!r}")
            rec.method, rec.target, rec.headers = parts[0], parts[1], headers
            rec.chunked, rec.content_length = body_framing(headers)
            if isinstance(behaviour, Reset):
                rst = True
                return

            if isinstance(behaviour, S3Error) and behaviour.early:
                self._answer(conn, rfile, behaviour, rec, raw_head)
                conn.shutdown(socket.SHUT_WR)
                rec.body, rec.body_complete = read_body(rfile, rec.chunked, rec.content_length)
                return

            if isinstance(behaviour, ResetMidUpload):
                if behaviour.forward:
                    upstream = self._connect_upstream()
                    upstream.sendall(raw_head)
                    rec.forwarded = True
                rec.body, rec.body_complete = read_body(rfile, rec.chunked, rec.content_length,
                                                         limit=behaviour.after_bytes, sink=upstream)
                time.sleep(0.05)  # let the upstream take in what it was sent
                rst = True
                return

            rec.body, rec.body_complete = read_body(rfile, rec.chunked, rec.content_length)
            if not rec.body_complete:
                raise PeerGone("request body cut short")
            while isinstance(behaviour, Slow):
                if self._hold(conn, behaviour.seconds, rec):
                    return
                behaviour = behaviour.then
            rst = self._answer(conn, rfile, behaviour, rec, raw_head)
        except PeerGone as e:
            rec.error = str(e)
            rec.peer_closed_at = rec.peer_closed_at or time.monotonic()
        except (OSError, ValueError) as e:
            rec.error = f"{type(e).__name__}: {e}"
        finally:
            rfile.close()
            if upstream is not None:
                _rst(upstream)
            if rst:
                _rst(conn)
            else:
                try:
                    conn.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                conn.close()
            with self._lock:
                self._open.discard(conn)
            rec.done = True

    def _hold(self, conn: socket.socket, seconds: float, rec: Received) -> bool:
        """Waits ``seconds``; returns True (and records it) as soon as the
        peer closes the connection."""
        deadline = time.monotonic() + seconds
        while not self._stopping.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            ready, _, _ = select.select([conn], [], [], min(remaining, 0.05))
            if ready and _peer_closed(conn):
                rec.peer_closed_at = time.monotonic()
                return True
        return True

    def _connect_upstream(self) -> socket.socket:
        if self.upstream is None:
            raise ValueError("this fault backend has no upstream to forward to")
        sock = socket.create_connection(self.upstream, timeout=IO_TIMEOUT)
        return sock

    def _answer(self, conn: socket.socket, rfile: IO[bytes], behaviour: Behaviour, rec: Received,
                raw_head: bytes) -> bool:
        """Answers a whole request; returns whether to RST afterwards."""
        head_only = rec.method == "HEAD"
        if isinstance(behaviour, Respond):
            headers = [*behaviour.headers]
            if not any(k.lower() == "content-length" for k, _ in headers):
                headers.append(("Content-Length", str(len(behaviour.body))))
            conn.sendall(_head(f"HTTP/1.1 {behaviour.status} {behaviour.reason}", headers)
                         + (b"" if head_only else behaviour.body))
            return False
        if isinstance(behaviour, S3Error):
            body = s3_error_body(behaviour.code, behaviour.message, rec.path)
            headers = [("Content-Type", "application/xml"), ("Content-Length", str(len(body))),
                       ("x-amz-request-id", secrets.token_hex(8).upper())]
            conn.sendall(_head(f"HTTP/1.1 {behaviour.status} Fault", headers) + (b"" if head_only else body))
            return False
        if isinstance(behaviour, CloseWithoutAnswer):
            return False
        if isinstance(behaviour, Garbage):
            conn.sendall(behaviour.data)
            return False
        if isinstance(behaviour, RawResponse):
            conn.sendall(behaviour.data)
            return False
        if isinstance(behaviour, Forward):
            self._forward(conn, rec, raw_head, cut_after=None)
            return False
        if isinstance(behaviour, ResetMidDownload):
            if behaviour.forward:
                self._forward(conn, rec, raw_head, cut_after=behaviour.send_bytes)
            else:
                self._canned_cut_download(conn, behaviour)
            time.sleep(0.05)  # the bytes sent reach the proxy before the reset
            return not behaviour.graceful
        raise ValueError(f"unknown behaviour {behaviour!r}")

    @staticmethod
    def _canned_cut_download(conn: socket.socket, b: ResetMidDownload) -> None:
        data = (b"0123456789abcdef" * (b.length // 16 + 1))[: b.length]
        if b.chunked:
            headers = [("Content-Type", "application/octet-stream"), ("Transfer-Encoding", "chunked")]
            conn.sendall(_head("HTTP/1.1 200 OK", headers))
            sent = 0
            while sent < b.send_bytes:
                piece = data[sent: min(b.send_bytes, sent + 8192)]
                conn.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
                sent += len(piece)
            return
        headers = [("Content-Type", "application/octet-stream"), ("Content-Length", str(b.length)),
                   ("ETag", '"0123456789abcdef0123456789abcdef"'), ("Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT")]
        conn.sendall(_head("HTTP/1.1 200 OK", headers) + data[: b.send_bytes])

    def _forward(self, conn: socket.socket, rec: Received, raw_head: bytes, cut_after: Optional[int]) -> None:
        """Sends the request on to the upstream unchanged and relays its
        answer (``Connection: close``), cutting its body after ``cut_after``
        bytes if given."""
        upstream = self._connect_upstream()
        rec.forwarded = True
        ufile = upstream.makefile("rb")
        try:
            upstream.sendall(raw_head + rec.body)
            while True:
                _, status_line, headers = read_head(ufile)
                status = int(status_line.split(" ")[1])
                if status >= 200 or status == 101:
                    break  # (a 1xx interim answer is dropped: the proxy sent no Expect)
            rec.upstream_status = status
            kept = [(k, v) for k, v in headers if k.lower() not in ("connection", "keep-alive")]
            conn.sendall(_head(status_line, kept))
            if rec.method == "HEAD" or status in (204, 304):
                return
            chunked, length = body_framing(headers)
            if cut_after is None:
                read_body(ufile, chunked, length, until_eof=True, sink=conn)
            else:
                read_body(ufile, chunked, length, until_eof=True, limit=cut_after, sink=conn)
        finally:
            ufile.close()
            upstream.close()


def _head(first_line: str, headers: Sequence[Tuple[str, str]]) -> bytes:
    lines = [first_line, *(f"{k}: {v}" for k, v in headers), "Connection: close", "", ""]
    return "\r\n".join(lines).encode("latin-1")


def refused_port() -> int:
    """A 127.0.0.1 port nothing listens on (connection refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def is_reset(exc: BaseException) -> bool:
    """Whether an OSError is a connection reset / broken pipe."""
    return isinstance(exc, OSError) and exc.errno in (errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED)
