"""The proxy's control plane as an attacker and an operator see it (issue 12,
items 9, 10, 12, 14 and the original's hmac_keystore list form).

- Python callables are a bounded resource: at most ``max_callable_calls``
  run at once per server; a request that would need one more gets ``503
  SlowDown`` at once, a timed-out call holds its slot until the callable
  really returns, and ``osp_callable_calls_in_flight`` shows them.
- healthz, readyz and metrics live on their own listener (``admin_port``,
  bound to ``admin_bind``, 127.0.0.1 by default); the S3 listeners answer
  only S3, so ``/_osp/...`` there is an S3 request like any other.
- A revoked client key is refused right after ``reload`` (Python and the
  CLI's SIGHUP), and at once with ``hmac_fetcher_ttl=0``; reload drops
  validator and bucket_creds_fetcher answers too.
- Unknown keys in a cos_map entry are refused naming key and bucket; the
  original's aliases stay accepted; hmac_keystore may be the original's list
  of ``{"access_key", "secret_key"}`` dicts.
"""

from __future__ import annotations

import json
import signal
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest
import requests
from botocore.exceptions import ClientError

from helpers import (
    BACKEND_ACCESS_KEY,
    BACKEND_SECRET_KEY,
    CLIENT_ACCESS_KEY,
    CLIENT_SECRET_KEY,
    assert_client_error,
    assert_s3_error,
    free_port,
    make_client,
    send_signed,
    sign_request,
    stored_body,
)
from object_storage_proxy import ProxyServer, ProxyServerConfig
from observe import HEALTHZ, METRICS, READYZ, admin, eventually, scrape
from osp_cli import Osp, child_env, config_text, write_module

DOMAIN = "s3.osp.test"


def process_threads() -> int:
    """OS threads of this process (the proxy runs in it)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    raise AssertionError("no Threads: line in /proc/self/status")


def unknown_key() -> str:
    """A fresh, well-formed access key id no store knows: every request with
    one misses every cache."""
    return "AKUNKNOWN" + uuid.uuid4().hex[:11].upper()


# --------------------------------------------------------------------------
# item 9: callable calls are bounded


class BlockingFetcher:
    """An hmac_fetcher that blocks on an Event, counting calls; once
    released it knows CLIENT_ACCESS_KEY only."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.running = 0
        self.calls = 0

    def __call__(self, access_key: str) -> Optional[str]:
        with self.lock:
            self.running += 1
            self.calls += 1
        try:
            self.release.wait(30)
            return CLIENT_SECRET_KEY if access_key == CLIENT_ACCESS_KEY else None
        finally:
            with self.lock:
                self.running -= 1


def background(fn: Callable[[], Any]) -> Dict[str, Any]:
    """Runs fn in a thread; the dict gets "result" or "error", and "thread"."""
    out: Dict[str, Any] = {}

    def run() -> None:
        try:
            out["result"] = fn()
        except BaseException as e:  # noqa: BLE001 - checked by the test
            out["error"] = e

    out["thread"] = threading.Thread(target=run, daemon=True)
    out["thread"].start()
    return out


def test_callable_calls_are_bounded(start_proxy: Callable[..., ProxyServer], bucket: str) -> None:
    fetcher = BlockingFetcher()
    proxy = start_proxy(bucket, hmac_keystore=None, hmac_fetcher=fetcher, max_callable_calls=2,
                        callback_timeout=60, admin_port=0)
    url = f"{proxy.endpoint_url}/{bucket}/k"
    try:
        held = [background(lambda: send_signed("GET", url, access_key=unknown_key(), secret_key="x" * 40))
                for _ in range(2)]
        eventually(lambda: _assert_eq(fetcher.running, 2), timeout=10)
        threads_before = process_threads()
        # Beyond the bound: SlowDown at once, the callable never called.
        for _ in range(30):
            started = time.monotonic()
            response = send_signed("GET", url, access_key=unknown_key(), secret_key="x" * 40)
            assert time.monotonic() - started < 2, "a request beyond the bound waited"
            fields = assert_s3_error(response, 503, "SlowDown")
            assert fields.get("RequestId"), fields
        assert fetcher.calls == 2
        assert process_threads() - threads_before < 10, "threads grew with refused requests"
        metrics = scrape(proxy)
        assert metrics.value("osp_callable_calls_in_flight", callable="hmac_fetcher") == 2, \
            metrics.table("osp_callable_calls_in_flight")
        assert metrics.types.get("osp_callable_calls_in_flight") == "gauge"
    finally:
        fetcher.release.set()
    for h in held:
        h["thread"].join(15)
        assert_s3_error(h["result"], 403, "InvalidAccessKeyId")
    # Everything recovers: the slots are free, a known key gets in.
    client = make_client(proxy.endpoint_url, CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY)
    client.put_object(Bucket=bucket, Key="after", Body=b"ok")
    eventually(lambda: _assert_eq(scrape(proxy).value("osp_callable_calls_in_flight"), 0))


def test_a_timed_out_call_keeps_its_slot(start_proxy: Callable[..., ProxyServer], bucket: str) -> None:
    """The waiter gives up after callback_timeout; the hung callable still
    holds its slot (and its OS thread) until it returns."""
    fetcher = BlockingFetcher()
    proxy = start_proxy(bucket, hmac_keystore=None, hmac_fetcher=fetcher, max_callable_calls=1,
                        callback_timeout=0.5, admin_port=0)
    url = f"{proxy.endpoint_url}/{bucket}/k"
    try:
        timed_out = send_signed("GET", url, access_key=unknown_key(), secret_key="x" * 40)
        assert_s3_error(timed_out, 503, "ServiceUnavailable")
        assert fetcher.running == 1
        refused = send_signed("GET", url, access_key=unknown_key(), secret_key="x" * 40)
        assert_s3_error(refused, 503, "SlowDown")
        assert refused.headers.get("Retry-After", "").isdigit(), dict(refused.headers)
        assert fetcher.calls == 1
        assert scrape(proxy).value("osp_callable_calls_in_flight", callable="hmac_fetcher") == 1
    finally:
        fetcher.release.set()
    eventually(lambda: _assert_eq(scrape(proxy).value("osp_callable_calls_in_flight"), 0), timeout=5)
    client = make_client(proxy.endpoint_url, CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY)
    client.put_object(Bucket=bucket, Key="after", Body=b"ok")


class Gate:
    """A validator or bucket_creds_fetcher that blocks on an Event."""

    def __init__(self, answer: Any) -> None:
        self.release = threading.Event()
        self.entered = threading.Semaphore(0)
        self.answer = answer
        self.calls = 0

    def __call__(self, token: str, bucket: str) -> Any:
        self.calls += 1
        self.entered.release()
        self.release.wait(30)
        return self.answer


@pytest.mark.parametrize("kind", ["validator", "bucket_creds_fetcher"])
def test_every_callable_kind_shares_the_bound(start_proxy: Callable[..., ProxyServer], make_bucket: Callable[..., str],
                                              kind: str) -> None:
    """The bound is per server, over all callables: a hung validator (or
    bucket_creds_fetcher) fills it, and the next request that needs any
    callable gets SlowDown; a reload does not free slots still held."""
    buckets = [make_bucket() for _ in range(3)]
    pair = {"access_key": BACKEND_ACCESS_KEY, "secret_key": BACKEND_SECRET_KEY}
    gate = Gate(True if kind == "validator" else pair)
    options: Dict[str, Any] = {kind: gate, "max_callable_calls": 1, "callback_timeout": 60}
    if kind == "bucket_creds_fetcher":
        options["entry"] = {"creds": False}
    proxy = start_proxy(*buckets, **options)
    try:
        held = background(lambda: send_signed("PUT", f"{proxy.endpoint_url}/{buckets[0]}/k", body=b"held"))
        assert gate.entered.acquire(timeout=10), "the held request never reached the callable"
        assert scrape(proxy).value("osp_callable_calls_in_flight", callable=kind) == 1
        assert_s3_error(send_signed("PUT", f"{proxy.endpoint_url}/{buckets[1]}/k", body=b"x"), 503, "SlowDown")
        proxy.reload(proxy.config)  # new caches, same server: the hung call still holds its slot
        assert_s3_error(send_signed("PUT", f"{proxy.endpoint_url}/{buckets[2]}/k", body=b"x"), 503, "SlowDown")
        assert gate.calls == 1
    finally:
        gate.release.set()
    held["thread"].join(15)
    assert held["result"].status_code == 200, held["result"].text
    assert send_signed("PUT", f"{proxy.endpoint_url}/{buckets[1]}/k", body=b"x").status_code == 200
    metrics = scrape(proxy)
    assert metrics.value("osp_callable_calls_total", callable=kind, outcome="throttled") == 2, \
        metrics.table("osp_callable_calls_total")


def test_max_callable_calls_setting() -> None:
    entry = {"host": "127.0.0.1", "port": 9000, "access_key": "a", "secret_key": "s"}
    assert ProxyServerConfig({"b": entry}, http_port=0).max_callable_calls == 32
    config = ProxyServerConfig({"b": entry}, http_port=0, max_callable_calls=4)
    assert json.loads(config.to_native_json())["max_callable_calls"] == 4
    for bad, error in ((0, ValueError), (-1, ValueError), ("4", TypeError), (True, TypeError)):
        with pytest.raises(error, match="max_callable_calls"):
            ProxyServerConfig({"b": entry}, http_port=0, max_callable_calls=bad)


def _assert_eq(got: Any, want: Any) -> None:
    assert got == want, (got, want)


# --------------------------------------------------------------------------
# item 10: the admin endpoints have their own listener


def test_admin_listener_serves_health_readiness_and_metrics(start_proxy: Callable[..., ProxyServer],
                                                            bucket: str) -> None:
    proxy = start_proxy(bucket, admin_port=0)
    assert proxy.admin_port and proxy.admin_port not in (proxy.http_port, proxy.https_port)
    assert proxy.admin_url == f"http://127.0.0.1:{proxy.admin_port}"
    assert admin(proxy.admin_url, HEALTHZ).status_code == 200
    assert admin(proxy.admin_url, READYZ).status_code == 200
    assert "osp_requests_total" in admin(proxy.admin_url, METRICS).text or scrape(proxy).types
    assert admin(proxy.admin_url, "/nothing").status_code == 404
    # Bound to 127.0.0.1 only (admin_bind's default), not every interface.
    with open("/proc/self/net/tcp") as f:
        listening = [line.split()[1] for line in f if line.split()[3] == "0A"]
    assert f"0100007F:{proxy.admin_port:04X}" in listening, listening


def test_admin_listener_is_off_by_default(backend: Any, bucket: str) -> None:
    config = ProxyServerConfig({bucket: backend.entry()}, http_port=0, bind_address="127.0.0.1")
    assert config.admin_port is None
    with ProxyServer(config) as proxy:
        assert proxy.admin_port is None and proxy.admin_url is None


def test_s3_listener_answers_admin_paths_as_s3(start_proxy: Callable[..., ProxyServer], direct: Any,
                                               bucket: str) -> None:
    """/_osp/... on an S3 listener is an S3 request: without credentials an
    S3 error, in virtual-host style the object of that key."""
    proxy = start_proxy(bucket, virtual_host_domains=[DOMAIN], admin_port=0)
    for path in ("/_osp/metrics", "/_osp/healthz", "/_osp/readyz"):
        response = requests.get(proxy.endpoint_url + path, timeout=10)
        assert_s3_error(response, 403, "AccessDenied")
        assert "go_goroutines" not in response.text, response.text[:300]
    direct.put_object(Bucket=bucket, Key="_osp/metrics", Body=b"an object, not metrics")
    host = f"{bucket}.{DOMAIN}:{proxy.http_port}"
    signed = sign_request("GET", f"http://{host}/_osp/metrics")
    signed["Host"] = host
    response = requests.get(f"http://127.0.0.1:{proxy.http_port}/_osp/metrics", headers=signed, timeout=10)
    assert response.status_code == 200, (response.status_code, response.text[:300])
    assert response.content == b"an object, not metrics"


def test_admin_bind_and_port_are_checked() -> None:
    entry = {"host": "127.0.0.1", "port": 9000, "access_key": "a", "secret_key": "s"}
    config = ProxyServerConfig({"b": entry}, http_port=0, admin_port=0)
    document = json.loads(config.to_native_json())
    assert document["admin_port"] == 0 and document["admin_bind"] == "127.0.0.1"
    assert json.loads(ProxyServerConfig({"b": entry}, http_port=0).to_native_json())["admin_port"] is None
    with pytest.raises(ValueError, match="admin_port"):
        ProxyServerConfig({"b": entry}, http_port=0, admin_port=70000)
    with pytest.raises(TypeError, match="admin_bind"):
        ProxyServerConfig({"b": entry}, http_port=0, admin_port=0, admin_bind=1)


# --------------------------------------------------------------------------
# item 12: revocation takes effect at reload (or at once with ttl 0)


class Keys:
    """An hmac_fetcher over a dict the test changes."""

    def __init__(self, **keys: str) -> None:
        self.keys = dict(keys)
        self.calls = 0

    def __call__(self, access_key: str) -> Optional[str]:
        self.calls += 1
        return self.keys.get(access_key)


def fetching_proxy(start_proxy: Callable[..., ProxyServer], bucket: str,
                   **options: Any) -> Tuple[Keys, ProxyServer, Any]:
    """A proxy whose client keys come from a Keys fetcher (knowing
    CLIENT_ACCESS_KEY), with ``options``; and boto3 through it."""
    keys = Keys(**{CLIENT_ACCESS_KEY: CLIENT_SECRET_KEY})
    proxy = start_proxy(bucket, hmac_keystore=None, hmac_fetcher=keys, **options)
    return keys, proxy, make_client(proxy.endpoint_url, CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY)


def assert_key_refused(client: Any, bucket: str, key: str) -> None:
    """A PUT with the client's (revoked) key is refused as an unknown key."""
    with pytest.raises(ClientError) as refused:
        client.put_object(Bucket=bucket, Key=key, Body=b"1")
    assert_client_error(refused, 403, "InvalidAccessKeyId", client)


def test_reload_drops_cached_client_secrets(start_proxy: Callable[..., ProxyServer], bucket: str) -> None:
    keys, proxy, client = fetching_proxy(start_proxy, bucket)
    client.put_object(Bucket=bucket, Key="before", Body=b"1")
    del keys.keys[CLIENT_ACCESS_KEY]  # revoked
    client.put_object(Bucket=bucket, Key="cached", Body=b"1")  # the cached secret, as documented
    proxy.reload(proxy.config)
    assert_key_refused(client, bucket, "after")


def test_hmac_fetcher_ttl_zero_revokes_at_once(start_proxy: Callable[..., ProxyServer], bucket: str) -> None:
    keys, _, client = fetching_proxy(start_proxy, bucket, hmac_fetcher_ttl=0)
    client.put_object(Bucket=bucket, Key="a", Body=b"1")
    client.put_object(Bucket=bucket, Key="b", Body=b"1")
    assert keys.calls == 2, "hmac_fetcher_ttl=0 must not cache known keys"
    del keys.keys[CLIENT_ACCESS_KEY]
    assert_key_refused(client, bucket, "c")


def test_hmac_fetcher_ttl_caches_known_keys(start_proxy: Callable[..., ProxyServer], bucket: str) -> None:
    keys, _, client = fetching_proxy(start_proxy, bucket, hmac_fetcher_ttl=1)
    client.put_object(Bucket=bucket, Key="a", Body=b"1")
    client.put_object(Bucket=bucket, Key="b", Body=b"1")
    assert keys.calls == 1
    time.sleep(1.2)
    client.put_object(Bucket=bucket, Key="c", Body=b"1")
    assert keys.calls == 2


def test_reload_drops_validator_and_bucket_creds_answers(start_proxy: Callable[..., ProxyServer],
                                                         backend: Any, bucket: str) -> None:
    allowed = {"validator": True, "creds": True}

    def validator(token: str, name: str) -> bool:
        return allowed["validator"]

    def fetcher(token: str, name: str) -> Optional[Dict[str, str]]:
        if not allowed["creds"]:
            return None
        return {"access_key": BACKEND_ACCESS_KEY, "secret_key": BACKEND_SECRET_KEY}

    proxy = start_proxy(bucket, validator=validator, bucket_creds_fetcher=fetcher, entry={"creds": False})
    client = make_client(proxy.endpoint_url, CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY)
    client.put_object(Bucket=bucket, Key="a", Body=b"1")
    allowed["creds"] = False
    client.put_object(Bucket=bucket, Key="cached", Body=b"1")  # both answers cached for the bucket's ttl
    proxy.reload(proxy.config)
    with pytest.raises(ClientError) as no_creds:
        client.put_object(Bucket=bucket, Key="b", Body=b"1")
    assert_client_error(no_creds, 403, "AccessDenied", client)
    allowed.update(creds=True, validator=True)
    proxy.reload(proxy.config)
    client.put_object(Bucket=bucket, Key="c", Body=b"1")
    allowed["validator"] = False
    client.put_object(Bucket=bucket, Key="cached2", Body=b"1")
    proxy.reload(proxy.config)
    with pytest.raises(ClientError) as denied:
        client.put_object(Bucket=bucket, Key="d", Body=b"1")
    assert_client_error(denied, 403, "AccessDenied", client)


def test_sighup_revokes_a_fetched_key(tmp_path: Path, backend: Any, direct: Any, bucket: str,
                                      osp_processes: List[Osp]) -> None:
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(json.dumps({CLIENT_ACCESS_KEY: CLIENT_SECRET_KEY}))
    module = write_module(
        tmp_path / "modules", "osp_keys",
        "import json, os\n"
        "def fetch(access_key):\n"
        "    with open(os.environ['OSP_TEST_KEYS']) as f:\n"
        "        return json.load(f).get(access_key)\n"
    )
    port = free_port()
    path = tmp_path / "osp.toml"
    path.write_text(config_text(backend, [bucket], port=port, keystore={},
                                callables={"hmac_fetcher": f"{module}:fetch"}))
    osp = Osp(["serve", "--config", str(path)], child_env(tmp_path / "modules", OSP_TEST_KEYS=str(keys_file)),
              tmp_path)
    osp_processes.append(osp)
    osp.wait_for("serving")
    client = make_client(f"http://127.0.0.1:{port}", CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY)
    client.put_object(Bucket=bucket, Key="k", Body=b"before")
    keys_file.write_text("{}")
    osp.send(signal.SIGHUP, "reloaded")
    assert_key_refused(client, bucket, "k")
    assert stored_body(direct, bucket, "k") == b"before"
    assert osp.finish(signal.SIGTERM) == 0, osp.output


def test_hmac_fetcher_ttl_setting() -> None:
    entry = {"host": "127.0.0.1", "port": 9000, "access_key": "a", "secret_key": "s"}
    assert ProxyServerConfig({"b": entry}, http_port=0).hmac_fetcher_ttl == 300
    config = ProxyServerConfig({"b": entry}, http_port=0, hmac_fetcher_ttl=0)
    assert json.loads(config.to_native_json())["hmac_fetcher_ttl"] == 0
    with pytest.raises(ValueError, match="hmac_fetcher_ttl"):
        ProxyServerConfig({"b": entry}, http_port=0, hmac_fetcher_ttl=-1)


# --------------------------------------------------------------------------
# item 14: unknown cos_map keys; the original's aliases


def test_unknown_cos_map_key_is_refused_naming_key_and_bucket() -> None:
    entry = {"host": "127.0.0.1", "port": 9000, "acess_key": "a", "secret_key": "s"}
    with pytest.raises(ValueError) as refused:
        ProxyServerConfig({"data": entry}, http_port=0)
    assert "'acess_key'" in str(refused.value) and "'data'" in str(refused.value), refused.value
    assert "secret" not in str(refused.value).replace("secret_key", "")


@pytest.mark.parametrize("aliases", [
    {"apikey": "k"}, {"api_key": "k"}, {"accessKey": "a", "secretKey": "s"}, {"access_key": "a", "secret_key": "s"},
    {"api_key": "k", "time-to-live": 5}, {"api_key": "k", "ttl": 5},
])
def test_original_cos_map_aliases_stay_accepted(aliases: Dict[str, Any]) -> None:
    config = ProxyServerConfig({"data": {"host": "127.0.0.1", "port": 9000, **aliases}}, http_port=0)
    entry = config.cos_map["data"]
    assert "api_key" in entry or {"access_key", "secret_key"} <= set(entry)


def test_c_api_refuses_unknown_config_keys() -> None:
    """A host that is not this package (or a typo in it) gets its unknown
    keys named by osp_server_start, not silently dropped."""
    from object_storage_proxy import _native

    entry = {"host": "127.0.0.1", "port": 9000, "acess_key": "a", "secret_key": "s"}
    for document, named in (({"http_port": 0, "bind": "127.0.0.1", "htp_port": 1}, '"htp_port"'),
                            ({"http_port": 0, "bind": "127.0.0.1", "cos_map": {"data": entry}},
                             'cos_map["data"]: unknown key "acess_key"')):
        with pytest.raises(RuntimeError) as refused:
            _native.start(json.dumps(document))
        assert named in str(refused.value), refused.value


# --------------------------------------------------------------------------
# compat: the original's hmac_keystore, a list of dicts


def test_original_hmac_keystore_list_serves_a_signed_request(backend: Any, direct: Any, bucket: str) -> None:
    # The original README's shape.
    hmac_keys = [
        {"access_key": CLIENT_ACCESS_KEY, "secret_key": CLIENT_SECRET_KEY},
        {"access_key": "MYLOCAL456", "secret_key": "MYLOCAL456SECRET"},
    ]
    config = ProxyServerConfig({bucket: backend.entry()}, None, None, 0, None, 1, None, hmac_keys,
                               bind_address="127.0.0.1")
    assert config.hmac_keystore == {CLIENT_ACCESS_KEY: CLIENT_SECRET_KEY, "MYLOCAL456": "MYLOCAL456SECRET"}
    with ProxyServer(config) as proxy:
        client = make_client(proxy.endpoint_url, CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY)
        client.put_object(Bucket=bucket, Key="k", Body=b"original")
    assert stored_body(direct, bucket, "k") == b"original"


@pytest.mark.parametrize("bad, error, message", [
    ([{"access_key": "a"}], ValueError, r"hmac_keystore\[0\]"),
    ([{"access_key": "a", "secret_key": "s"}, "x"], TypeError, r"hmac_keystore\[1\]"),
    ([{"access_key": "a", "secret_key": "s", "extra": 1}], ValueError, r"hmac_keystore\[0\].*'extra'"),
    ([{"access_key": "a", "secret_key": ""}], ValueError, r"hmac_keystore\[0\]"),
    ([{"access_key": "a", "secret_key": 5}], TypeError, r"hmac_keystore\[0\]"),
    ([{"access_key": "a", "secret_key": "s"}, {"access_key": "a", "secret_key": "t"}], ValueError,
     r"hmac_keystore\[1\].*twice"),
    ("a=b", TypeError, "hmac_keystore"),
])
def test_malformed_hmac_keystore_list_names_the_entry(bad: Any, error: type, message: str) -> None:
    entry = {"host": "127.0.0.1", "port": 9000, "access_key": "a", "secret_key": "s"}
    with pytest.raises(error, match=message) as refused:
        ProxyServerConfig({"b": entry}, http_port=0, hmac_keystore=bad)
    assert "'s'" not in str(refused.value) and "'t'" not in str(refused.value)


def test_toml_config_has_the_control_plane_settings(tmp_path: Path) -> None:
    from object_storage_proxy.configfile import load_config

    path = tmp_path / "osp.toml"
    path.write_text(
        "[server]\nhttp_port = 0\nadmin_port = 0\nadmin_bind = \"::1\"\nmax_callable_calls = 4\nhmac_fetcher_ttl = 0\n"
        "[buckets.data]\nhost = \"127.0.0.1\"\nport = 9000\naccess_key = \"a\"\nsecret_key = \"s\"\n"
    )
    config = load_config(path)
    assert (config.admin_port, config.admin_bind, config.max_callable_calls, config.hmac_fetcher_ttl) == (0, "::1", 4, 0)
    path.write_text(path.read_text().replace("max_callable_calls = 4", "max_callable_calls = 0"))
    with pytest.raises(ValueError, match=r"\[server\] max_callable_calls: 0 is out of range"):
        load_config(path)
