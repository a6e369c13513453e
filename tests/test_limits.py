"""The limits in one process (state in the proxy's memory, the default):
presigned URLs with a use limit and a longest validity, per client key
request rates and bandwidth (docs/limits.md), through the proxy to
versitygw. tests/test_fleet.py runs the same limits across two instances on
Redis.

Attacker views: a spent URL gets no fresh use by re-encoding its query,
reordering or adding parameters or changing the case of its signature (the
URL is known by the signature the proxy verified), and a throttled key is
not unthrottled by case-folding it or adding a session token (the limit is
the authenticated key's, taken after the signature is checked).
"""

from __future__ import annotations

import concurrent.futures
import json
import time
import urllib.parse
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import pytest
import requests

from helpers import (
    CLIENT_ACCESS_KEY,
    CLIENT_SECRET_KEY,
    OTHER_ACCESS_KEY,
    OTHER_SECRET_KEY,
    parse_s3_error,
    presign,
    send_signed,
)
from object_storage_proxy import ProxyServer, ProxyServerConfig
from object_storage_proxy.configfile import check_config
from observe import admin, scrape

TIMEOUT = 20
KEY = "limited.txt"
BODY = b"a presigned object\n"


def get(url: str, **kwargs: Any) -> requests.Response:
    return requests.get(url, timeout=TIMEOUT, allow_redirects=False, **kwargs)


def assert_error(response: requests.Response, status: int, code: str, words: str = "") -> Dict[str, str]:
    assert response.status_code == status, (response.status_code, response.text[:400])
    fields = parse_s3_error(response.content)
    assert fields["Code"] == code, fields
    assert words in fields.get("Message", ""), fields
    return fields


def spent(response: requests.Response) -> None:
    assert_error(response, 403, "AccessDenied", "uses are spent")


@pytest.fixture
def stored(direct: Any, bucket: str) -> str:
    direct.put_object(Bucket=bucket, Key=KEY, Body=BODY)
    return bucket


# -- presigned URLs --------------------------------------------------------------


def test_a_one_use_url_works_once_even_under_concurrency(start_proxy: Callable[..., ProxyServer], stored: str) -> None:
    proxy = start_proxy(stored, presign_max_uses=1)
    url = presign("GET", proxy.endpoint_url, stored, KEY)
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(lambda _: get(url), range(20)))
    served = [r for r in responses if r.status_code == 200]
    assert len(served) == 1 and served[0].content == BODY, [r.status_code for r in responses]
    for r in responses:
        if r.status_code != 200:
            spent(r)
    # Another URL for the same object has its own use.
    assert get(presign("GET", proxy.endpoint_url, stored, KEY, expires=301)).status_code == 200
    assert scrape(proxy).value("osp_presigned_refused_total", reason="uses_spent") == 19


def _variants(url: str) -> Dict[str, str]:
    """The same URL written otherwise, and URLs that claim its signature."""
    parts = urllib.parse.urlsplit(url)
    pairs = [p.split("=", 1) for p in parts.query.split("&")]
    signature = dict(pairs)["X-Amz-Signature"]

    def query(items: List[List[str]]) -> str:
        return urllib.parse.urlunsplit(parts._replace(query="&".join(f"{k}={v}" for k, v in items)))

    reencoded = [[k, v.replace("%2F", "/")] if k == "X-Amz-Credential" else [k, v] for k, v in pairs]
    reencoded = [[k.replace("Amz", "%41mz"), v] for k, v in reencoded]
    return {
        "reordered": query(list(reversed(pairs))),
        "re-encoded": query(reencoded),
        "upper-case signature": query([[k, v.upper() if k == "X-Amz-Signature" else v] for k, v in pairs]),
        "added parameter": query(pairs + [["x-id", "GetObject"]]),
        "added empty parameter": query(pairs + [["versionId", ""]]),
        "signature twice": query(pairs + [["X-Amz-Signature", signature]]),
    }


def test_a_spent_url_gets_no_fresh_use_written_otherwise(start_proxy: Callable[..., ProxyServer], stored: str) -> None:
    proxy = start_proxy(stored, presign_max_uses=1)
    url = presign("GET", proxy.endpoint_url, stored, KEY)
    assert get(url).status_code == 200
    for name, variant in _variants(url).items():
        response = get(variant)
        assert response.status_code in (400, 403), (name, response.status_code, response.text[:300])
        if name in ("reordered", "re-encoded"):
            spent(response)  # the same URL: the same verified signature
    spent(get(url))


def test_a_bucket_overrides_the_server_use_limit_and_a_reload_keeps_counts(
        start_proxy: Callable[..., ProxyServer], backend: Any, stored: str) -> None:
    proxy = start_proxy(stored, presign_max_uses=1, entry={"presign_max_uses": 2})
    url = presign("GET", proxy.endpoint_url, stored, KEY)
    assert [get(url).status_code for _ in range(2)] == [200, 200]
    spent(get(url))
    # A reload (even one that changes the policies) keeps the in-process counts.
    config = proxy.config
    proxy.reload(ProxyServerConfig(config.cos_map, hmac_keystore=config.hmac_keystore, http_port=0,
                                   bind_address="127.0.0.1", admin_port=0, presign_max_uses=1,
                                   presign_limits_when_state_down="allow"))
    spent(get(url))


def test_presign_max_expires(start_proxy: Callable[..., ProxyServer], stored: str, new_bucket_name: Callable[..., str],
                             direct: Any, backend: Any) -> None:
    relaxed = new_bucket_name()
    direct.create_bucket(Bucket=relaxed)
    direct.put_object(Bucket=relaxed, Key=KEY, Body=BODY)
    proxy = start_proxy(stored, presign_max_expires=60,
                        cos_map={relaxed: backend.entry(presign_max_expires=0)})
    assert get(presign("GET", proxy.endpoint_url, stored, KEY, expires=60)).status_code == 200
    fields = assert_error(get(presign("GET", proxy.endpoint_url, stored, KEY, expires=3600)), 403, "AccessDenied",
                          "valid for 3600 seconds")
    assert "at most 60" in fields["Message"]
    # 0 on the bucket: S3's own 7 days.
    assert get(presign("GET", proxy.endpoint_url, relaxed, KEY, expires=604800)).status_code == 200
    assert scrape(proxy).value("osp_presigned_refused_total", reason="expires_too_long") == 1


# -- request rates -------------------------------------------------------------


def _burst(proxy: ProxyServer, bucket: str, count: int, access_key: str = CLIENT_ACCESS_KEY,
           secret_key: str = CLIENT_SECRET_KEY) -> List[requests.Response]:
    url = f"{proxy.endpoint_url}/{bucket}/{KEY}"
    return [send_signed("GET", url, access_key=access_key, secret_key=secret_key) for _ in range(count)]


def _slowdowns(responses: List[requests.Response]) -> int:
    for r in responses:
        if r.status_code == 503:
            assert_error(r, 503, "SlowDown")
            assert int(r.headers["Retry-After"]) >= 1, dict(r.headers)
        else:
            assert r.status_code == 200, (r.status_code, r.text[:300])
    return sum(r.status_code == 503 for r in responses)


def test_a_key_over_its_rate_gets_slowdown_and_overrides_apply(start_proxy: Callable[..., ProxyServer],
                                                              stored: str) -> None:
    proxy = start_proxy(stored, rate_limit={"requests_per_second": 0.5, "burst": 3},
                        rate_limits={OTHER_ACCESS_KEY: {"requests_per_second": 1000}})
    throttled = _slowdowns(_burst(proxy, stored, 8))
    assert throttled >= 4, throttled  # 3 at once, then one per 2 s
    assert _slowdowns(_burst(proxy, stored, 8, OTHER_ACCESS_KEY, OTHER_SECRET_KEY)) == 0
    metrics = scrape(proxy)
    # A key the configuration does not name is counted under one label.
    assert metrics.value("osp_throttled_requests_total", access_key="_other") == throttled
    assert metrics.label_values("osp_throttled_requests_total", "access_key") == ["_other"]


def test_a_throttled_key_is_not_unthrottled_by_case_or_a_session_token(start_proxy: Callable[..., ProxyServer],
                                                                       stored: str) -> None:
    proxy = start_proxy(stored, rate_limit={"requests_per_second": 0.2, "burst": 1})
    url = f"{proxy.endpoint_url}/{stored}/{KEY}"
    assert send_signed("GET", url).status_code == 200
    assert_error(send_signed("GET", url), 503, "SlowDown")
    # Another spelling of the key is another key, whose secret the proxy does not have.
    for key in (CLIENT_ACCESS_KEY.lower(), CLIENT_ACCESS_KEY.title()):
        response = send_signed("GET", url, access_key=key)
        assert response.status_code == 403, (key, response.status_code)
        assert parse_s3_error(response.content)["Code"] == "InvalidAccessKeyId"
    # A session token with a keystore key is refused; with none the key stays throttled.
    response = send_signed("GET", url, headers={"x-amz-security-token": "FQoGZXIvYXdzE"})
    assert response.status_code in (400, 403, 503) and response.status_code != 200, response.status_code
    assert_error(send_signed("GET", url), 503, "SlowDown")


def test_rate_limit_fetcher_gives_a_key_its_limit(start_proxy: Callable[..., ProxyServer], stored: str) -> None:
    asked: List[str] = []

    def rate_limit_fetcher(access_key: str) -> Optional[Dict[str, float]]:
        asked.append(access_key)
        return {"requests_per_second": 0.5, "burst": 2} if access_key == CLIENT_ACCESS_KEY else None

    proxy = start_proxy(stored, rate_limit_fetcher=rate_limit_fetcher)
    assert _slowdowns(_burst(proxy, stored, 5)) >= 2
    assert _slowdowns(_burst(proxy, stored, 5, OTHER_ACCESS_KEY, OTHER_SECRET_KEY)) == 0
    assert sorted(set(asked)) == sorted({CLIENT_ACCESS_KEY, OTHER_ACCESS_KEY})
    assert len(asked) == 2, asked  # cached like hmac_fetcher's answers


def test_a_bad_rate_limit_fetcher_answer_is_an_error_not_no_limit(start_proxy: Callable[..., ProxyServer],
                                                                  stored: str) -> None:
    proxy = start_proxy(stored, rate_limit_fetcher=lambda access_key: {"request_per_second": 1})
    response = _burst(proxy, stored, 1)[0]
    assert response.status_code == 500, (response.status_code, response.text[:300])


# -- bandwidth -----------------------------------------------------------------


def test_bandwidth_slows_an_upload_and_a_download(start_proxy: Callable[..., ProxyServer], bucket: str,
                                                  direct: Any) -> None:
    size, rate = 192 << 10, 128 << 10
    proxy = start_proxy(bucket, rate_limits={CLIENT_ACCESS_KEY: {"upload_bytes_per_second": rate,
                                                                   "download_bytes_per_second": rate}})
    body = bytes(range(256)) * (size // 256)
    url = f"{proxy.endpoint_url}/{bucket}/big"
    start = time.monotonic()
    assert send_signed("PUT", url, body=body).status_code == 200
    upload = time.monotonic() - start
    start = time.monotonic()
    response = send_signed("GET", url)
    download = time.monotonic() - start
    assert response.status_code == 200 and response.content == body
    # The first 64 KiB pass at once (the burst), the other 128 KiB take a second.
    assert 0.8 < upload < 5 and 0.8 < download < 5, (upload, download)
    start = time.monotonic()
    assert send_signed("GET", url, access_key=OTHER_ACCESS_KEY, secret_key=OTHER_SECRET_KEY).content == body
    assert time.monotonic() - start < 0.5  # another key is not slowed


# -- settings --------------------------------------------------------------------


def test_limit_settings_refuse_typos_and_never_show_the_redis_password(tmp_path: Path, backend: Any) -> None:
    entry = backend.entry()
    with pytest.raises(ValueError, match="did you mean 'requests_per_second'"):
        ProxyServerConfig({"b": entry}, http_port=0, rate_limit={"request_per_second": 1})
    with pytest.raises(ValueError, match="burst"):
        ProxyServerConfig({"b": entry}, http_port=0, rate_limits={"AK": {"burst": 3}})
    with pytest.raises(ValueError, match="presign_max_expires"):
        ProxyServerConfig({"b": dict(entry, presign_max_expires=604801)}, http_port=0)
    with pytest.raises(ValueError, match="'deny', 'allow'"):
        ProxyServerConfig({"b": entry}, http_port=0, presign_limits_when_state_down="open")
    with pytest.raises(ValueError) as refused:
        ProxyServerConfig({"b": entry}, http_port=0, state_url="http://:hunter2-secret@redis:6379/0")
    assert "hunter2" not in str(refused.value)
    config = ProxyServerConfig({"b": entry}, http_port=0, state_url="redis://:hunter2-secret@redis.internal:6379/0")
    assert "hunter2" not in repr(config) and "redis://redis.internal:6379/0" in repr(config)

    path = tmp_path / "osp.toml"
    path.write_text(
        '[server]\nhttp_port = 0\nstate_url = "rediss://:hunter2-secret@redis.internal:6380/1"\n'
        "presign_max_uses = 1\nrate_limit = { requests_per_second = 10, burst = 20 }\n"
        '[server.rate_limits]\nAKID1 = { requests_per_second = 100, download_bytes_per_second = 1048576 }\n'
        f'[buckets.b]\nhost = "127.0.0.1"\nport = {backend.port}\nscheme = "http"\n'
        'access_key = "a"\nsecret_key = "s"\npresign_max_uses = 3\npresign_max_expires = 3600\n'
    )
    config, errors = check_config(str(path))
    assert not errors and config is not None, errors
    assert config.rate_limits == {"AKID1": {"requests_per_second": 100, "download_bytes_per_second": 1048576}}
    assert config.cos_map["b"]["presign_max_uses"] == 3
    sent = json.loads(config.to_native_json())
    assert sent["rate_limit"] == {"requests_per_second": 10, "burst": 20}
    path.write_text(path.read_text().replace("presign_max_uses = 1", "presign_max_use = 1")
                    .replace("burst = 20", "brust = 20"))
    config, errors = check_config(str(path))
    assert config is None and len(errors) == 2, errors
    assert "did you mean 'presign_max_uses'" in errors[0] + errors[1]
    assert not any("hunter2" in e for e in errors)


def test_readyz_names_the_in_process_store(start_proxy: Callable[..., ProxyServer], bucket: str) -> None:
    proxy = start_proxy(bucket)
    readyz = admin(proxy, "/readyz")
    assert readyz.status_code == 200 and "limits state store memory: up" in readyz.text, readyz.text
    assert scrape(proxy).value("osp_limit_state_up", store="memory") == 1
