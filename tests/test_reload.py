"""ProxyServer.reload(config): swaps cos_map, keystore, TTLs and callables of
a running server without dropping in-flight requests; listeners cannot move
by reload; a bad config leaves the server as it was."""

from __future__ import annotations

import hashlib
import http.client
import os
import time
from typing import Any, Callable, Dict

import pytest
from botocore.exceptions import ClientError

from helpers import (
    CLIENT_ACCESS_KEY,
    CLIENT_KEYSTORE,
    CLIENT_SECRET_KEY,
    OTHER_ACCESS_KEY,
    OTHER_SECRET_KEY,
    CallLog,
    assert_client_error,
    free_port,
    make_client,
    sign_request,
    stored_body,
)
from object_storage_proxy import ProxyServer, ProxyServerConfig, _native


def reconfigured(server: ProxyServer, cos_map: Dict[str, Any], **changes: Any) -> ProxyServerConfig:
    """A new config for ``server``: its listener settings, the given cos_map,
    the client keystore unless changed, and ``changes``."""
    old = server.config
    options: Dict[str, Any] = dict(
        http_port=old.http_port,
        https_port=old.https_port,
        bind_address=old.bind_address,
        admin_port=old.admin_port,
        admin_bind=old.admin_bind,
        hmac_keystore=dict(CLIENT_KEYSTORE),
    )
    options.update(changes)
    return ProxyServerConfig(cos_map, **options)


def test_reload_swaps_the_keystore(
    start_proxy: Callable[..., ProxyServer], client_for: Callable[..., Any], backend: Any, bucket: str
) -> None:
    server = start_proxy(bucket, hmac_keystore={CLIENT_ACCESS_KEY: CLIENT_SECRET_KEY})
    old_key, new_key = client_for(server), client_for(server, OTHER_ACCESS_KEY, OTHER_SECRET_KEY)
    old_key.put_object(Bucket=bucket, Key="before", Body=b"1")
    with pytest.raises(ClientError) as refused:
        new_key.put_object(Bucket=bucket, Key="early", Body=b"1")
    assert_client_error(refused, 403, "InvalidAccessKeyId", new_key)
    port = server.http_port

    new_config = reconfigured(server, {bucket: backend.entry()}, hmac_keystore={OTHER_ACCESS_KEY: OTHER_SECRET_KEY})
    server.reload(new_config)

    assert server.config is new_config
    assert server.http_port == port, "a reload keeps the listener"
    new_key.put_object(Bucket=bucket, Key="after", Body=b"2")
    assert new_key.get_object(Bucket=bucket, Key="before")["Body"].read() == b"1"
    with pytest.raises(ClientError) as refused:
        old_key.get_object(Bucket=bucket, Key="before")
    assert_client_error(refused, 403, "InvalidAccessKeyId", old_key)


def test_reload_adds_and_removes_buckets(
    start_proxy: Callable[..., ProxyServer], client_for: Callable[..., Any], backend: Any, make_bucket: Callable[..., str]
) -> None:
    first, second = make_bucket(), make_bucket()
    server = start_proxy(first)
    client = client_for(server)
    with pytest.raises(ClientError) as missing:
        client.put_object(Bucket=second, Key="k", Body=b"x")
    assert_client_error(missing, 404, "NoSuchBucket", client)

    server.reload(reconfigured(server, {first: backend.entry(), second: backend.entry()}))
    client.put_object(Bucket=second, Key="k", Body=b"second")
    client.put_object(Bucket=first, Key="k", Body=b"first")

    server.reload(reconfigured(server, {second: backend.entry()}))
    assert client.get_object(Bucket=second, Key="k")["Body"].read() == b"second"
    with pytest.raises(ClientError) as removed:
        client.get_object(Bucket=first, Key="k")
    assert_client_error(removed, 404, "NoSuchBucket", client)


def test_reload_during_a_running_upload(
    start_proxy: Callable[..., ProxyServer], backend: Any, direct: Any, make_bucket: Callable[..., str]
) -> None:
    """A PUT whose body is still arriving when the config changes completes
    with every byte stored, under the config it started with (its key is
    gone from the new keystore, yet the upload finishes)."""
    bucket, added = make_bucket(), make_bucket()
    server = start_proxy(bucket)
    body = os.urandom(8 * 1024 * 1024)
    path = f"/{bucket}/during-reload"
    headers = sign_request("PUT", server.endpoint_url + path, body=body)
    piece = 64 * 1024
    half = len(body) // 2

    conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=30)
    try:
        conn.putrequest("PUT", path, skip_host=True, skip_accept_encoding=True)
        for name, value in {**headers, "Host": f"127.0.0.1:{server.http_port}", "Content-Length": str(len(body))}.items():
            conn.putheader(name, value)
        conn.endheaders()
        for offset in range(0, half, piece):
            conn.send(body[offset : offset + piece])
        time.sleep(0.2)  # the proxy is streaming this body to versitygw now

        new_config = reconfigured(
            server,
            {bucket: backend.entry(), added: backend.entry()},
            hmac_keystore={OTHER_ACCESS_KEY: OTHER_SECRET_KEY},
        )
        started = time.monotonic()
        server.reload(new_config)
        assert time.monotonic() - started < 2, "reload must not wait for in-flight requests"

        for offset in range(half, len(body), piece):
            conn.send(body[offset : offset + piece])
            if offset % (1024 * 1024) == 0:
                time.sleep(0.02)
        response = conn.getresponse()
        status, payload = response.status, response.read()
    finally:
        conn.close()

    assert status == 200, payload[:500]
    stored = stored_body(direct, bucket, "during-reload")
    assert len(stored) == len(body) and hashlib.sha256(stored).digest() == hashlib.sha256(body).digest()
    # New requests get the new config: the upload's key is gone, the new one works.
    old = make_client(server.endpoint_url, CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY)
    with pytest.raises(ClientError) as refused:
        old.head_object(Bucket=bucket, Key="during-reload")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    new = make_client(server.endpoint_url, OTHER_ACCESS_KEY, OTHER_SECRET_KEY)
    new.put_object(Bucket=added, Key="k", Body=b"new bucket")
    assert stored_body(direct, added, "k") == b"new bucket"


def test_reload_cannot_move_listeners(
    start_proxy: Callable[..., ProxyServer], client_for: Callable[..., Any], backend: Any, bucket: str
) -> None:
    server = start_proxy(bucket)
    client = client_for(server)
    before = server.config
    for change in ({"http_port": free_port()}, {"bind_address": "0.0.0.0"}, {"admin_port": free_port()},
                   {"admin_port": None}):
        with pytest.raises(ValueError, match=r"(?i)restart|cannot change"):
            server.reload(reconfigured(server, {bucket: backend.entry()}, hmac_keystore={}, **change))
        assert server.config is before
    # Still serving, with the old keystore (the refused configs had none).
    client.put_object(Bucket=bucket, Key="still", Body=b"serving")
    assert client.get_object(Bucket=bucket, Key="still")["Body"].read() == b"serving"


def test_reload_with_a_bad_config_changes_nothing(
    start_proxy: Callable[..., ProxyServer], client_for: Callable[..., Any], backend: Any, bucket: str
) -> None:
    server = start_proxy(bucket)
    client = client_for(server)
    registered = len(_native._registry)
    bad = reconfigured(server, {bucket: backend.entry()}, validator=lambda token, bucket: True)
    bad.cos_map[bucket]["port"] = 0  # broken after construction: reload validates again
    with pytest.raises(ValueError, match="port"):
        server.reload(bad)
    with pytest.raises(TypeError):
        server.reload({bucket: backend.entry()})  # type: ignore[arg-type]
    assert len(_native._registry) == registered, "a refused reload must not leak callables"
    client.put_object(Bucket=bucket, Key="k", Body=b"unchanged")


def test_reload_of_a_stopped_server(backend: Any, bucket: str) -> None:
    config = ProxyServerConfig({bucket: backend.entry()}, http_port=0, bind_address="127.0.0.1")
    server = ProxyServer(config)
    with pytest.raises(RuntimeError, match="not running"):
        server.reload(config)


def test_reload_swaps_callables_and_retires_the_old_ones(
    start_proxy: Callable[..., ProxyServer],
    client_for: Callable[..., Any],
    backend: Any,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old_calls, new_calls = CallLog(), CallLog()

    def deny_all(token: str, bucket: str) -> bool:
        old_calls.add(token, bucket)
        return False

    def allow_all(token: str, bucket: str) -> bool:
        new_calls.add(token, bucket)
        return True

    def hmac_fetcher(access_key: str) -> None:
        return None

    monkeypatch.setattr(_native, "RETIRE_AFTER", 0.5)
    server = start_proxy(bucket, validator=deny_all, hmac_fetcher=hmac_fetcher, entry={"ttl": 300})
    client = client_for(server)
    with pytest.raises(ClientError) as denied:
        client.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert_client_error(denied, 403, "AccessDenied", client)
    handle = server._handle
    old_ids = dict((kind, cid) for kind, (_, cid) in server._registered.items())

    # The cached "deny" must not survive: the new validator is asked.
    server.reload(reconfigured(server, {bucket: backend.entry(ttl=300)}, validator=allow_all, hmac_fetcher=hmac_fetcher))
    client.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert len(old_calls) == 1 and len(new_calls) >= 1

    new_ids = dict((kind, cid) for kind, (_, cid) in server._registered.items())
    assert new_ids["hmac_fetcher"] == old_ids["hmac_fetcher"], "the same callable keeps its id"
    assert new_ids["validator"] != old_ids["validator"]
    assert old_ids["validator"] in _native._registry, "kept for requests that began before the reload"
    deadline = time.monotonic() + 5
    while old_ids["validator"] in _native._registry and time.monotonic() < deadline:
        time.sleep(0.05)
    assert old_ids["validator"] not in _native._registry, "retired after RETIRE_AFTER"
    assert set(_native._servers[handle]) == set(new_ids.values())

    server.stop()
    assert not set(new_ids.values()) & set(_native._registry), "stop drops every callable"


def test_stop_drops_callables_a_reload_retired(
    start_proxy: Callable[..., ProxyServer], backend: Any, bucket: str
) -> None:
    server = start_proxy(bucket, validator=lambda token, bucket: True)
    (old_id,) = [cid for _, cid in server._registered.values()]
    server.reload(reconfigured(server, {bucket: backend.entry()}, validator=lambda token, bucket: True))
    assert old_id in _native._registry
    server.stop()
    assert old_id not in _native._registry
