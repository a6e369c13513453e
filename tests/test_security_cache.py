"""Security property 4 (see security_requests.py for the others): cached
authorization decisions never outlive their TTL and never serve another
token, bucket, operation or key.
"""

from __future__ import annotations

import secrets
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest
from botocore.exceptions import ClientError

from helpers import (
    BACKEND_ACCESS_KEY,
    BACKEND_SECRET_KEY,
    CLIENT_ACCESS_KEY,
    CLIENT_SECRET_KEY,
    OTHER_ACCESS_KEY,
    OTHER_SECRET_KEY,
    CallLog,
    assert_client_error,
    stored_body,
    stored_keys,
)


class CountingValidator:
    """validator(token, bucket): the policy decides (changeable), every call
    is counted, and calls may be slowed down."""

    def __init__(self, policy: Callable[[str, str], bool], delay: float = 0.0) -> None:
        self.policy = policy
        self.delay = delay
        self.log = CallLog()

    def __call__(self, token: str, bucket: str) -> bool:
        self.log.add(token, bucket)
        if self.delay:
            time.sleep(self.delay)
        return self.policy(token, bucket)

    def count(self, token: str, bucket: str) -> int:
        return self.log.calls.count((token, bucket))


def test_cached_allow_of_one_key_never_serves_another(start_proxy: Callable[..., Any],
                                                       client_for: Callable[..., Any], direct: Any,
                                                       bucket: str) -> None:
    validator = CountingValidator(lambda token, b: token == CLIENT_ACCESS_KEY)
    proxy = start_proxy(bucket, entry={"ttl": 300}, validator=validator)
    a, b = client_for(proxy), client_for(proxy, OTHER_ACCESS_KEY, OTHER_SECRET_KEY)

    a.put_object(Bucket=bucket, Key="a-0", Body=b"a")  # A's allow is cached now
    for i in range(1, 6):
        for call in (lambda: b.put_object(Bucket=bucket, Key=f"b-{i}", Body=b"b"),
                     lambda: b.get_object(Bucket=bucket, Key="a-0"),
                     lambda: b.list_objects_v2(Bucket=bucket),
                     lambda: b.delete_object(Bucket=bucket, Key="a-0")):
            with pytest.raises(ClientError) as exc:
                call()
            assert_client_error(exc, 403, "AccessDenied", b)
        a.put_object(Bucket=bucket, Key=f"a-{i}", Body=b"a")  # B's cached denial does not hit A
        assert a.get_object(Bucket=bucket, Key="a-0")["Body"].read() == b"a"

    assert stored_keys(direct, bucket) == [f"a-{i}" for i in range(6)]
    # Each answer was asked once and cached under its own token.
    assert validator.count(CLIENT_ACCESS_KEY, bucket) == 1
    assert validator.count(OTHER_ACCESS_KEY, bucket) == 1
    assert len(validator.log) == 2


def test_concurrent_first_requests_of_two_keys_get_their_own_answers(
        start_proxy: Callable[..., Any], client_for: Callable[..., Any], direct: Any, bucket: str) -> None:
    """Misses are collapsed per (token, bucket) only: B's first request,
    arriving while A's validator call is running, gets B's own answer."""
    validator = CountingValidator(lambda token, b: token == CLIENT_ACCESS_KEY, delay=0.4)
    proxy = start_proxy(bucket, validator=validator)
    results: Dict[str, List[Any]] = {"a": [], "b": []}
    lock = threading.Lock()

    def run(name: str, access_key: str, secret_key: str, key: str) -> None:
        client = client_for(proxy, access_key, secret_key)
        try:
            client.put_object(Bucket=bucket, Key=key, Body=b"x")
            outcome: Any = 200
        except ClientError as e:
            outcome = (e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"])
        with lock:
            results[name].append(outcome)

    threads = [threading.Thread(target=run, args=("a", CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY, f"a-{i}"))
               for i in range(3)]
    threads += [threading.Thread(target=run, args=("b", OTHER_ACCESS_KEY, OTHER_SECRET_KEY, f"b-{i}"))
                for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert results == {"a": [200] * 3, "b": [(403, "AccessDenied")] * 3}, results
    assert sorted(stored_keys(direct, bucket)) == ["a-0", "a-1", "a-2"]
    assert validator.count(CLIENT_ACCESS_KEY, bucket) == 1 and validator.count(OTHER_ACCESS_KEY, bucket) == 1


def test_cache_keys_do_not_collide_when_names_concatenate_alike(
        start_proxy: Callable[..., Any], client_for: Callable[..., Any], direct: Any,
        new_bucket_name: Callable[..., str]) -> None:
    """token + bucket of one pair spells token + bucket of another:
    ("KEYAB", "c<rest>") and ("KEYABc", "<rest>")."""
    rest = new_bucket_name("x")
    b1, b2 = "c" + rest, rest
    for name in (b1, b2):
        direct.create_bucket(Bucket=name)
    k1, k2 = "COLLIDEKEYAB", "COLLIDEKEYABc"
    assert k1 + b1 == k2 + b2
    keystore = {k1: "secret-one-" + secrets.token_hex(8), k2: "secret-two-" + secrets.token_hex(8)}
    validator = CountingValidator(lambda token, b: (token, b) == (k1, b1), delay=0.3)
    proxy = start_proxy(b1, b2, validator=validator, hmac_keystore=keystore)
    one, two = client_for(proxy, k1, keystore[k1]), client_for(proxy, k2, keystore[k2])
    outcomes: Dict[str, Any] = {}

    def put(name: str, client: Any, target: str) -> None:
        try:
            client.put_object(Bucket=target, Key="k", Body=b"x")
            outcomes[name] = 200
        except ClientError as e:
            outcomes[name] = e.response["Error"]["Code"]

    threads = [threading.Thread(target=put, args=("one", one, b1)), threading.Thread(target=put, args=("two", two, b2))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    put("two-again", two, b2)
    assert outcomes == {"one": 200, "two": "AccessDenied", "two-again": "AccessDenied"}, outcomes
    assert stored_keys(direct, b2) == [] and stored_keys(direct, b1) == ["k"]
    assert validator.count(k1, b1) == 1 and validator.count(k2, b2) == 1


def test_identity_decisions_are_keyed_by_operation_and_key(
        start_proxy: Callable[..., Any], client_for: Callable[..., Any], direct: Any, bucket: str) -> None:
    direct.put_object(Bucket=bucket, Key="readable", Body=b"r")
    direct.put_object(Bucket=bucket, Key="other", Body=b"o")
    log = CallLog()

    def validator(token: str, bucket: str, method: str, key: str, operation: str) -> bool:
        log.add(token, bucket, method, key, operation)
        return token == CLIENT_ACCESS_KEY and operation == "GetObject" and key == "readable"

    proxy = start_proxy(bucket, entry={"ttl": 300}, validator=validator)
    a, b = client_for(proxy), client_for(proxy, OTHER_ACCESS_KEY, OTHER_SECRET_KEY)
    for _ in range(2):
        assert a.get_object(Bucket=bucket, Key="readable")["Body"].read() == b"r"
        for call, client in ((lambda: a.put_object(Bucket=bucket, Key="readable", Body=b"overwritten"), a),
                             (lambda: a.delete_object(Bucket=bucket, Key="readable"), a),
                             (lambda: a.get_object(Bucket=bucket, Key="other"), a),
                             (lambda: b.get_object(Bucket=bucket, Key="readable"), b)):
            with pytest.raises(ClientError) as exc:
                call()
            assert_client_error(exc, 403, "AccessDenied", client)
    assert stored_body(direct, bucket, "readable") == b"r"
    counts: Dict[Tuple[str, ...], int] = {}
    for c in log.calls:
        counts[c] = counts.get(c, 0) + 1
    assert all(n == 1 for n in counts.values()), counts
    assert len(counts) == 5, counts


def test_decision_is_asked_again_once_its_ttl_is_over(start_proxy: Callable[..., Any],
                                                      client_for: Callable[..., Any], direct: Any, backend: Any,
                                                      make_bucket: Callable[..., str]) -> None:
    """An allow cached for ttl=1 s: once the validator says no, the proxy
    refuses within the TTL (plus a little), and asks again to do so; a
    bucket with ttl=300 keeps its answer meanwhile. A denial expires alike."""
    short, long_ = make_bucket("ttl-short"), make_bucket("ttl-long")
    allowed = {(CLIENT_ACCESS_KEY, short): True, (CLIENT_ACCESS_KEY, long_): True, (OTHER_ACCESS_KEY, short): False}
    validator = CountingValidator(lambda token, b: allowed.get((token, b), False))
    proxy = start_proxy(short, validator=validator, entry={"ttl": 1}, cos_map={long_: backend.entry(ttl=300)})
    a, b = client_for(proxy), client_for(proxy, OTHER_ACCESS_KEY, OTHER_SECRET_KEY)

    cached_at = time.monotonic()
    a.put_object(Bucket=short, Key="before", Body=b"x")
    a.put_object(Bucket=long_, Key="before", Body=b"x")
    with pytest.raises(ClientError) as exc:
        b.put_object(Bucket=short, Key="b-before", Body=b"x")
    assert_client_error(exc, 403, "AccessDenied", b)
    allowed.update({(CLIENT_ACCESS_KEY, short): False, (CLIENT_ACCESS_KEY, long_): False,
                    (OTHER_ACCESS_KEY, short): True})

    refused_at = None
    deadline = cached_at + 5
    while time.monotonic() < deadline:
        try:
            a.head_bucket(Bucket=short)
        except ClientError as e:
            assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 403, e.response
            refused_at = time.monotonic()
            break
        time.sleep(0.05)
    assert refused_at is not None, "the cached allow outlived its 1 s TTL by more than 4 s"
    assert refused_at - cached_at <= 1.0 + 0.5, f"refused only {refused_at - cached_at:.2f}s after caching (ttl 1s)"
    with pytest.raises(ClientError) as exc:
        a.put_object(Bucket=short, Key="after", Body=b"x")
    assert_client_error(exc, 403, "AccessDenied", a)
    assert validator.count(CLIENT_ACCESS_KEY, short) == 2  # asked again, once, after the TTL

    # The denial of B (cached just after A's allow) expired the same way:
    # B is allowed now.
    time.sleep(max(0.0, cached_at + 1.6 - time.monotonic()))
    b.put_object(Bucket=short, Key="b-after", Body=b"x")
    assert validator.count(OTHER_ACCESS_KEY, short) == 2
    # The ttl=300 bucket still has A's allow: one call only.
    a.put_object(Bucket=long_, Key="after", Body=b"x")
    assert validator.count(CLIENT_ACCESS_KEY, long_) == 1
    assert sorted(stored_keys(direct, short)) == ["b-after", "before"]


def test_creds_fetcher_answer_is_asked_again_once_its_ttl_is_over(
        start_proxy: Callable[..., Any], client_for: Callable[..., Any], direct: Any, backend: Any,
        bucket: str) -> None:
    answers: Dict[str, Optional[Dict[str, str]]] = {
        CLIENT_ACCESS_KEY: {"access_key": BACKEND_ACCESS_KEY, "secret_key": BACKEND_SECRET_KEY},
        OTHER_ACCESS_KEY: None,
    }
    log = CallLog()

    def fetcher(token: str, name: str) -> Optional[Dict[str, str]]:
        log.add(token, name)
        return answers[token]

    proxy = start_proxy(cos_map={bucket: backend.entry(creds=False, ttl=1)}, bucket_creds_fetcher=fetcher)
    a, b = client_for(proxy), client_for(proxy, OTHER_ACCESS_KEY, OTHER_SECRET_KEY)
    a.put_object(Bucket=bucket, Key="a", Body=b"x")
    with pytest.raises(ClientError) as exc:  # B's "no credentials" is B's alone
        b.put_object(Bucket=bucket, Key="b", Body=b"x")
    assert_client_error(exc, 403, "AccessDenied", b)
    a.put_object(Bucket=bucket, Key="a2", Body=b"x")  # cached
    assert log.calls.count((CLIENT_ACCESS_KEY, bucket)) == 1
    answers[CLIENT_ACCESS_KEY] = None  # revoked
    time.sleep(1.3)
    with pytest.raises(ClientError) as exc:
        a.put_object(Bucket=bucket, Key="a3", Body=b"x")
    assert_client_error(exc, 403, "AccessDenied", a)
    assert log.calls.count((CLIENT_ACCESS_KEY, bucket)) == 2
    assert sorted(stored_keys(direct, bucket)) == ["a", "a2"]
