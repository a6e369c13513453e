"""The limits across a fleet: two proxy instances behind haproxy (round
robin) sharing their counts in a real redis-server (tests/redis_server.py:
AOF with appendfsync always, as docs/limits.md recommends), in front of
versitygw.

- a 1-use presigned URL is served exactly once under 50 concurrent attempts
  spread over both instances;
- a 10 requests/s key limit holds within 10% across both instances;
- with Redis stopped the documented policies hold (a use-limited presigned
  URL: 503 ServiceUnavailable, not "spent"; a rate-limited key: served),
  /readyz stays 200 and says the store is down, the gauge says 0, and the
  going down and coming back are each logged once;
- a Redis restart loses no count it acknowledged (a spent URL stays spent)
  and both proxies recover on their own.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, List, Tuple

import pytest
import requests

from helpers import OTHER_ACCESS_KEY, OTHER_SECRET_KEY, parse_s3_error, presign, send_signed, sign_request
from object_storage_proxy import ProxyServer
from observe import Haproxy, Stderr, admin, eventually, log_records, scrape
from redis_server import RedisServer, run_redis

TIMEOUT = 20
KEY = "fleet.txt"
BODY = b"served by a fleet\n"
RATE = 10.0
BURST = 10  # a second of slack: a hammer thread starved on a loaded machine loses no slot


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    with run_redis() as server:
        yield server


@pytest.fixture
def fleet(start_proxy: Callable[..., ProxyServer], redis: RedisServer, bucket: str, direct: Any,
          tmp_path: Path) -> Iterator[Tuple[Haproxy, List[ProxyServer]]]:
    """Two proxies on one Redis behind haproxy; CLIENT's presigned URLs may
    be used once, OTHER makes 10 requests a second (burst 10)."""
    direct.put_object(Bucket=bucket, Key=KEY, Body=BODY)
    proxies = [start_proxy(bucket, state_url=redis.url, presign_max_uses=1, log_format="json",
                           rate_limits={OTHER_ACCESS_KEY: {"requests_per_second": RATE, "burst": BURST}})
               for _ in range(2)]
    balancer = Haproxy(tmp_path, [p.http_port for p in proxies]).start()
    try:
        yield balancer, proxies
    finally:
        balancer.stop()


def get(url: str) -> requests.Response:
    return requests.get(url, timeout=TIMEOUT, allow_redirects=False)


def error_of(response: requests.Response) -> Tuple[int, str, str]:
    fields = parse_s3_error(response.content) if response.content else {}
    return response.status_code, fields.get("Code", ""), fields.get("Message", "")


def test_a_one_use_url_is_served_once_across_the_fleet(fleet: Tuple[Haproxy, List[ProxyServer]], bucket: str) -> None:
    balancer, proxies = fleet
    url = presign("GET", balancer.url, bucket, KEY)
    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        responses = list(pool.map(lambda _: get(url), range(50)))
    served = [r for r in responses if r.status_code == 200]
    assert len(served) == 1 and served[0].content == BODY, sorted(r.status_code for r in responses)
    for r in responses:
        if r.status_code != 200:
            status, code, message = error_of(r)
            assert (status, code) == (403, "AccessDenied") and "uses are spent" in message, (status, code, message)
    # Both instances took part.
    refused = [scrape(p).value("osp_presigned_refused_total", reason="uses_spent") for p in proxies]
    assert sum(refused) == 49 and min(refused) > 0, refused


def test_a_key_rate_holds_within_ten_percent_across_the_fleet(fleet: Tuple[Haproxy, List[ProxyServer]],
                                                               bucket: str) -> None:
    balancer, proxies = fleet
    url = f"{balancer.url}/{bucket}/{KEY}"
    allowed: List[float] = []
    attempts = [0]
    lock = threading.Lock()
    duration = 3.0
    start = time.monotonic()

    def hammer() -> None:
        with requests.Session() as session:
            while time.monotonic() - start < duration:
                headers = sign_request("GET", url, access_key=OTHER_ACCESS_KEY, secret_key=OTHER_SECRET_KEY)
                r = session.get(url, headers=headers, timeout=TIMEOUT)
                assert r.status_code in (200, 503), (r.status_code, r.text[:300])
                with lock:
                    attempts[0] += 1
                    if r.status_code == 200:
                        allowed.append(time.monotonic())

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        for future in [pool.submit(hammer) for _ in range(6)]:
            future.result()
    elapsed = time.monotonic() - start
    # The burst at once, then RATE a second, from the first request served to the last.
    allowed.sort()
    rate = (len(allowed) - BURST) / (allowed[-1] - allowed[0])
    print(f"fleet rate: {len(allowed)} of {attempts[0]} served in {elapsed:.2f} s: {rate:.2f}/s after the burst")
    assert abs(rate - RATE) <= 0.1 * RATE, (len(allowed), elapsed, rate)
    throttled = [scrape(p).value("osp_throttled_requests_total", access_key=OTHER_ACCESS_KEY) for p in proxies]
    assert min(throttled) > 0, throttled  # both instances refused some: the limit is the fleet's


def test_redis_down_then_restarted(fleet: Tuple[Haproxy, List[ProxyServer]], bucket: str, redis: RedisServer,
                                   capfd: Any) -> None:
    balancer, proxies = fleet
    stderr = Stderr(capfd)
    spent_url = presign("GET", balancer.url, bucket, KEY)
    assert get(spent_url).status_code == 200

    redis.stop()
    # A use-limited presigned URL fails closed, as a temporary failure, on every instance.
    fresh = presign("GET", balancer.url, bucket, KEY, expires=301)
    for _ in range(4):
        status, code, message = error_of(get(fresh))
        assert (status, code) == (503, "ServiceUnavailable") and "spent" not in message, (status, code, message)
    # A rate-limited key fails open: served.
    url = f"{balancer.url}/{bucket}/{KEY}"
    assert [send_signed("GET", url, access_key=OTHER_ACCESS_KEY, secret_key=OTHER_SECRET_KEY).status_code
            for _ in range(4)] == [200] * 4
    for proxy in proxies:
        readyz = admin(proxy, "/readyz")
        assert readyz.status_code == 200 and ": down since" in readyz.text, readyz.text
        assert "presigned use limits deny, rate limits allow" in readyz.text, readyz.text
        assert "127.0.0.1" in readyz.text
        eventually(lambda proxy=proxy: scrape(proxy).value("osp_limit_state_up", store=redis.url) == 0 or None)
    assert sum(scrape(p).value("osp_limit_fallbacks_total", limit="presigned_uses", policy="fail_closed")
               for p in proxies) == 4

    redis.start()  # the same AOF

    def recovered() -> None:
        for proxy in proxies:
            assert "limits state store redis://" in admin(proxy, "/readyz").text
            assert ": up" in admin(proxy, "/readyz").text
            assert scrape(proxy).value("osp_limit_state_up", store=redis.url) == 1

    eventually(recovered, timeout=10)
    # Nothing acknowledged was lost: the spent URL stays spent; the fresh one, never served, works once.
    status, code, message = error_of(get(spent_url))
    assert (status, code) == (403, "AccessDenied") and "uses are spent" in message, (status, code, message)
    assert get(fresh).status_code == 200
    assert error_of(get(fresh))[0] == 403

    # Each instance logged the store's going down and its coming back once each.
    records = log_records(stderr.read())
    down = [r for r in records if "does not answer" in str(r.get("msg"))]
    up = [r for r in records if "answers again" in str(r.get("msg"))]
    assert len(down) == 2 and len(up) == 2, [r.get("msg") for r in records if "state store" in str(r.get("msg"))]
    assert all("hunter" not in str(r) for r in records)


def test_the_redis_password_comes_from_the_environment_and_is_never_shown(
        start_proxy: Callable[..., ProxyServer], bucket: str, direct: Any, monkeypatch: pytest.MonkeyPatch,
        capfd: Any) -> None:
    password = "hunter2-redis-password"
    direct.put_object(Bucket=bucket, Key=KEY, Body=BODY)
    with run_redis(password) as redis:
        monkeypatch.setenv("OSP_STATE_PASSWORD", password)
        proxy = start_proxy(bucket, state_url=redis.url, presign_max_uses=1, log_level="debug")
        url = presign("GET", proxy.endpoint_url, bucket, KEY)
        assert get(url).status_code == 200  # Redis answered: the password was right
        assert error_of(get(url))[:2] == (403, "AccessDenied")
        shown = [repr(proxy.config), admin(proxy, "/readyz").text, scrape(proxy).text]
        redis.stop()
        assert error_of(get(url))[:2] == (503, "ServiceUnavailable")
        shown.append(Stderr(capfd).read())
    assert all(password not in text for text in shown)
    assert "redis://127.0.0.1:" in shown[1]
