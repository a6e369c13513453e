"""The IAM token service down or hanging under concurrency (see
faultclient.py for the suite).
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable

import pytest

from bearer_front import BearerFront
from faultclient import call, concurrently, ok
from helpers import assert_s3_error
from iam_server import IamServer
from leakguard import LeakGuard
from observe import scrape

KEY_WARM = "apikey-warm-" + os.urandom(8).hex()
KEY_FAULT = "apikey-fault-" + os.urandom(8).hex()


# The API keys conftest's ``iam`` knows.
IAM_API_KEYS = {KEY_WARM, KEY_FAULT}


def _bearer_proxy(start_proxy: Callable[..., Any], iam: IamServer, front: BearerFront, warm: str,
                  faulty: str) -> Any:
    """A proxy with two buckets behind the bearer front, with different API
    keys: ``warm`` (its token fetched before the fault) and ``faulty``."""
    entry = {"host": "127.0.0.1", "port": front.port, "scheme": "http", "addressing_style": "path"}
    return start_proxy(cos_map={warm: {**entry, "apikey": KEY_WARM}, faulty: {**entry, "apikey": KEY_FAULT}},
                       iam_url=iam.url)


@pytest.mark.parametrize("mode", ["refused", "reset", "500"])
def test_iam_down_under_concurrency(start_proxy: Callable[..., Any], iam: IamServer, front: BearerFront,
                                    make_bucket: Callable[..., str], direct: Any, leaks: LeakGuard,
                                    mode: str) -> None:
    """16 concurrent first requests to a bucket whose token cannot be had
    (IAM refusing connections, resetting them, or answering 500): each gets
    503 ServiceUnavailable within the ~3 s retry budget, IAM is asked by one
    retry loop for all of them (not 16), nothing reaches the backend; IAM
    back, the next request succeeds at once; no leak."""
    warm, faulty = make_bucket("iam-warm"), make_bucket("iam-fault")
    direct.put_object(Bucket=faulty, Key="k", Body=b"still here")
    proxy = _bearer_proxy(start_proxy, iam, front, warm, faulty)
    ok(call(proxy, "GET", f"/{warm}?list-type=2"))
    leaks.baseline(proxy)

    if mode == "refused":
        iam.stop()
    else:
        iam.fail = mode
    iam.reset_calls()
    results = concurrently(16, lambda i: (time.monotonic(), call(proxy, "GET", f"/{faulty}/k")))
    done = time.monotonic()
    for r in results:
        assert not isinstance(r, BaseException), r
        assert_s3_error(r[1], 503, "ServiceUnavailable")
    assert done - min(r[0] for r in results if not isinstance(r, BaseException)) < 6.0
    if mode != "refused":
        assert 1 <= len(iam.calls) <= 40, f"{len(iam.calls)} IAM calls for 16 waiting requests"
    assert front.seen_for(faulty) == []

    if mode == "refused":
        iam.start()
    else:
        iam.fail = None
    started = time.monotonic()
    assert ok(call(proxy, "GET", f"/{faulty}/k")).content == b"still here"
    assert time.monotonic() - started < 2.0, "recovery waited for an old backoff"
    leaks.check()


def test_hanging_iam_under_concurrency(start_proxy: Callable[..., Any], iam: IamServer, front: BearerFront,
                                       make_bucket: Callable[..., str], direct: Any, leaks: LeakGuard) -> None:
    """IAM accepts the token request and answers only after 4 s, beyond the
    proxy's ~3 s budget: 8 concurrent requests get 503 ServiceUnavailable in
    bounded time, sharing one IAM call; the proxy drops that call (nothing
    left once IAM's late answer is gone), and recovers when IAM is fast."""
    warm, faulty = make_bucket("iam-warm"), make_bucket("iam-hang")
    direct.put_object(Bucket=faulty, Key="k", Body=b"v")
    proxy = _bearer_proxy(start_proxy, iam, front, warm, faulty)
    ok(call(proxy, "GET", f"/{warm}?list-type=2"))
    leaks.baseline(proxy)

    fetches = scrape(proxy).value("osp_iam_token_fetches_total")
    iam.delay = 4.0
    started = time.monotonic()
    results = concurrently(8, lambda i: call(proxy, "GET", f"/{faulty}/k"))
    elapsed = time.monotonic() - started
    for r in results:
        assert not isinstance(r, BaseException), r
        assert_s3_error(r, 503, "ServiceUnavailable")
    assert elapsed < 6.0, f"the clients waited {elapsed:.2f}s for a hanging IAM"
    iam.delay = 0.0
    time.sleep(max(0.0, 4.2 - (time.monotonic() - started)))  # IAM's late answers are out
    # (IamServer records no call whose client left before its answer: the
    # proxy's own count of IAM requests tells)
    calls = scrape(proxy).value("osp_iam_token_fetches_total") - fetches
    assert calls == 1, f"{calls} IAM token requests for 8 waiting requests"
    assert front.seen_for(faulty) == []
    leaks.check()
    assert ok(call(proxy, "GET", f"/{faulty}/k")).content == b"v"
