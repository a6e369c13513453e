"""Runs a test file's client scenarios against either backend: versitygw (the
session's, from conftest.py) or SeaweedFS (tests/seaweed.py), through the
same proxy fixtures.

A test module imports the fixtures below; they override conftest's
``start_proxy`` and ``direct`` by the value of ``store``, so the proxies,
``make_bucket``/``bucket`` (which create buckets with ``direct``) and every
stored-bytes check follow the backend the test runs on. (conftest's
``backend`` stays versitygw: tests that compare with versitygw straight
are not parametrized.) ``store`` is "versitygw" unless a test is
parametrized with it (``@ON_BOTH`` or ``@ON_BOTH_HTTP``); SeaweedFS is
started once per module, and only when a test asks for it.

SeaweedFS's cos_map entry uses ``upload_framing="plain"`` (SeaweedFS.entry):
it refuses the proxy's default framing when there is no trailer
(docs/compatibility.md, "Second backend: SeaweedFS").
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import pytest

from helpers import proxy_starter
from object_storage_proxy import ProxyServer
from seaweed import SeaweedFS

STORES = ["versitygw", "seaweedfs"]

# Every store, with the test's own other parameters.
ON_BOTH = pytest.mark.parametrize("store", STORES, indirect=True)

# For tests parametrized by ``transport``: versitygw over HTTP and HTTPS as
# before, SeaweedFS over HTTP only (the client-to-proxy leg is the same code
# whatever the backend; the proxy-to-SeaweedFS leg is HTTP either way).
# The ids keep the versitygw tests' old names ([http], [https]).
ON_BOTH_HTTP = pytest.mark.parametrize(
    ("store", "transport"),
    [("versitygw", "http"), ("versitygw", "https"), ("seaweedfs", "http")],
    ids=["http", "https", "seaweedfs-http"],
    indirect=True,
)

# Both stores over both transports: for clients whose framing depends on
# the transport (the Go SDKs: minio-go signs chunks over HTTP and sends
# UNSIGNED-PAYLOAD over HTTPS; aws-sdk-go-v2 a signed hash over HTTP and an
# aws-chunked body with a CRC32 trailer over HTTPS), each of which the proxy
# turns into a plain body for SeaweedFS.
ON_BOTH_ALL = pytest.mark.parametrize(
    ("store", "transport"),
    [("versitygw", "http"), ("versitygw", "https"), ("seaweedfs", "http"), ("seaweedfs", "https")],
    ids=["http", "https", "seaweedfs-http", "seaweedfs-https"],
    indirect=True,
)


@pytest.fixture
def store(request: Any) -> str:
    """The backend this test runs on ("versitygw" unless parametrized)."""
    return str(getattr(request, "param", "versitygw"))


@pytest.fixture
def direct(direct: Any, store: str, request: Any) -> Any:
    """boto3 straight to the test's backend with its own keys: the ground
    truth for what was stored (``make_bucket`` and ``bucket`` create their
    buckets with it too)."""
    if store == "seaweedfs":
        return request.getfixturevalue("seaweed").client()
    return direct


@pytest.fixture
def start_proxy(start_proxy: Callable[..., ProxyServer], store: str, request: Any) -> Iterator[Callable[..., ProxyServer]]:
    """conftest's ``start_proxy`` for versitygw; for SeaweedFS the same
    call (``start_proxy("b1", ..., entry={...}, **options)``) maps each named
    bucket to SeaweedFS with its admin keys and plain upload framing."""
    if store != "seaweedfs":
        yield start_proxy
        return
    seaweed: SeaweedFS = request.getfixturevalue("seaweed")
    with proxy_starter(seaweed.entry) as start:
        yield start
