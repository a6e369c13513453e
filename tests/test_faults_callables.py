"""Python callables slow, failing or concurrent (see faultclient.py for the
suite): they run in parallel, each request gets its own outcome, and
nothing of a call that hangs past callback_timeout is left behind.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Callable, List, Tuple

import pytest

from faultclient import call, concurrently, ok
from helpers import BACKEND_ACCESS_KEY, BACKEND_SECRET_KEY, assert_s3_error, parse_s3_error, stored_keys
from leakguard import LeakGuard

GOOD_PAIR = {"access_key": BACKEND_ACCESS_KEY, "secret_key": BACKEND_SECRET_KEY}


class InFlight:
    """Counts a callable's calls and the most that ran at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 0
        self.peak = 0
        self.calls: List[str] = []

    def __enter__(self) -> None:
        with self._lock:
            self.now += 1
            self.peak = max(self.peak, self.now)

    def __exit__(self, *exc: Any) -> None:
        with self._lock:
            self.now -= 1

    def add(self, key: str) -> None:
        with self._lock:
            self.calls.append(key)

    def reset(self) -> None:
        with self._lock:
            self.peak, self.calls = self.now, []


@pytest.mark.parametrize("kind", ["validator", "bucket_creds_fetcher"])
def test_slow_callable_serves_concurrent_requests_in_parallel(start_proxy: Callable[..., Any], bucket: str,
                                                              direct: Any, leaks: LeakGuard, kind: str) -> None:
    """32 concurrent PUTs each needing a 0.2 s callable (ttl 0: asked every
    time) all succeed, and together take well under the 6.4 s one-at-a-time
    would: the callables run in parallel (the GIL is released while they
    sleep), the proxy does not queue requests behind one another."""
    flight = InFlight()

    def slow(token: str, bucket_name: str, method: str, key: str, operation: str) -> Any:
        flight.add(key)
        with flight:
            time.sleep(0.2)
        return True if kind == "validator" else dict(GOOD_PAIR)

    if kind == "validator":
        proxy = start_proxy(bucket, entry={"ttl": 0}, validator=slow, callback_timeout=5)
    else:
        proxy = start_proxy(bucket, entry={"creds": False, "ttl": 0}, bucket_creds_fetcher=slow, callback_timeout=5)
    ok(call(proxy, "PUT", f"/{bucket}/warm", body=b"w"))
    leaks.baseline(proxy)
    flight.reset()

    n = 32
    started = time.monotonic()
    results = concurrently(n, lambda i: call(proxy, "PUT", f"/{bucket}/c{i:02d}", body=f"body {i}".encode()))
    elapsed = time.monotonic() - started
    bad = [(i, r if isinstance(r, BaseException) else (r.status_code, r.content[:200]))
           for i, r in enumerate(results) if isinstance(r, BaseException) or r.status_code != 200]
    assert bad == [], bad
    assert sorted(flight.calls) == [f"c{i:02d}" for i in range(n)]
    assert flight.peak >= 8, f"at most {flight.peak} {kind} calls ran at once"
    assert elapsed < 4.0, f"{n} requests with a 0.2 s {kind} took {elapsed:.2f}s (6.4 s one at a time)"
    leaks.check()
    assert sorted(stored_keys(direct, bucket)) == sorted(["warm"] + [f"c{i:02d}" for i in range(n)])


OUTCOMES = {"ok": (200, ""), "deny": (403, "AccessDenied"), "raise": (500, "InternalError"),
            "type": (500, "InternalError"), "exit": (500, "InternalError"), "interrupt": (500, "InternalError")}


def test_failing_validator_under_concurrency(start_proxy: Callable[..., Any], bucket: str, direct: Any,
                                             leaks: LeakGuard) -> None:
    """36 concurrent requests whose validator answers True, False, raises
    RuntimeError, returns a str, raises SystemExit or KeyboardInterrupt
    (BaseExceptions: they must neither unwind into Go nor stop pytest):
    each request gets its own outcome (200 / 403 AccessDenied / 500
    InternalError), never another's, only the allowed ones are stored, and
    the proxy keeps serving."""

    def validator(token: str, bucket_name: str, method: str, key: str, operation: str) -> Any:
        time.sleep(0.05)
        kind = key.split("-", 1)[0]
        if kind == "raise":
            raise RuntimeError("validator failed (test)")
        if kind == "exit":
            raise SystemExit(3)
        if kind == "interrupt":
            raise KeyboardInterrupt
        if kind == "type":
            return "yes"
        return kind != "deny"

    # 36 validator calls at once: above max_callable_calls' default (32),
    # whose excess would get SlowDown (test_control_plane.py tests that).
    proxy = start_proxy(bucket, entry={"ttl": 0}, validator=validator, max_callable_calls=64)
    ok(call(proxy, "PUT", f"/{bucket}/ok-warm", body=b"w"))
    leaks.baseline(proxy)

    kinds = list(OUTCOMES) * 6
    results = concurrently(len(kinds), lambda i: call(proxy, "PUT", f"/{bucket}/{kinds[i]}-{i:02d}", body=b"x"))
    wrong: List[Tuple[Any, ...]] = []
    for i, (kind, r) in enumerate(zip(kinds, results)):
        status, code = OUTCOMES[kind]
        if isinstance(r, BaseException):
            wrong.append((i, kind, repr(r)))
        elif r.status_code != status or (code and parse_s3_error(r.content)["Code"] != code):
            wrong.append((i, kind, r.status_code, r.content[:200]))
    assert wrong == [], wrong
    leaks.check()
    assert sorted(stored_keys(direct, bucket)) == sorted(
        ["ok-warm"] + [f"{k}-{i:02d}" for i, k in enumerate(kinds) if k == "ok"])
    ok(call(proxy, "PUT", f"/{bucket}/ok-after", body=b"a"))


@pytest.mark.parametrize("answer", [json.dumps({**GOOD_PAIR, "padding": "p" * 100_000}), "x" * 200_000, "\ud800"],
                         ids=["oversized-json", "oversized-str", "lone-surrogate"])
def test_creds_fetcher_unusable_answer(start_proxy: Callable[..., Any], bucket: str, direct: Any,
                                       leaks: LeakGuard, answer: str) -> None:
    """A bucket_creds_fetcher answer too long for the proxy's buffer, or a str
    that is not valid Unicode: 500 InternalError in S3 XML, nothing sent to
    the backend, and the next (good) answer works."""

    def fetcher(token: str, bucket_name: str, method: str, key: str, operation: str) -> Any:
        return answer if key == "bad" else dict(GOOD_PAIR)

    proxy = start_proxy(bucket, entry={"creds": False, "ttl": 0}, bucket_creds_fetcher=fetcher)
    ok(call(proxy, "PUT", f"/{bucket}/warm", body=b"w"))
    leaks.baseline(proxy)
    assert_s3_error(call(proxy, "PUT", f"/{bucket}/bad", body=b"x"), 500, "InternalError")
    leaks.check()
    assert stored_keys(direct, bucket) == ["warm"]
    ok(call(proxy, "PUT", f"/{bucket}/good", body=b"g"))


def test_hanging_validator_goroutines_end_when_it_returns(start_proxy: Callable[..., Any], bucket: str,
                                                          leaks: LeakGuard) -> None:
    """8 concurrent requests whose validator hangs past callback_timeout get
    503 ServiceUnavailable in about the timeout; the proxy stops waiting, and
    once the callables finally return nothing of those calls is left behind
    (goroutines and descriptors back to baseline)."""
    release = threading.Event()

    def validator(token: str, bucket_name: str, method: str, key: str, operation: str) -> bool:
        if key.startswith("hang"):
            release.wait(8)
        return True

    proxy = start_proxy(bucket, entry={"ttl": 0}, validator=validator, callback_timeout=0.5)
    ok(call(proxy, "PUT", f"/{bucket}/warm", body=b"w"))
    leaks.baseline(proxy)
    try:
        started = time.monotonic()
        results = concurrently(8, lambda i: call(proxy, "GET", f"/{bucket}/hang-{i}"))
        elapsed = time.monotonic() - started
        for r in results:
            assert not isinstance(r, BaseException), r
            assert_s3_error(r, 503, "ServiceUnavailable")
        assert elapsed < 3.0, f"answered after {elapsed:.2f}s with callback_timeout=0.5"
        ok(call(proxy, "GET", f"/{bucket}/warm"))  # served while 8 calls still hang
    finally:
        release.set()
    leaks.check()
