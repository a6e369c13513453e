"""Fixtures of the end-to-end tests, each defined here once: a real S3
server (versitygw, one per session; versitygw.py), proxies in front of it
(one or more per test), boto3 clients for both, unique buckets, ``osp``
child processes (osp_cli.py), request counting left off, a recording backend
(s3wire.RecordingBackend), a bearer-token front (bearer_front.py) and its
IAM (iam_server.py; a module lists the API keys it knows in
``IAM_API_KEYS``), a fault-injecting backend (faultbackend.py) and the leak
check (leakguard.py), a TLS certificate, and SeaweedFS. See helpers.py for
the chain under test."""

from __future__ import annotations

import uuid
from typing import Any, Callable, Iterator, List, Mapping, Optional, Tuple

import pytest

from helpers import (
    BACKEND_ACCESS_KEY,
    BACKEND_SECRET_KEY,
    CLIENT_ACCESS_KEY,
    CLIENT_SECRET_KEY,
    FROM_RECORDER,
    RAW_TIMEOUT,
    make_client,
    proxy_starter,
)
from bearer_front import BearerFront
from clients import assert_ok, isolated_env, require_command, run
from faultbackend import FaultBackend
from iam_server import IamServer
from leakguard import LeakGuard
from object_storage_proxy import ProxyServer, disable_request_counting, reset_request_count
from osp_cli import Osp
from s3wire import Answer, RecordedRequest, RecordingBackend
from seaweed import SeaweedFS, start_seaweedfs
from versitygw import Backend, run_versitygw


@pytest.fixture(scope="session")
def backend() -> Iterator[Backend]:
    """versitygw on a free 127.0.0.1 port with its own temporary directory.
    Fails (never skips) when the binary is missing."""
    with run_versitygw() as server:
        yield server


@pytest.fixture(scope="session")
def direct(backend: Backend) -> Any:
    """boto3 straight to versitygw with its root keys: the ground truth."""
    return make_client(backend.endpoint_url, BACKEND_ACCESS_KEY, BACKEND_SECRET_KEY)


# --------------------------------------------------------------------------
# buckets


@pytest.fixture
def new_bucket_name() -> Callable[..., str]:
    """Makes unique, valid bucket names (lowercase, 3-63 chars)."""

    def make(prefix: str = "osp") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:16]}"
        assert 3 <= len(name) <= 63 and name == name.lower()
        return name

    return make


@pytest.fixture
def make_bucket(direct: Any, new_bucket_name: Callable[..., str]) -> Callable[..., str]:
    """Creates a bucket directly at versitygw and returns its name."""

    def make(prefix: str = "osp") -> str:
        name = new_bucket_name(prefix)
        direct.create_bucket(Bucket=name)
        return name

    return make


@pytest.fixture
def bucket(make_bucket: Callable[..., str]) -> str:
    """A fresh bucket that exists at versitygw."""
    return make_bucket()


# --------------------------------------------------------------------------
# proxies and clients


@pytest.fixture
def start_proxy(backend: Backend) -> Iterator[Callable[..., ProxyServer]]:
    """Starts ProxyServers in front of versitygw (its root keys in each
    entry), stopped after the test; see proxy_starter."""
    with proxy_starter(backend.entry) as start:
        yield start


@pytest.fixture
def counting_left_off() -> Iterator[None]:
    """Request counting is process-wide state: left off and at zero before
    and after the test (``pytestmark = pytest.mark.usefixtures(...)``)."""
    disable_request_counting()
    reset_request_count()
    yield
    disable_request_counting()
    reset_request_count()


@pytest.fixture
def osp_processes() -> Iterator[List[Osp]]:
    """A list for the ``osp`` processes a test starts: each still running
    after the test is killed."""
    started: List[Osp] = []
    yield started
    for osp in started:
        if osp.proc.poll() is None:
            osp.proc.kill()
            osp.proc.wait()


@pytest.fixture
def client_for() -> Callable[..., Any]:
    """``client_for(proxy, access_key, secret_key)``: boto3 through a proxy."""

    def make(server: ProxyServer, access_key: str = CLIENT_ACCESS_KEY, secret_key: str = CLIENT_SECRET_KEY) -> Any:
        return make_client(server.endpoint_url, access_key, secret_key)

    return make


@pytest.fixture
def proxy(start_proxy: Callable[..., ProxyServer], bucket: str) -> ProxyServer:
    """A proxy whose cos_map holds the test's ``bucket`` and nothing else."""
    return start_proxy(bucket)


@pytest.fixture
def client(proxy: ProxyServer, client_for: Callable[..., Any]) -> Any:
    """boto3 through ``proxy`` with the first client key."""
    return client_for(proxy)


# --------------------------------------------------------------------------
# a backend that records what a proxy forwards


def _from_recorder(request: RecordedRequest) -> Answer:
    return Answer(200, [], FROM_RECORDER)


@pytest.fixture
def recorder() -> Iterator[RecordingBackend]:
    """What a proxy forwards, seen from its backend (put it in a cos_map
    entry with ``backend.entry(port=recorder.port)``): each request is
    recorded whole and answered 200 with the body FROM_RECORDER."""
    rec = RecordingBackend(_from_recorder, timeout=RAW_TIMEOUT)
    yield rec
    rec.close()


# --------------------------------------------------------------------------
# a bearer (IBM API key) backend and its IAM


@pytest.fixture
def iam(request: pytest.FixtureRequest) -> Iterator[IamServer]:
    """A local IAM token service (iam_server.py) that knows the API keys
    the test's module lists in ``IAM_API_KEYS``, and no other."""
    with IamServer(getattr(request.module, "IAM_API_KEYS", ())) as server:
        yield server
    # Every token request the proxy made was well formed (grant type,
    # apikey, Accept: application/json, form content type).
    assert server.malformed == [], server.malformed


@pytest.fixture
def front(iam: IamServer, backend: Backend) -> Iterator[BearerFront]:
    """A bearer-token S3 front to versitygw that checks tokens with ``iam``."""
    with BearerFront(iam, backend.endpoint_url) as f:
        yield f


@pytest.fixture
def bearer_proxy(start_proxy: Callable[..., ProxyServer], iam: IamServer, front: BearerFront) -> Callable[..., Any]:
    """``bearer_proxy({bucket: apikey or None, ...}, entry=None, **config)``:
    a proxy whose buckets are behind the front (``entry`` overrides fields of
    each cos_map entry), with the local IAM."""

    def start(buckets: Mapping[str, Optional[str]], entry: Optional[Mapping[str, Any]] = None,
              **options: Any) -> ProxyServer:
        options.setdefault("iam_url", iam.url)
        cos_map = {name: front.entry(key, **dict(entry or {})) for name, key in buckets.items()}
        return start_proxy(cos_map=cos_map, **options)

    return start


# --------------------------------------------------------------------------
# faults: a fault-injecting backend (faultbackend.py) and the leak check
# (leakguard.py)


@pytest.fixture
def fault(backend: Any) -> Iterator[FaultBackend]:
    """A fault-injecting front of versitygw (Forward unless scripted)."""
    with FaultBackend((backend.host, backend.port)) as fb:
        yield fb


@pytest.fixture
def fault_proxy(start_proxy: Callable[..., Any], fault: FaultBackend, bucket: str) -> Callable[..., Any]:
    """``fault_proxy(**config)``: a proxy whose ``bucket`` is behind ``fault``."""

    def start(**options: Any) -> Any:
        return start_proxy(cos_map={bucket: fault.entry()}, **options)

    return start


@pytest.fixture
def leaks() -> LeakGuard:
    """The leak check every fault test ends with (see LeakGuard)."""
    return LeakGuard()


# --------------------------------------------------------------------------
# TLS


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory: Any) -> Tuple[str, str]:
    """(cert_path, key_path): a self-signed certificate for 127.0.0.1 and
    localhost, made with openssl; the cert is also the clients' CA bundle."""
    openssl = require_command("openssl", "openssl")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    result = run(
        [
            openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        isolated_env(directory / "home"),
        timeout=60,
    )
    assert_ok(result)
    return str(cert), str(key)


# --------------------------------------------------------------------------
# SeaweedFS


@pytest.fixture(scope="session")
def seaweed() -> Iterator[SeaweedFS]:
    """One SeaweedFS for the whole run (it takes seconds to start); every
    test makes its own buckets, so they share it."""
    with start_seaweedfs() as server:
        yield server
