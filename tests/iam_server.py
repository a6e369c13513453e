"""A local IBM Cloud IAM token service for the end-to-end tests.

``IamServer`` is a real HTTP server (http.server in a thread) on 127.0.0.1
that speaks the part of IAM the proxy uses::

    POST /identity/token
    Content-Type: application/x-www-form-urlencoded
    Accept: application/json

    grant_type=urn:ibm:params:oauth:grant-type:apikey&apikey=<key>

and answers, as IBM does, ``{"access_token", "refresh_token", "ims_user_id",
"token_type": "Bearer", "expires_in", "expiration", "scope"}`` for a key in
its set of valid keys, or ``400 {"errorCode": "BXNIM0415E", ...}`` for an
unknown one (``bad_key_status`` = 401 answers 401 instead).

Tests drive it: ``expires_in`` sets the lifetime of the next tokens,
``delay`` slows every answer down, ``fail`` switches it to ``"500"`` (an
internal error) or ``"garbage"`` (200 with a body that is not JSON),
``fail_next(n, mode)`` fails only the next n calls, ``stop()`` closes the
port (connection refused; open keep-alive connections are cut too) and
``start()`` opens it again on the same port. ``expire(token)`` /
``expire_all()`` end tokens early.

It counts every call (``calls``, ``calls_for(apikey)``), keeps the malformed
ones apart (``malformed``: a wrong grant type, a missing Accept header...),
and knows every token it issued and until when it is valid, which the
bearer-checking S3 front (bearer_front.py) asks.
"""

from __future__ import annotations

import base64
import json
import secrets
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Iterable, List, Optional, Set

from s3wire import cut, serve_in_thread

GRANT_TYPE = "urn:ibm:params:oauth:grant-type:apikey"


@dataclass
class Token:
    """One issued access token."""

    value: str
    apikey: str
    issued_at: float  # time.time() when issued
    expiration: float  # epoch seconds, as announced in the answer
    revoked: bool = False

    def valid_at(self, when: float) -> bool:
        return not self.revoked and when < self.expiration


@dataclass
class Call:
    """One request the server received."""

    at: float
    method: str
    path: str
    apikey: Optional[str]
    grant_type: Optional[str]
    accept: Optional[str]
    content_type: Optional[str]
    status: int  # 0: the connection was cut without an answer


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as IAM; stop() cuts open connections
    server: "_Server"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def setup(self) -> None:
        super().setup()
        self.server.iam._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.iam._track(self.connection, False)

    def _send_json(self, status: int, document: Any) -> None:
        self._send(status, json.dumps(document).encode(), "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        call = getattr(self, "call", None)
        if call is not None:
            call.status = status  # before the answer goes out (see do_POST)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._send_json(404, {"errorCode": "BXNIM0101E", "errorMessage": "Not found"})

    def do_POST(self) -> None:
        iam = self.server.iam
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        form = urllib.parse.parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
        apikey = (form.get("apikey") or [None])[0]
        grant_type = (form.get("grant_type") or [None])[0]
        call = Call(time.time(), "POST", self.path, apikey, grant_type, self.headers.get("Accept"),
                    self.headers.get("Content-Type"), 0)
        # Recorded, with its status, before the answer goes out: a proxy that
        # got its token may finish the client's request before this thread
        # runs again, and a test that then counts the calls must see this one.
        self.call = call
        iam._record(call)
        try:
            call.status = iam._answer(self, call)
        finally:
            self.call = None  # the connection's next request is another call


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    iam: "IamServer"


class IamServer:
    """The token service. Use as a context manager or start()/stop()."""

    def __init__(self, valid_keys: Iterable[str] = (), *, expires_in: int = 3600,
                 tls_cert: Optional[str] = None, tls_key: Optional[str] = None) -> None:
        self.valid_keys: Set[str] = set(valid_keys)
        self.expires_in = expires_in
        self.delay = 0.0
        self.bad_key_status = 400  # IAM answers 400 BXNIM0415E; 401 is also seen in the wild
        self.fail: Optional[str] = None  # None, "500" or "garbage"
        self._fail_next: List[str] = []
        self.tls_cert, self.tls_key = tls_cert, tls_key
        self.port = 0
        self._lock = threading.Lock()
        self._calls: List[Call] = []
        self._tokens: Dict[str, Token] = {}
        self._connections: Set[Any] = set()
        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None

    # ---------------------------------------------------------------- life

    @property
    def url(self) -> str:
        scheme = "https" if self.tls_cert else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> "IamServer":
        """Listens (again) on 127.0.0.1, on the same port as before if any."""
        assert self._server is None, "already running"
        server = _Server(("127.0.0.1", self.port), _Handler)
        server.iam = self
        self.port = server.server_address[1]
        self._server = server
        self._thread = serve_in_thread(server, "iam", self.tls_cert, self.tls_key)
        return self

    def stop(self) -> None:
        """Closes the port and every open connection: the proxy then gets
        connection refused (or reset) until start()."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
        cut(connections)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "IamServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _track(self, conn: Any, open_: bool) -> None:
        with self._lock:
            if open_:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    # ---------------------------------------------------------------- control

    def fail_next(self, n: int, mode: str = "500") -> None:
        """Fails the next n token requests with ``mode`` ("500", "garbage",
        "reset": the connection is cut without an answer)."""
        with self._lock:
            self._fail_next += [mode] * n

    def expire(self, token: str) -> None:
        with self._lock:
            self._tokens[token].revoked = True

    def expire_all(self) -> None:
        with self._lock:
            for token in self._tokens.values():
                token.revoked = True

    # ---------------------------------------------------------------- facts

    @property
    def calls(self) -> List[Call]:
        """Every well-formed token request (whatever the answer)."""
        with self._lock:
            return [c for c in self._calls if not self._is_malformed(c)]

    @property
    def malformed(self) -> List[Call]:
        with self._lock:
            return [c for c in self._calls if self._is_malformed(c)]

    def calls_for(self, apikey: str) -> int:
        return sum(1 for c in self.calls if c.apikey == apikey)

    def reset_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    def token(self, value: str) -> Optional[Token]:
        with self._lock:
            return self._tokens.get(value)

    def tokens_of(self, apikey: str) -> List[str]:
        with self._lock:
            return [t.value for t in self._tokens.values() if t.apikey == apikey]

    def is_valid(self, value: str, when: Optional[float] = None) -> bool:
        token = self.token(value)
        return token is not None and token.valid_at(time.time() if when is None else when)

    # ---------------------------------------------------------------- serving

    @staticmethod
    def _is_malformed(call: Call) -> bool:
        return (call.path.split("?", 1)[0] != "/identity/token"
                or call.grant_type != GRANT_TYPE
                or call.apikey is None
                or "application/json" not in (call.accept or "")
                or "application/x-www-form-urlencoded" not in (call.content_type or ""))

    def _record(self, call: Call) -> None:
        with self._lock:
            self._calls.append(call)

    def _answer(self, handler: _Handler, call: Call) -> int:
        if self.delay:
            time.sleep(self.delay)
        with self._lock:
            mode = self._fail_next.pop(0) if self._fail_next else self.fail
        if call.path.split("?", 1)[0] != "/identity/token":
            handler._send_json(404, {"errorCode": "BXNIM0101E", "errorMessage": "Not found"})
            return 404
        if mode == "reset":
            handler.close_connection = True
            try:
                handler.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return 0
        if mode == "500":
            handler._send_json(500, {"errorCode": "BXNIM0001E", "errorMessage": "Internal error (test)"})
            return 500
        if mode == "garbage":
            handler._send(200, b"<html>this is not a token</html>", "application/json")
            return 200
        if self._is_malformed(call):
            handler._send_json(400, {"errorCode": "BXNIM0109E",
                                     "errorMessage": "Property missing or empty, or wrong grant type / Accept",
                                     "context": {"requestId": secrets.token_hex(8)}})
            return 400
        if call.apikey not in self.valid_keys:
            status = self.bad_key_status
            handler._send_json(status, {"errorCode": "BXNIM0415E",
                                        "errorMessage": "Provided API key could not be found.",
                                        "context": {"requestId": secrets.token_hex(8)}})
            return status
        now = time.time()
        expires_in = int(self.expires_in)
        expiration = int(now) + expires_in
        header = _b64url(json.dumps({"kid": "test", "alg": "RS256"}).encode())
        claims = _b64url(json.dumps({"iam_id": "iam-test", "iat": int(now), "exp": expiration,
                                     "jti": secrets.token_hex(8)}).encode())
        value = f"{header}.{claims}.{_b64url(secrets.token_bytes(32))}"
        with self._lock:
            self._tokens[value] = Token(value, call.apikey, now, expiration)
        handler._send_json(200, {
            "access_token": value,
            "refresh_token": "not_supported",
            "ims_user_id": 1234567,
            "token_type": "Bearer",
            "expires_in": expires_in,
            "expiration": expiration,
            "scope": "ibm openid",
        })
        return 200
