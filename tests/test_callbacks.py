"""Python callables behind the proxy: bucket_creds_fetcher (per token),
hmac_fetcher, and callables that raise or return the wrong type."""

from __future__ import annotations

import json
from typing import Any, Callable

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

GOOD_PAIR = {"access_key": BACKEND_ACCESS_KEY, "secret_key": BACKEND_SECRET_KEY}
WRONG_PAIR = {"access_key": BACKEND_ACCESS_KEY, "secret_key": "not-the-backend-secret"}


# --------------------------------------------------------------------------
# bucket_creds_fetcher


def test_creds_fetcher_per_token(start_proxy: Callable[..., Any], client_for: Callable[..., Any],
                                 direct: Any, bucket: str) -> None:
    log = CallLog()

    def fetcher(token: str, bucket_name: str) -> str:
        log.add(token, bucket_name)
        return json.dumps(GOOD_PAIR if token == CLIENT_ACCESS_KEY else WRONG_PAIR)

    proxy = start_proxy(bucket, entry={"creds": False, "ttl": 300}, bucket_creds_fetcher=fetcher)
    a = client_for(proxy)
    b = client_for(proxy, OTHER_ACCESS_KEY, OTHER_SECRET_KEY)

    a.put_object(Bucket=bucket, Key="from-a", Body=b"a")
    with pytest.raises(ClientError) as exc:
        b.put_object(Bucket=bucket, Key="from-b", Body=b"b")
    # The backend refused the wrong pair B's fetcher answer gave the proxy:
    # the proxy's own AccessDenied (the backend's SignatureDoesNotMatch details
    # stay in the log, issue 12 item 11).
    assert_client_error(exc, 403, "AccessDenied", b)
    # A's credentials were not replaced by B's (the original wrote the
    # first answer into cos_map for everyone).
    a.put_object(Bucket=bucket, Key="from-a-again", Body=b"a")
    assert a.get_object(Bucket=bucket, Key="from-a")["Body"].read() == b"a"
    with pytest.raises(ClientError) as exc:
        b.get_object(Bucket=bucket, Key="from-a")
    assert_client_error(exc, 403, "AccessDenied", b)

    assert stored_keys(direct, bucket) == ["from-a", "from-a-again"]
    # Called once per (token, bucket) within the ttl.
    assert sorted(log.calls) == sorted([(CLIENT_ACCESS_KEY, bucket), (OTHER_ACCESS_KEY, bucket)])


def test_creds_fetcher_cached_per_token_and_bucket(start_proxy: Callable[..., Any], client_for: Callable[..., Any],
                                                   direct: Any, make_bucket: Callable[..., str]) -> None:
    b1, b2 = make_bucket("fetched"), make_bucket("fetched")
    log = CallLog()

    def fetcher(token: str, bucket_name: str) -> str:
        log.add(token, bucket_name)
        return json.dumps(GOOD_PAIR)

    proxy = start_proxy(b1, b2, entry={"creds": False, "ttl": 300}, bucket_creds_fetcher=fetcher)
    a, b = client_for(proxy), client_for(proxy, OTHER_ACCESS_KEY, OTHER_SECRET_KEY)
    for i in range(3):
        a.put_object(Bucket=b1, Key=f"a{i}", Body=b"x")
        a.list_objects_v2(Bucket=b2)
        b.put_object(Bucket=b1, Key=f"b{i}", Body=b"x")

    assert stored_keys(direct, b1) == ["a0", "a1", "a2", "b0", "b1", "b2"]
    assert sorted(log.calls) == sorted([(CLIENT_ACCESS_KEY, b1), (CLIENT_ACCESS_KEY, b2), (OTHER_ACCESS_KEY, b1)])


def test_creds_fetcher_new_secret_for_the_same_access_key(start_proxy: Callable[..., Any],
                                                          client_for: Callable[..., Any],
                                                          direct: Any, bucket: str) -> None:
    # Key rotation: the fetcher (ttl 0, asked every time) first answers a
    # stale secret, then the current one for the same access key. The proxy
    # must sign with what the fetcher answered for this request.
    answers = [WRONG_PAIR, GOOD_PAIR]
    log = CallLog()

    def fetcher(token: str, bucket_name: str) -> str:
        log.add(token, bucket_name)
        return json.dumps(answers[min(len(log), len(answers)) - 1])

    client = client_for(start_proxy(bucket, entry={"creds": False, "ttl": 0}, bucket_creds_fetcher=fetcher))
    with pytest.raises(ClientError) as exc:
        client.put_object(Bucket=bucket, Key="with-stale-secret", Body=b"x")
    assert_client_error(exc, 403, "AccessDenied", client)

    client.put_object(Bucket=bucket, Key="with-current-secret", Body=b"x")

    assert len(log) == 2
    assert stored_keys(direct, bucket) == ["with-current-secret"]


def test_creds_fetcher_dict_answer(start_proxy: Callable[..., Any], client_for: Callable[..., Any],
                                   direct: Any, bucket: str) -> None:
    proxy = start_proxy(bucket, entry={"creds": False}, bucket_creds_fetcher=lambda token, b: dict(GOOD_PAIR))
    client_for(proxy).put_object(Bucket=bucket, Key="dict", Body=b"d")
    assert stored_body(direct, bucket, "dict") == b"d"


def test_creds_fetcher_ttl_zero_asks_every_time(start_proxy: Callable[..., Any], client_for: Callable[..., Any],
                                                bucket: str) -> None:
    log = CallLog()

    def fetcher(token: str, bucket_name: str) -> str:
        log.add(token, bucket_name)
        return json.dumps(GOOD_PAIR)

    client = client_for(start_proxy(bucket, entry={"creds": False, "ttl": 0}, bucket_creds_fetcher=fetcher))
    for i in range(3):
        client.put_object(Bucket=bucket, Key=f"k{i}", Body=b"x")
    assert len(log) == 3


def test_creds_fetcher_not_used_when_cos_map_has_creds(start_proxy: Callable[..., Any],
                                                       client_for: Callable[..., Any], direct: Any,
                                                       bucket: str) -> None:
    log = CallLog()

    def fetcher(token: str, bucket_name: str) -> str:
        log.add(token, bucket_name)
        return json.dumps(WRONG_PAIR)

    client_for(start_proxy(bucket, bucket_creds_fetcher=fetcher)).put_object(Bucket=bucket, Key="k", Body=b"x")
    assert stored_body(direct, bucket, "k") == b"x"
    assert log.calls == []


def test_creds_fetcher_returns_none(start_proxy: Callable[..., Any], client_for: Callable[..., Any],
                                    direct: Any, bucket: str) -> None:
    client = client_for(start_proxy(bucket, entry={"creds": False}, bucket_creds_fetcher=lambda t, b: None))
    with pytest.raises(ClientError) as exc:
        client.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert_client_error(exc, 403, "AccessDenied", client)
    assert stored_keys(direct, bucket) == []


# --------------------------------------------------------------------------
# hmac_fetcher


def test_hmac_fetcher_supplies_the_secret(start_proxy: Callable[..., Any], client_for: Callable[..., Any],
                                          direct: Any, bucket: str) -> None:
    log = CallLog()

    def hmac_fetcher(access_key: str) -> Any:
        log.add(access_key)
        return "fetched-secret-0123456789" if access_key == "AKIAFETCHED000000000" else None

    proxy = start_proxy(bucket, hmac_keystore=None, hmac_fetcher=hmac_fetcher)
    client = client_for(proxy, "AKIAFETCHED000000000", "fetched-secret-0123456789")
    for i in range(3):
        client.put_object(Bucket=bucket, Key=f"k{i}", Body=b"x")
    assert stored_keys(direct, bucket) == ["k0", "k1", "k2"]
    assert log.calls == [("AKIAFETCHED000000000",)]  # cached

    wrong = client_for(proxy, "AKIAFETCHED000000000", "not-the-secret")
    with pytest.raises(ClientError) as exc:
        wrong.put_object(Bucket=bucket, Key="wrong", Body=b"x")
    assert_client_error(exc, 403, "SignatureDoesNotMatch", wrong)

    unknown = client_for(proxy, "AKIAUNKNOWN000000000", "whatever")
    with pytest.raises(ClientError) as exc:
        unknown.put_object(Bucket=bucket, Key="unknown", Body=b"x")
    assert_client_error(exc, 403, "InvalidAccessKeyId", unknown)

    assert stored_keys(direct, bucket) == ["k0", "k1", "k2"]


def test_keystore_and_hmac_fetcher_together(start_proxy: Callable[..., Any], client_for: Callable[..., Any],
                                            direct: Any, bucket: str) -> None:
    log = CallLog()

    def hmac_fetcher(access_key: str) -> Any:
        log.add(access_key)
        return OTHER_SECRET_KEY if access_key == OTHER_ACCESS_KEY else None

    proxy = start_proxy(bucket, hmac_keystore={CLIENT_ACCESS_KEY: CLIENT_SECRET_KEY}, hmac_fetcher=hmac_fetcher)
    client_for(proxy).put_object(Bucket=bucket, Key="from-keystore", Body=b"x")
    client_for(proxy, OTHER_ACCESS_KEY, OTHER_SECRET_KEY).put_object(Bucket=bucket, Key="from-fetcher", Body=b"x")

    assert stored_keys(direct, bucket) == ["from-fetcher", "from-keystore"]
    assert log.calls == [(OTHER_ACCESS_KEY,)]


# --------------------------------------------------------------------------
# callables that fail: 500 InternalError, and the server keeps serving


class FailOnce:
    """Raises on its first call, then answers."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.log = CallLog()

    def __call__(self, *args: str) -> Any:
        self.log.add(*args)
        if len(self.log) == 1:
            raise RuntimeError("boom: the callable failed")
        return self.answer


def _fails_then_serves(client: Any, direct: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as exc:
        client.put_object(Bucket=bucket, Key="first", Body=b"x")
    assert_client_error(exc, 500, "InternalError", client)
    fields = client.raw_responses.assert_last_error(500, "InternalError")
    assert "boom" not in fields["Message"]  # the exception text stays in the logs
    assert stored_keys(direct, bucket) == []

    client.put_object(Bucket=bucket, Key="second", Body=b"ok")
    assert stored_keys(direct, bucket) == ["second"]


def test_validator_raises(start_proxy: Callable[..., Any], client_for: Callable[..., Any],
                          direct: Any, bucket: str) -> None:
    validator = FailOnce(True)
    _fails_then_serves(client_for(start_proxy(bucket, validator=validator)), direct, bucket)
    assert len(validator.log) == 2  # a failure is not cached


def test_creds_fetcher_raises(start_proxy: Callable[..., Any], client_for: Callable[..., Any],
                              direct: Any, bucket: str) -> None:
    fetcher = FailOnce(json.dumps(GOOD_PAIR))
    _fails_then_serves(client_for(start_proxy(bucket, entry={"creds": False}, bucket_creds_fetcher=fetcher)),
                       direct, bucket)


def test_hmac_fetcher_raises(start_proxy: Callable[..., Any], client_for: Callable[..., Any],
                             direct: Any, bucket: str) -> None:
    fetcher = FailOnce(CLIENT_SECRET_KEY)
    _fails_then_serves(client_for(start_proxy(bucket, hmac_keystore=None, hmac_fetcher=fetcher)), direct, bucket)


@pytest.mark.parametrize("answer", ["yes", 1, None, [True]], ids=["str", "int", "None", "list"])
def test_validator_returns_non_bool(start_proxy: Callable[..., Any], client_for: Callable[..., Any],
                                    direct: Any, bucket: str, answer: Any) -> None:
    client = client_for(start_proxy(bucket, validator=lambda token, b: answer))
    with pytest.raises(ClientError) as exc:
        client.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert_client_error(exc, 500, "InternalError", client)
    assert stored_keys(direct, bucket) == []


@pytest.mark.parametrize("answer", [42, b"bytes", ["a", "b"], {"access_key": "only"}],
                         ids=["int", "bytes", "list", "incomplete-dict"])
def test_creds_fetcher_returns_wrong_type(start_proxy: Callable[..., Any], client_for: Callable[..., Any],
                                          direct: Any, bucket: str, answer: Any) -> None:
    client = client_for(start_proxy(bucket, entry={"creds": False}, bucket_creds_fetcher=lambda t, b: answer))
    with pytest.raises(ClientError) as exc:
        client.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert_client_error(exc, 500, "InternalError", client)
    assert stored_keys(direct, bucket) == []


def test_hmac_fetcher_returns_wrong_type(start_proxy: Callable[..., Any], client_for: Callable[..., Any],
                                         direct: Any, bucket: str) -> None:
    client = client_for(start_proxy(bucket, hmac_keystore=None, hmac_fetcher=lambda access_key: 12345))
    with pytest.raises(ClientError) as exc:
        client.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert_client_error(exc, 500, "InternalError", client)
    assert stored_keys(direct, bucket) == []
