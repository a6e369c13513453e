"""Python callables that hang or answer the wrong type.

With ``callback_timeout=1`` a validator, bucket_creds_fetcher or hmac_fetcher
that sleeps past the timeout gets the client a 503 ServiceUnavailable (S3
XML) within about the timeout, a log line, and the server keeps serving
other buckets and tokens while the callable still hangs. A wrong return type
is a 500 InternalError with a log line naming the callable.
"""

from __future__ import annotations

import json
import re
import threading
import time
from typing import Any, Callable, Dict, List, Optional

import pytest
import requests

from helpers import (
    BACKEND_ACCESS_KEY,
    BACKEND_SECRET_KEY,
    CLIENT_ACCESS_KEY,
    CLIENT_SECRET_KEY,
    OTHER_ACCESS_KEY,
    OTHER_SECRET_KEY,
    CallLog,
    assert_s3_error,
    send_signed,
    stored_keys,
)

TIMEOUT = 1.0
HANG = 6.0  # longer than any test waits; released at the end of each test
GOOD_PAIR = json.dumps({"access_key": BACKEND_ACCESS_KEY, "secret_key": BACKEND_SECRET_KEY})
TIMEOUT_WORDS = re.compile(r"time[ds]?[ _-]?out|timed out|deadline|took longer|exceed", re.I)


@pytest.fixture
def release() -> Any:
    """Set at the end of the test: hanging callables return then."""
    event = threading.Event()
    yield event
    event.set()


class Background:
    """A request sent from a thread, timed."""

    def __init__(self, method: str, url: str, **options: Any) -> None:
        self.response: Optional[requests.Response] = None
        self.error: Optional[BaseException] = None
        self.elapsed = 0.0
        self._thread = threading.Thread(target=self._run, args=(method, url), kwargs=options, daemon=True)
        self._thread.start()

    def _run(self, method: str, url: str, **options: Any) -> None:
        started = time.monotonic()
        try:
            self.response = send_signed(method, url, **options)
        except BaseException as e:  # noqa: BLE001 - reported by result()
            self.error = e
        self.elapsed = time.monotonic() - started

    def result(self, timeout: float = 10) -> requests.Response:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"no answer within {timeout}s"
        assert self.error is None, self.error
        assert self.response is not None
        return self.response


def served_meanwhile(requests_to_make: List[Callable[[], requests.Response]], while_: List[Background]) -> None:
    """Makes each request while the background requests are still waiting,
    and checks each is answered 200 quickly."""
    time.sleep(0.2)  # the background requests are now in the hanging callable
    for make in requests_to_make:
        started = time.monotonic()
        r = make()
        elapsed = time.monotonic() - started
        assert r.status_code == 200, (r.status_code, r.content[:300])
        assert elapsed < 0.5, f"served in {elapsed:.2f}s while a callable hung"
    assert all(b.response is None and b.error is None for b in while_), \
        "the hanging requests were answered before the others were served: not a concurrent check"


def assert_timed_out(background: Background) -> None:
    r = background.result()
    assert_s3_error(r, 503, "ServiceUnavailable")
    assert TIMEOUT - 0.1 <= background.elapsed <= TIMEOUT + 1.0, f"answered after {background.elapsed:.2f}s"


def assert_timeout_logged(capfd: Any, name: str) -> None:
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if TIMEOUT_WORDS.search(line)]
    assert lines, f"no log line about the timeout; stderr was:\n{err[-2000:]}"
    assert any(name in line for line in lines), f"the timeout log lines do not name {name}: {lines}"


# --------------------------------------------------------------------------
# hanging callables


@pytest.mark.parametrize("identity", [False, True], ids=["2-args", "identity-args"])
def test_hanging_validator(start_proxy: Callable[..., Any], make_bucket: Callable[..., str], direct: Any,
                           release: threading.Event, capfd: Any, identity: bool) -> None:
    slow, fast = make_bucket("slow"), make_bucket("fast")
    log = CallLog()

    def hang_for_slow(token: str, bucket: str) -> bool:
        log.add(token, bucket)
        if bucket == slow:
            release.wait(HANG)
        return True

    def validator2(token: str, bucket: str) -> bool:
        return hang_for_slow(token, bucket)

    def validator5(token: str, bucket: str, method: str, key: str, operation: str) -> bool:
        return hang_for_slow(token, bucket)

    proxy = start_proxy(slow, fast, validator=validator5 if identity else validator2, callback_timeout=TIMEOUT)
    hanging = [Background("PUT", f"{proxy.endpoint_url}/{slow}/k{i}", body=b"x") for i in range(3)]
    served_meanwhile([
        lambda: send_signed("PUT", f"{proxy.endpoint_url}/{fast}/a", body=b"a"),
        lambda: send_signed("GET", f"{proxy.endpoint_url}/{fast}/a"),
        lambda: send_signed("PUT", f"{proxy.endpoint_url}/{fast}/b", body=b"b", access_key=OTHER_ACCESS_KEY,
                            secret_key=OTHER_SECRET_KEY),
    ], hanging)
    for background in hanging:
        assert_timed_out(background)
    assert stored_keys(direct, slow) == []
    assert stored_keys(direct, fast) == ["a", "b"]
    assert_timeout_logged(capfd, "validator")

    # still serving after the timeouts, and once the callable answers again
    assert send_signed("GET", f"{proxy.endpoint_url}/{fast}/b").status_code == 200
    release.set()
    r = send_signed("PUT", f"{proxy.endpoint_url}/{slow}/late", body=b"late")
    assert r.status_code == 200, (r.status_code, r.content[:300])
    assert stored_keys(direct, slow) == ["late"]


def test_hanging_creds_fetcher(start_proxy: Callable[..., Any], direct: Any, bucket: str,
                               release: threading.Event, capfd: Any) -> None:
    def fetcher(token: str, bucket_name: str) -> str:
        if token == OTHER_ACCESS_KEY:
            release.wait(HANG)
        return GOOD_PAIR

    proxy = start_proxy(bucket, entry={"creds": False}, bucket_creds_fetcher=fetcher, callback_timeout=TIMEOUT)
    hanging = [Background("PUT", f"{proxy.endpoint_url}/{bucket}/other", body=b"x",
                          access_key=OTHER_ACCESS_KEY, secret_key=OTHER_SECRET_KEY)]
    served_meanwhile([
        lambda: send_signed("PUT", f"{proxy.endpoint_url}/{bucket}/mine", body=b"m"),
        lambda: send_signed("GET", f"{proxy.endpoint_url}/{bucket}/mine"),
    ], hanging)
    assert_timed_out(hanging[0])
    assert stored_keys(direct, bucket) == ["mine"]
    assert_timeout_logged(capfd, "bucket_creds_fetcher")


def test_hanging_hmac_fetcher(start_proxy: Callable[..., Any], direct: Any, bucket: str,
                              release: threading.Event, capfd: Any) -> None:
    secrets: Dict[str, str] = {"AKIASLOW000000000000": "slow-secret-0123456789",
                               "AKIAFAST000000000000": "fast-secret-0123456789"}

    def hmac_fetcher(access_key: str) -> Optional[str]:
        if access_key == "AKIASLOW000000000000":
            release.wait(HANG)
        return secrets.get(access_key)

    proxy = start_proxy(bucket, hmac_keystore={CLIENT_ACCESS_KEY: CLIENT_SECRET_KEY}, hmac_fetcher=hmac_fetcher,
                        callback_timeout=TIMEOUT)
    hanging = [Background("PUT", f"{proxy.endpoint_url}/{bucket}/slow", body=b"x",
                          access_key="AKIASLOW000000000000", secret_key="slow-secret-0123456789")]
    served_meanwhile([
        lambda: send_signed("PUT", f"{proxy.endpoint_url}/{bucket}/fast", body=b"f",
                            access_key="AKIAFAST000000000000", secret_key="fast-secret-0123456789"),
        lambda: send_signed("PUT", f"{proxy.endpoint_url}/{bucket}/keystore", body=b"k"),
    ], hanging)
    assert_timed_out(hanging[0])
    assert stored_keys(direct, bucket) == ["fast", "keystore"]
    assert_timeout_logged(capfd, "hmac_fetcher")


def test_callable_within_timeout_is_fine(start_proxy: Callable[..., Any], direct: Any, bucket: str) -> None:
    def validator(token: str, bucket_name: str) -> bool:
        time.sleep(0.5)
        return True

    proxy = start_proxy(bucket, validator=validator, callback_timeout=TIMEOUT)
    r = send_signed("PUT", f"{proxy.endpoint_url}/{bucket}/k", body=b"x")
    assert r.status_code == 200, (r.status_code, r.content[:300])
    assert stored_keys(direct, bucket) == ["k"]


def test_default_timeout_is_ten_seconds() -> None:
    from object_storage_proxy import ProxyServerConfig

    entry = {"host": "127.0.0.1", "port": 9, "access_key": "a", "secret_key": "s"}
    config = ProxyServerConfig({"b": entry}, http_port=0)
    assert getattr(config, "callback_timeout", None) == 10.0
    assert getattr(config, "cache_size", None) == 16384
    for bad in (-1, -0.5):
        with pytest.raises((TypeError, ValueError)):
            ProxyServerConfig({"b": entry}, http_port=0, callback_timeout=bad)


# --------------------------------------------------------------------------
# wrong return types: 500, logged with the callable's name


@pytest.mark.parametrize("answer", ["yes", 1, None], ids=["str", "int", "None"])
def test_identity_validator_wrong_type(start_proxy: Callable[..., Any], direct: Any, bucket: str,
                                       capfd: Any, answer: Any) -> None:
    def validator(token: str, bucket_name: str, method: str, key: str, operation: str) -> Any:
        return answer if key == "bad" else True

    proxy = start_proxy(bucket, validator=validator)
    r = send_signed("PUT", f"{proxy.endpoint_url}/{bucket}/bad", body=b"x")
    assert_s3_error(r, 500, "InternalError")
    assert stored_keys(direct, bucket) == []
    err = capfd.readouterr().err
    assert "validator" in err, f"no log line naming the validator: {err[-1500:]}"
    # the same server goes on
    r = send_signed("PUT", f"{proxy.endpoint_url}/{bucket}/good", body=b"x")
    assert r.status_code == 200, (r.status_code, r.content[:300])
    assert stored_keys(direct, bucket) == ["good"]


@pytest.mark.parametrize("answer", [42, b"bytes", ["a"]], ids=["int", "bytes", "list"])
def test_identity_creds_fetcher_wrong_type(start_proxy: Callable[..., Any], direct: Any, bucket: str,
                                           capfd: Any, answer: Any) -> None:
    def fetcher(token: str, bucket_name: str, method: str, key: str, operation: str) -> Any:
        return answer if key == "bad" else GOOD_PAIR

    proxy = start_proxy(bucket, entry={"creds": False}, bucket_creds_fetcher=fetcher)
    r = send_signed("PUT", f"{proxy.endpoint_url}/{bucket}/bad", body=b"x")
    assert_s3_error(r, 500, "InternalError")
    assert stored_keys(direct, bucket) == []
    err = capfd.readouterr().err
    assert "bucket_creds_fetcher" in err, f"no log line naming the bucket_creds_fetcher: {err[-1500:]}"
    r = send_signed("PUT", f"{proxy.endpoint_url}/{bucket}/good", body=b"x")
    assert r.status_code == 200, (r.status_code, r.content[:300])
    assert stored_keys(direct, bucket) == ["good"]
