"""Constants and helpers shared by the end-to-end tests (fixtures are in
conftest.py).

The chain under test is always

    boto3 / raw HTTP  --client keys-->  ProxyServer  --backend keys-->  versitygw

The client keys (hmac_keystore) and the backend keys (versitygw's root
account, in cos_map) differ, so a request only succeeds if the proxy verified
the client's signature and re-signed it for the backend; versitygw checks that
re-signature strictly. What was (or was not) stored is always checked with a
boto3 client talking to versitygw directly.

The wire itself (SigV4 signers, raw HTTP senders, a recording backend) is in
s3wire.py; sign_request and send_signed here sign with the client's keys, and
raw_signed_headers, send_raw and assert_xml_error are s3wire's raw requests
aimed at a proxy.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import socket
import subprocess
import threading
import xml.etree.ElementTree as ET
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import boto3
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from object_storage_proxy import ProxyServer, ProxyServerConfig
from s3wire import (  # noqa: F401  (REGION and utcnow are re-exported)
    REGION,
    Headers,
    Reply,
    amz_now,
    authorization,
    exchange,
    render,
    sign_headers,
    sign_raw,
    utcnow,
)
import s3wire

# versitygw's root account: only the proxy (and the direct client) know it.
BACKEND_ACCESS_KEY = "backendroot"
BACKEND_SECRET_KEY = "backend-root-secret-0123456789"

# Keys the proxy issues to its clients (hmac_keystore).
CLIENT_ACCESS_KEY = "CLIENTAKIDAAAAAAAAAA"
CLIENT_SECRET_KEY = "client-secret-aaaaaaaaaaaaaaaaaaaaaaaaa"
OTHER_ACCESS_KEY = "CLIENTAKIDBBBBBBBBBB"
OTHER_SECRET_KEY = "client-secret-bbbbbbbbbbbbbbbbbbbbbbbbb"
CLIENT_KEYSTORE = {CLIENT_ACCESS_KEY: CLIENT_SECRET_KEY, OTHER_ACCESS_KEY: OTHER_SECRET_KEY}

# Every socket operation of a raw request (send_raw), and of the recorder.
RAW_TIMEOUT = 5.0
# What the ``recorder`` fixture's backend answers (a proxy must not pass it
# on where nothing was to be forwarded).
FROM_RECORDER = b"FROM-RECORDER"


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def debian_binary(name: str) -> str:
    """The path of a server program from the Debian package ``name``
    (haproxy, redis-server): the system's directories first, then $PATH. A
    missing one is a failure (``make deps`` installs it), never a skip."""
    for directory in ("/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"):
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is not installed: `make deps` installs the Debian package {name}")
    return found


def make_client(endpoint_url: str, access_key: str, secret_key: str) -> Any:
    """A boto3 S3 client: path style, SigV4, no retries (failures stay visible)."""
    config = Config(
        region_name=REGION,
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=5,
        read_timeout=30,
    )
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=REGION,
        config=config,
    )
    client.meta.events.register("before-send.s3", _no_expect_for_empty_bodies)
    client.raw_responses = RawResponses(client)
    return client


def _no_expect_for_empty_bodies(request: Any, **kwargs: Any) -> None:
    """Works around a botocore bug (boto/botocore#3755): after a zero-length
    PUT sent with ``Expect: 100-continue`` on a keep-alive connection (the
    proxy keeps connections alive, versitygw does not), botocore parses the
    next response on that connection against a stale status line and stalls
    for its read timeout. Expect is not signed, so dropping it for empty
    bodies changes nothing else; non-empty bodies keep it, so the proxy's
    100-continue path is still exercised."""
    if request.headers.get("Content-Length") == "0":
        request.headers.pop("Expect", None)


# --------------------------------------------------------------------------
# assertions


def parse_s3_error(body: bytes) -> Dict[str, str]:
    """Parses an S3 XML error body, checks it has Code, Message and
    RequestId, and returns its fields."""
    assert body, "the error response has no body"
    root = ET.fromstring(body)
    assert root.tag == "Error", f"not an S3 error document: {body[:300]!r}"
    fields = {child.tag: (child.text or "") for child in root}
    for name in ("Code", "Message", "RequestId"):
        assert fields.get(name), f"S3 error without {name}: {body!r}"
    return fields


def assert_s3_error(response: requests.Response, status: int, code: str) -> Dict[str, str]:
    """Checks a raw HTTP response is the S3 XML error ``code`` with ``status``."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert "xml" in response.headers.get("Content-Type", ""), dict(response.headers)
    fields = parse_s3_error(response.content)
    assert fields["Code"] == code, fields
    return fields


def assert_client_error(exc_info: Any, status: int, code: str, client: Any = None) -> None:
    """Checks the ClientError caught by pytest.raises has status and code.
    Given the client (made by make_client) that raised it, also checks the
    raw body it received was an S3 XML error with Code, Message, RequestId
    (not for HEAD, whose errors have no body)."""
    err = exc_info.value
    assert isinstance(err, ClientError), err
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == status, err.response
    assert err.response["Error"]["Code"] == code, err.response
    if client is not None:
        client.raw_responses.assert_last_error(status, code)


def _missing(err: ClientError) -> bool:
    return int(err.response["ResponseMetadata"]["HTTPStatusCode"]) == 404


def object_exists(direct: Any, bucket: str, key: str) -> bool:
    try:
        direct.head_object(Bucket=bucket, Key=key)
    except ClientError as e:
        if _missing(e):
            return False
        raise
    return True


def bucket_exists(direct: Any, bucket: str) -> bool:
    try:
        direct.head_bucket(Bucket=bucket)
    except ClientError as e:
        if _missing(e):
            return False
        raise
    return True


def stored_keys(direct: Any, bucket: str) -> List[str]:
    """Every key of a bucket, as versitygw lists it."""
    keys: List[str] = []
    for page in direct.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys


def stored_body(direct: Any, bucket: str, key: str) -> bytes:
    return bytes(direct.get_object(Bucket=bucket, Key=key)["Body"].read())


class RawResponses:
    """Keeps the raw HTTP responses a boto3 client receives (after-call), so
    a test can check the exact error body boto3 would parse away."""

    def __init__(self, client: Any) -> None:
        self.responses: List[Any] = []
        client.meta.events.register("after-call.s3", self._keep)

    def _keep(self, http_response: Any = None, **kwargs: Any) -> None:
        if http_response is not None:
            self.responses.append(http_response)

    def assert_last_error(self, status: int, code: str) -> Dict[str, str]:
        assert self.responses, "no response was received"
        response = self.responses[-1]
        assert response.status_code == status, (response.status_code, response.content[:500])
        fields = parse_s3_error(response.content)
        assert fields["Code"] == code, fields
        return fields


class CallLog:
    """A thread-safe record of the calls of a Python callback."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: List[Tuple[str, ...]] = []

    def add(self, *args: str) -> None:
        with self._lock:
            self._calls.append(tuple(args))

    @property
    def calls(self) -> List[Tuple[str, ...]]:
        with self._lock:
            return list(self._calls)

    def __len__(self) -> int:
        return len(self.calls)


# --------------------------------------------------------------------------
# signed requests (s3wire has the signers; these sign with the client's keys)


def sign_request(
    method: str,
    url: str,
    *,
    access_key: str = CLIENT_ACCESS_KEY,
    secret_key: str = CLIENT_SECRET_KEY,
    **options: Any,
) -> Dict[str, str]:
    """s3wire.sign_headers (botocore's S3 SigV4 signer) with the first
    client key unless told otherwise: the headers to send. ``options``:
    body, headers, payload_hash, at (naive UTC), region."""
    return sign_headers(method, url, access_key=access_key, secret_key=secret_key, **options)


def presign(method: str, endpoint_url: str, bucket: str, key: str, *, access_key: str = CLIENT_ACCESS_KEY,
            secret_key: str = CLIENT_SECRET_KEY, **options: Any) -> str:
    """s3wire.presign (a presigned URL by hand) with the first client key
    unless told otherwise. ``options``: expires, at, region, query, headers,
    payload."""
    return s3wire.presign(method, endpoint_url, bucket, key, access_key=access_key, secret_key=secret_key, **options)


def send_signed(
    method: str,
    url: str,
    *,
    body: bytes = b"",
    headers: Optional[Mapping[str, str]] = None,
    extra_headers: Optional[Mapping[str, str]] = None,
    **sign_options: Any,
) -> requests.Response:
    """Signs a request (see sign_request), adds ``extra_headers`` unsigned,
    and sends it with ``requests``."""
    signed = sign_request(method, url, body=body, headers=headers, **sign_options)
    signed.update(extra_headers or {})
    return requests.request(method, url, data=body, headers=signed, timeout=30, allow_redirects=False)




# --------------------------------------------------------------------------
# raw requests to a proxy (s3wire renders and sends; these aim at a proxy and
# sign with the client's keys)


def raw_signed_headers(proxy: Any, method: str, target: str, body: bytes = b"", *, host: Optional[str] = None,
                       extra: Sequence[Tuple[str, str]] = (), payload: Optional[str] = None,
                       amz_date: Optional[str] = None, access_key: str = CLIENT_ACCESS_KEY,
                       secret_key: str = CLIENT_SECRET_KEY) -> Headers:
    """Headers of a validly signed raw request to ``proxy`` (Host,
    X-Amz-Date, X-Amz-Content-Sha256, ``extra`` in the order given,
    Authorization last), signed by s3wire.sign_raw over exactly these
    headers (a name given twice is signed as its values joined)."""
    amz_date = amz_date or amz_now()
    payload = payload or hashlib.sha256(body).hexdigest()
    headers: Headers = [("Host", host or f"127.0.0.1:{proxy.http_port}"), ("X-Amz-Date", amz_date),
                        ("X-Amz-Content-Sha256", payload), *extra]
    parts = sign_raw(method, target, headers, payload, amz_date, access_key=access_key, secret_key=secret_key)
    return headers + [("Authorization", authorization(*parts))]


def send_raw(proxy: Any, method: str, target: str, headers: Sequence[Tuple[str, str]], body: bytes = b"",
             *, content_length: bool = True, check_closed: bool = False) -> Reply:
    """One raw request to ``proxy`` on a new connection, headers byte for
    byte as given; adds Content-Length for a body unless told not to."""
    all_headers = list(headers)
    if body and content_length:
        all_headers.append(("Content-Length", str(len(body))))
    return exchange(proxy.http_port, render(method, target, all_headers) + body, method=method,
                    check_closed=check_closed, timeout=RAW_TIMEOUT)


def assert_xml_error(reply: Reply, status: int, codes: Any) -> Dict[str, str]:
    """An S3 XML error with this status and one of ``codes`` (a str or a
    tuple), with an x-amz-request-id header; returns its fields."""
    codes = (codes,) if isinstance(codes, str) else tuple(codes)
    assert reply.status == status, (reply.status, reply.body[:600])
    assert "xml" in reply.headers.get("Content-Type", ""), (dict(reply.headers), reply.body[:300])
    fields = parse_s3_error(reply.body)
    assert fields["Code"] in codes, (fields, codes)
    assert reply.headers.get("x-amz-request-id"), dict(reply.headers)
    return fields


# --------------------------------------------------------------------------
# backends


def local_entry(port: int, access_key: str, secret_key: str, /, *, creds: bool = True, **fields: Any) -> Dict[str, Any]:
    """A cos_map entry for a bucket on an S3 server at 127.0.0.1:``port``
    (plain HTTP, path style), with its keys unless ``creds=False``;
    ``fields`` add or override entry keys."""
    entry: Dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "region": REGION,
        "scheme": "http",
        "addressing_style": "path",
    }
    if creds:
        entry.update(access_key=access_key, secret_key=secret_key)
    entry.update(fields)
    return entry


def stop_process(proc: "subprocess.Popen[bytes]", timeout: float) -> None:
    """Stops a server process: SIGTERM, then SIGKILL if it is still running
    after ``timeout`` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# --------------------------------------------------------------------------
# proxies


@contextlib.contextmanager
def proxy_starter(entry_for: Callable[..., Dict[str, Any]]) -> Iterator[Callable[..., ProxyServer]]:
    """Starts ProxyServers in front of one backend and stops them all at the
    end. ``entry_for(**overrides)`` makes that backend's cos_map entry.

    ``start("b1", "b2", validator=...)`` maps each named bucket to the
    backend. ``entry=`` overrides fields of every such entry (for versitygw
    ``entry={"creds": False}`` leaves the credentials out, ``{"ttl": 0}``
    sets the TTL); ``cos_map=`` adds whole entries; any other keyword goes
    to ProxyServerConfig (default: the client keystore, http_port=0,
    bind_address="127.0.0.1", admin_port=0).
    """
    servers: List[ProxyServer] = []

    def start(
        *buckets: str,
        entry: Optional[Mapping[str, Any]] = None,
        cos_map: Optional[Mapping[str, Mapping[str, Any]]] = None,
        **options: Any,
    ) -> ProxyServer:
        full: Dict[str, Any] = {name: entry_for(**dict(entry or {})) for name in buckets}
        full.update(cos_map or {})
        options.setdefault("hmac_keystore", dict(CLIENT_KEYSTORE))
        options.setdefault("http_port", 0)
        options.setdefault("bind_address", "127.0.0.1")
        options.setdefault("admin_port", 0)  # healthz/readyz/metrics for observe.py
        server = ProxyServer(ProxyServerConfig(full, **options))
        server.start()
        servers.append(server)
        assert server.http_port, "the proxy did not report its bound port"
        assert server.endpoint_url == f"http://127.0.0.1:{server.http_port}"
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.stop()
