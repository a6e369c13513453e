"""Authorization: validator(token, bucket) -> bool, and its cache per
(token, bucket) for the bucket's ttl. The Python calls are counted."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

import pytest
from botocore.exceptions import ClientError

from helpers import (
    CLIENT_ACCESS_KEY,
    OTHER_ACCESS_KEY,
    OTHER_SECRET_KEY,
    CallLog,
    assert_client_error,
    object_exists,
    stored_body,
    stored_keys,
)


def recording_validator(log: CallLog, allow: Callable[[str, str], bool]) -> Callable[[str, str], bool]:
    def validator(token: str, bucket: str) -> bool:
        log.add(token, bucket)
        return allow(token, bucket)

    return validator


def test_validator_allows(start_proxy: Callable[..., Any], client_for: Callable[..., Any],
                          direct: Any, bucket: str) -> None:
    log = CallLog()
    client = client_for(start_proxy(bucket, validator=recording_validator(log, lambda t, b: True)))

    client.put_object(Bucket=bucket, Key="ok", Body=b"allowed")

    assert stored_body(direct, bucket, "ok") == b"allowed"
    # The token the validator sees is the client's access key id.
    assert log.calls == [(CLIENT_ACCESS_KEY, bucket)]


def test_validator_denies(start_proxy: Callable[..., Any], client_for: Callable[..., Any],
                          direct: Any, bucket: str) -> None:
    direct.put_object(Bucket=bucket, Key="existing", Body=b"secret")
    log = CallLog()
    client = client_for(start_proxy(bucket, validator=recording_validator(log, lambda t, b: False)))

    with pytest.raises(ClientError) as exc:
        client.put_object(Bucket=bucket, Key="denied", Body=b"x")
    assert_client_error(exc, 403, "AccessDenied", client)

    with pytest.raises(ClientError) as exc:
        client.get_object(Bucket=bucket, Key="existing")
    assert_client_error(exc, 403, "AccessDenied", client)

    with pytest.raises(ClientError) as exc:
        client.list_objects_v2(Bucket=bucket)
    assert_client_error(exc, 403, "AccessDenied", client)

    assert stored_keys(direct, bucket) == ["existing"]
    assert log.calls == [(CLIENT_ACCESS_KEY, bucket)]  # the denial is cached too


def test_validator_decides_per_token(start_proxy: Callable[..., Any], client_for: Callable[..., Any],
                                     direct: Any, bucket: str) -> None:
    log = CallLog()
    proxy = start_proxy(bucket, validator=recording_validator(log, lambda t, b: t == CLIENT_ACCESS_KEY))
    allowed = client_for(proxy)
    denied = client_for(proxy, OTHER_ACCESS_KEY, OTHER_SECRET_KEY)

    allowed.put_object(Bucket=bucket, Key="a", Body=b"a")
    with pytest.raises(ClientError) as exc:
        denied.put_object(Bucket=bucket, Key="b", Body=b"b")
    assert_client_error(exc, 403, "AccessDenied", denied)
    allowed.put_object(Bucket=bucket, Key="c", Body=b"c")  # A's answer was not replaced by B's

    assert stored_keys(direct, bucket) == ["a", "c"]
    assert sorted(log.calls) == sorted([(CLIENT_ACCESS_KEY, bucket), (OTHER_ACCESS_KEY, bucket)])


def test_validator_decides_per_bucket(start_proxy: Callable[..., Any], client_for: Callable[..., Any],
                                      direct: Any, make_bucket: Callable[..., str]) -> None:
    open_bucket, closed_bucket = make_bucket("open"), make_bucket("closed")
    log = CallLog()
    client = client_for(start_proxy(open_bucket, closed_bucket,
                                    validator=recording_validator(log, lambda t, b: b == open_bucket)))

    client.put_object(Bucket=open_bucket, Key="k", Body=b"x")
    with pytest.raises(ClientError) as exc:
        client.put_object(Bucket=closed_bucket, Key="k", Body=b"x")
    assert_client_error(exc, 403, "AccessDenied", client)

    assert object_exists(direct, open_bucket, "k")
    assert not object_exists(direct, closed_bucket, "k")


def test_validator_cached_for_ttl(start_proxy: Callable[..., Any], client_for: Callable[..., Any],
                                  make_bucket: Callable[..., str]) -> None:
    b1, b2 = make_bucket("cached"), make_bucket("cached")
    log = CallLog()
    proxy = start_proxy(b1, b2, entry={"ttl": 300}, validator=recording_validator(log, lambda t, b: True))
    first, second = client_for(proxy), client_for(proxy, OTHER_ACCESS_KEY, OTHER_SECRET_KEY)

    for i in range(5):
        first.put_object(Bucket=b1, Key=f"k{i}", Body=b"x")
        first.list_objects_v2(Bucket=b1)
    for i in range(3):
        first.head_bucket(Bucket=b2)
        second.list_objects_v2(Bucket=b1)

    # One call per (token, bucket), however many requests.
    assert sorted(log.calls) == sorted([(CLIENT_ACCESS_KEY, b1), (CLIENT_ACCESS_KEY, b2), (OTHER_ACCESS_KEY, b1)])


def test_validator_ttl_zero_asks_every_time(start_proxy: Callable[..., Any], client_for: Callable[..., Any],
                                            bucket: str) -> None:
    log = CallLog()
    client = client_for(start_proxy(bucket, entry={"ttl": 0}, validator=recording_validator(log, lambda t, b: True)))

    for i in range(4):
        client.put_object(Bucket=bucket, Key=f"k{i}", Body=b"x")
    client.list_objects_v2(Bucket=bucket)

    assert log.calls == [(CLIENT_ACCESS_KEY, bucket)] * 5


def test_validator_ttl_zero_sees_a_changed_answer(start_proxy: Callable[..., Any], client_for: Callable[..., Any],
                                                  direct: Any, bucket: str) -> None:
    allowed = {"now": True}
    client = client_for(start_proxy(bucket, entry={"ttl": 0}, validator=lambda t, b: allowed["now"]))

    client.put_object(Bucket=bucket, Key="before", Body=b"x")
    allowed["now"] = False
    with pytest.raises(ClientError) as exc:
        client.put_object(Bucket=bucket, Key="after", Body=b"x")
    assert_client_error(exc, 403, "AccessDenied", client)

    assert stored_keys(direct, bucket) == ["before"]


def test_validator_not_called_for_bad_signatures(start_proxy: Callable[..., Any], client_for: Callable[..., Any],
                                                 bucket: str) -> None:
    log = CallLog()
    proxy = start_proxy(bucket, validator=recording_validator(log, lambda t, b: True))
    bad = client_for(proxy, CLIENT_ACCESS_KEY, "not-the-secret")
    with pytest.raises(ClientError) as exc:
        bad.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert_client_error(exc, 403, "SignatureDoesNotMatch", bad)
    assert log.calls == []


def test_concurrent_first_requests_share_one_call(start_proxy: Callable[..., Any], client_for: Callable[..., Any],
                                                  bucket: str) -> None:
    # Misses for one (token, bucket) are collapsed into a single call.
    log = CallLog()

    def slow_validator(token: str, bucket_name: str) -> bool:
        log.add(token, bucket_name)
        time.sleep(0.3)
        return True

    proxy = start_proxy(bucket, validator=slow_validator)
    clients = [client_for(proxy) for _ in range(6)]
    errors = []

    def worker(i: int) -> None:
        try:
            clients[i].put_object(Bucket=bucket, Key=f"c{i}", Body=b"x")
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert log.calls == [(CLIENT_ACCESS_KEY, bucket)]
