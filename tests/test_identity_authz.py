"""Identity-aware authorization: validator and bucket_creds_fetcher that take
``method``, ``key`` and ``operation`` as keyword arguments, their cache per
(token, bucket, operation, key), and two-argument callables unchanged.
Buckets are on versitygw with HMAC credentials; the Python calls are
recorded."""

from __future__ import annotations

import inspect
import json
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest
from botocore.exceptions import ClientError

from helpers import (
    BACKEND_ACCESS_KEY,
    BACKEND_SECRET_KEY,
    CLIENT_ACCESS_KEY,
    OTHER_ACCESS_KEY,
    OTHER_SECRET_KEY,
    CallLog,
    assert_client_error,
    object_exists,
    stored_body,
    stored_keys,
)

GOOD_PAIR = json.dumps({"access_key": BACKEND_ACCESS_KEY, "secret_key": BACKEND_SECRET_KEY})

Call = Tuple[str, str, str, str, str]  # token, bucket, method, key, operation


class IdentityValidator:
    """validator(token, bucket, method, key, operation), recording each call;
    ``policy`` decides (default: allow)."""

    def __init__(self, policy: Optional[Callable[..., bool]] = None) -> None:
        self.log = CallLog()
        self.policy = policy or (lambda *args: True)

    def __call__(self, token: str, bucket: str, method: str, key: str, operation: str) -> bool:
        self.log.add(token, bucket, method, key, operation)
        return bool(self.policy(token, bucket, method, key, operation))

    def since(self, mark: int) -> List[Call]:
        return self.log.calls[mark:]  # type: ignore[return-value]

    def during(self, action: Callable[[], Any]) -> List[Call]:
        mark = len(self.log)
        action()
        return self.since(mark)


def test_signature_is_what_the_proxy_inspects() -> None:
    # The proxy decides from the parameter names (control for the tests below).
    params = list(inspect.signature(IdentityValidator()).parameters)
    assert params == ["token", "bucket", "method", "key", "operation"]


def test_validator_receives_method_key_operation(start_proxy: Callable[..., Any], client_for: Callable[..., Any],
                                                 direct: Any, make_bucket: Callable[..., str]) -> None:
    bucket, other = make_bucket("idv"), make_bucket("idv-src")
    direct.put_object(Bucket=other, Key="src/obj.txt", Body=b"copied")
    v = IdentityValidator()
    # ttl 0: every request asks, so each request's call is visible
    client = client_for(start_proxy(bucket, other, entry={"ttl": 0}, validator=v))
    t = CLIENT_ACCESS_KEY

    def one(action: Callable[[], Any], expected: Call) -> None:
        calls = v.during(action)
        assert calls == [expected]

    one(lambda: client.put_object(Bucket=bucket, Key="dir/a.txt", Body=b"a"),
        (t, bucket, "PUT", "dir/a.txt", "PutObject"))
    one(lambda: client.get_object(Bucket=bucket, Key="dir/a.txt")["Body"].read(),
        (t, bucket, "GET", "dir/a.txt", "GetObject"))
    one(lambda: client.head_object(Bucket=bucket, Key="dir/a.txt"),
        (t, bucket, "HEAD", "dir/a.txt", "HeadObject"))
    one(lambda: client.list_objects_v2(Bucket=bucket, Prefix="dir/"),
        (t, bucket, "GET", "dir/", "ListObjectsV2"))
    one(lambda: client.list_objects_v2(Bucket=bucket),
        (t, bucket, "GET", "", "ListObjectsV2"))
    one(lambda: client.list_objects(Bucket=bucket, Prefix="di"),
        (t, bucket, "GET", "di", "ListObjects"))
    one(lambda: client.head_bucket(Bucket=bucket),
        (t, bucket, "HEAD", "", "HeadBucket"))

    # multipart
    upload_id = ""

    def create() -> None:
        nonlocal upload_id
        upload_id = client.create_multipart_upload(Bucket=bucket, Key="mp/big.bin")["UploadId"]

    one(create, (t, bucket, "POST", "mp/big.bin", "CreateMultipartUpload"))
    etag = ""

    def part() -> None:
        nonlocal etag
        etag = client.upload_part(Bucket=bucket, Key="mp/big.bin", UploadId=upload_id, PartNumber=1,
                                  Body=b"p" * 1000)["ETag"]

    one(part, (t, bucket, "PUT", "mp/big.bin", "UploadPart"))
    one(lambda: client.complete_multipart_upload(
        Bucket=bucket, Key="mp/big.bin", UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]}),
        (t, bucket, "POST", "mp/big.bin", "CompleteMultipartUpload"))
    upload_id2 = direct.create_multipart_upload(Bucket=bucket, Key="mp/aborted")["UploadId"]
    one(lambda: client.abort_multipart_upload(Bucket=bucket, Key="mp/aborted", UploadId=upload_id2),
        (t, bucket, "DELETE", "mp/aborted", "AbortMultipartUpload"))

    # copy: the destination as CopyObject, the source as GetObject on its key
    calls = v.during(lambda: client.copy_object(Bucket=bucket, Key="copy/dst.txt",
                                                CopySource={"Bucket": other, "Key": "src/obj.txt"}))
    assert (t, bucket, "PUT", "copy/dst.txt", "CopyObject") in calls, calls
    source = [c for c in calls if c[1] == other]
    assert len(source) == 1 and len(calls) == 2, calls
    assert source[0][3] == "src/obj.txt" and source[0][4] == "GetObject", calls
    assert source[0][2] in ("GET", "PUT"), calls

    one(lambda: client.delete_object(Bucket=bucket, Key="dir/a.txt"),
        (t, bucket, "DELETE", "dir/a.txt", "DeleteObject"))
    calls = v.during(lambda: client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "copy/dst.txt"}]}))
    # the request once, then each key it names (issue 12, item 2)
    assert [c[1:] for c in calls] == [(bucket, "POST", "", "DeleteObjects"),
                                      (bucket, "DELETE", "copy/dst.txt", "DeleteObject")], calls

    assert stored_body(direct, bucket, "mp/big.bin") == b"p" * 1000
    assert stored_keys(direct, bucket) == ["mp/big.bin"]


def test_odd_key_reaches_validator_decoded(start_proxy: Callable[..., Any], client_for: Callable[..., Any],
                                           bucket: str) -> None:
    v = IdentityValidator()
    client = client_for(start_proxy(bucket, validator=v))
    key = "dir/with space/ünï+cöde&=;,().txt"
    client.put_object(Bucket=bucket, Key=key, Body=b"x")
    assert v.log.calls == [(CLIENT_ACCESS_KEY, bucket, "PUT", key, "PutObject")]


def test_read_only_policy(start_proxy: Callable[..., Any], client_for: Callable[..., Any], direct: Any,
                          bucket: str) -> None:
    direct.put_object(Bucket=bucket, Key="report.csv", Body=b"1,2,3")
    writes = {"PutObject", "DeleteObject", "CreateMultipartUpload", "CopyObject", "DeleteObjects"}
    v = IdentityValidator(lambda token, b, method, key, operation: operation not in writes)
    client = client_for(start_proxy(bucket, validator=v))

    assert client.get_object(Bucket=bucket, Key="report.csv")["Body"].read() == b"1,2,3"
    assert client.head_object(Bucket=bucket, Key="report.csv")["ContentLength"] == 5
    assert [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]] == ["report.csv"]
    for action in (
        lambda: client.put_object(Bucket=bucket, Key="new.csv", Body=b"x"),
        lambda: client.put_object(Bucket=bucket, Key="report.csv", Body=b"overwritten"),
        lambda: client.delete_object(Bucket=bucket, Key="report.csv"),
        lambda: client.create_multipart_upload(Bucket=bucket, Key="mp"),
        lambda: client.copy_object(Bucket=bucket, Key="copy.csv", CopySource={"Bucket": bucket, "Key": "report.csv"}),
    ):
        with pytest.raises(ClientError) as exc:
            action()
        assert_client_error(exc, 403, "AccessDenied", client)
    assert stored_keys(direct, bucket) == ["report.csv"]
    assert stored_body(direct, bucket, "report.csv") == b"1,2,3"
    assert direct.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_prefix_policy(start_proxy: Callable[..., Any], client_for: Callable[..., Any], direct: Any,
                       bucket: str) -> None:
    direct.put_object(Bucket=bucket, Key="team-a/x", Body=b"a")
    direct.put_object(Bucket=bucket, Key="team-b/x", Body=b"b")

    def policy(token: str, b: str, method: str, key: str, operation: str) -> bool:
        return key.startswith("team-a/")

    client = client_for(start_proxy(bucket, validator=IdentityValidator(policy)))
    assert client.get_object(Bucket=bucket, Key="team-a/x")["Body"].read() == b"a"
    assert [o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix="team-a/")["Contents"]] == ["team-a/x"]
    with pytest.raises(ClientError) as exc:
        client.get_object(Bucket=bucket, Key="team-b/x")
    assert_client_error(exc, 403, "AccessDenied", client)
    with pytest.raises(ClientError) as exc:
        client.list_objects_v2(Bucket=bucket, Prefix="team-b/")
    assert_client_error(exc, 403, "AccessDenied", client)
    with pytest.raises(ClientError) as exc:
        client.list_objects_v2(Bucket=bucket)  # prefix "": the whole bucket
    assert_client_error(exc, 403, "AccessDenied", client)
    client.put_object(Bucket=bucket, Key="team-a/y", Body=b"ok")
    with pytest.raises(ClientError) as exc:
        client.put_object(Bucket=bucket, Key="team-b/y", Body=b"no")
    assert_client_error(exc, 403, "AccessDenied", client)
    assert stored_keys(direct, bucket) == ["team-a/x", "team-a/y", "team-b/x"]


def test_cache_per_token_bucket_operation_key(start_proxy: Callable[..., Any], client_for: Callable[..., Any],
                                              direct: Any, make_bucket: Callable[..., str]) -> None:
    b1, b2 = make_bucket("idc"), make_bucket("idc")
    for name in (b1, b2):
        for key in ("k1", "k2", "denied"):
            direct.put_object(Bucket=name, Key=key, Body=b"x")
    v = IdentityValidator(lambda token, b, method, key, operation: key != "denied")
    proxy = start_proxy(b1, b2, entry={"ttl": 300}, validator=v)
    a, other = client_for(proxy), client_for(proxy, OTHER_ACCESS_KEY, OTHER_SECRET_KEY)

    for _ in range(3):
        a.get_object(Bucket=b1, Key="k1")["Body"].read()
    for _ in range(2):
        a.get_object(Bucket=b1, Key="k2")["Body"].read()
        a.head_object(Bucket=b1, Key="k1")
        a.get_object(Bucket=b2, Key="k1")["Body"].read()
        other.get_object(Bucket=b1, Key="k1")["Body"].read()
        a.list_objects_v2(Bucket=b1, Prefix="k")
        with pytest.raises(ClientError) as exc:
            a.get_object(Bucket=b1, Key="denied")
        assert_client_error(exc, 403, "AccessDenied", a)
    a.put_object(Bucket=b1, Key="k1", Body=b"new")

    counts: Dict[Tuple[str, ...], int] = {}
    for call in v.log.calls:
        counts[call] = counts.get(call, 0) + 1
    A, B = CLIENT_ACCESS_KEY, OTHER_ACCESS_KEY
    assert counts == {
        (A, b1, "GET", "k1", "GetObject"): 1,
        (A, b1, "GET", "k2", "GetObject"): 1,
        (A, b1, "HEAD", "k1", "HeadObject"): 1,
        (A, b2, "GET", "k1", "GetObject"): 1,
        (B, b1, "GET", "k1", "GetObject"): 1,
        (A, b1, "GET", "k", "ListObjectsV2"): 1,
        (A, b1, "GET", "denied", "GetObject"): 1,  # the denial is cached too
        (A, b1, "PUT", "k1", "PutObject"): 1,
    }


def test_identity_cache_is_bounded_lru(start_proxy: Callable[..., Any], client_for: Callable[..., Any],
                                       direct: Any, bucket: str) -> None:
    for key in ("k1", "k2", "k3"):
        direct.put_object(Bucket=bucket, Key=key, Body=b"x")
    v = IdentityValidator()
    client = client_for(start_proxy(bucket, validator=v, cache_size=2))
    for key in ("k1", "k2", "k1", "k3", "k1", "k2"):
        client.get_object(Bucket=bucket, Key=key)["Body"].read()
    # k1 was used again before k3 came, so k3 evicted k2 (least recently used)
    assert [c[3] for c in v.log.calls] == ["k1", "k2", "k3", "k2"]

    unbounded = IdentityValidator()
    client = client_for(start_proxy(bucket, validator=unbounded))
    for key in ("k1", "k2", "k1", "k3", "k1", "k2"):
        client.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert [c[3] for c in unbounded.log.calls] == ["k1", "k2", "k3"]


def test_identity_cache_expires_with_ttl(start_proxy: Callable[..., Any], client_for: Callable[..., Any],
                                         direct: Any, bucket: str) -> None:
    direct.put_object(Bucket=bucket, Key="k", Body=b"x")
    v = IdentityValidator()
    client = client_for(start_proxy(bucket, entry={"ttl": 1}, validator=v))
    client.get_object(Bucket=bucket, Key="k")["Body"].read()
    client.get_object(Bucket=bucket, Key="k")["Body"].read()
    assert len(v.log) == 1
    time.sleep(1.3)
    client.get_object(Bucket=bucket, Key="k")["Body"].read()
    assert len(v.log) == 2


def test_kwargs_validator_gets_all_three(start_proxy: Callable[..., Any], client_for: Callable[..., Any],
                                         bucket: str) -> None:
    log: List[Tuple[str, str, Dict[str, Any]]] = []

    def validator(token: str, bucket: str, **kwargs: Any) -> bool:
        log.append((token, bucket, dict(kwargs)))
        return True

    client = client_for(start_proxy(bucket, validator=validator))
    client.put_object(Bucket=bucket, Key="kw", Body=b"x")
    assert len(log) == 1
    token, name, kwargs = log[0]
    assert (token, name) == (CLIENT_ACCESS_KEY, bucket)
    assert {k: kwargs.get(k) for k in ("method", "key", "operation")} == {
        "method": "PUT", "key": "kw", "operation": "PutObject"}, kwargs


def test_validator_taking_some_identity_args(start_proxy: Callable[..., Any], client_for: Callable[..., Any],
                                             direct: Any, bucket: str) -> None:
    # Only the parameters it names are passed (anything else would be a TypeError -> 500).
    log = CallLog()
    validator = lambda token, bucket, operation: (  # noqa: E731 - a lambda on purpose
        log.add(token, bucket, operation) or operation != "DeleteObject")
    client = client_for(start_proxy(bucket, validator=validator))
    client.put_object(Bucket=bucket, Key="a", Body=b"x")
    with pytest.raises(ClientError) as exc:
        client.delete_object(Bucket=bucket, Key="a")
    assert_client_error(exc, 403, "AccessDenied", client)
    assert log.calls == [(CLIENT_ACCESS_KEY, bucket, "PutObject"), (CLIENT_ACCESS_KEY, bucket, "DeleteObject")]
    assert stored_keys(direct, bucket) == ["a"]

    class KeyOnly:
        def __init__(self) -> None:
            self.log = CallLog()

        def __call__(self, token: str, bucket: str, key: str) -> bool:
            self.log.add(token, bucket, key)
            return key.endswith(".public")

    key_only = KeyOnly()
    other = client_for(start_proxy(bucket, validator=key_only))
    other.put_object(Bucket=bucket, Key="b.public", Body=b"x")
    with pytest.raises(ClientError) as exc:
        other.put_object(Bucket=bucket, Key="b.private", Body=b"x")
    assert_client_error(exc, 403, "AccessDenied", other)
    assert key_only.log.calls == [(CLIENT_ACCESS_KEY, bucket, "b.public"), (CLIENT_ACCESS_KEY, bucket, "b.private")]


def test_keyword_only_and_varargs_validators(start_proxy: Callable[..., Any], client_for: Callable[..., Any],
                                             direct: Any, bucket: str) -> None:
    kw_log = CallLog()

    def keyword_only(token: str, bucket: str, *, operation: str, method: str = "?") -> bool:
        kw_log.add(token, bucket, operation, method)
        return True

    client_for(start_proxy(bucket, validator=keyword_only)).put_object(Bucket=bucket, Key="a", Body=b"x")
    assert kw_log.calls == [(CLIENT_ACCESS_KEY, bucket, "PutObject", "PUT")]

    # *args names nothing: the original two arguments
    var_log: List[Tuple[Any, ...]] = []

    def varargs(*args: Any) -> bool:
        var_log.append(args)
        return True

    client_for(start_proxy(bucket, validator=varargs)).put_object(Bucket=bucket, Key="b", Body=b"x")
    assert var_log == [(CLIENT_ACCESS_KEY, bucket)]
    assert stored_keys(direct, bucket) == ["a", "b"]


def test_list_buckets_with_identity_validator(start_proxy: Callable[..., Any], client_for: Callable[..., Any],
                                              make_bucket: Callable[..., str]) -> None:
    allowed, denied = make_bucket("lb-yes"), make_bucket("lb-no")
    v = IdentityValidator(lambda token, b, method, key, operation: b == allowed)
    client = client_for(start_proxy(allowed, denied, validator=v))
    names = [b["Name"] for b in client.list_buckets()["Buckets"]]
    assert names == [allowed]
    for call in v.log.calls:
        assert call[3] == "" and call[1] in (allowed, denied), call


def test_two_argument_validator_unchanged(start_proxy: Callable[..., Any], client_for: Callable[..., Any],
                                          direct: Any, bucket: str) -> None:
    log = CallLog()

    def validator(token: str, bucket: str) -> bool:
        log.add(token, bucket)
        return True

    client = client_for(start_proxy(bucket, validator=validator))
    client.put_object(Bucket=bucket, Key="a", Body=b"x")
    client.get_object(Bucket=bucket, Key="a")["Body"].read()
    client.put_object(Bucket=bucket, Key="b", Body=b"x")
    client.list_objects_v2(Bucket=bucket)
    client.delete_object(Bucket=bucket, Key="b")
    assert log.calls == [(CLIENT_ACCESS_KEY, bucket)]  # one per (token, bucket)
    assert stored_keys(direct, bucket) == ["a"]


def test_creds_fetcher_with_identity_args(start_proxy: Callable[..., Any], client_for: Callable[..., Any],
                                          direct: Any, bucket: str) -> None:
    direct.put_object(Bucket=bucket, Key="r", Body=b"readable")
    log = CallLog()

    def fetcher(token: str, bucket: str, method: str, key: str, operation: str) -> Optional[str]:
        log.add(token, bucket, method, key, operation)
        # read-only credentials: nothing for writes
        return GOOD_PAIR if operation in ("GetObject", "HeadObject", "ListObjectsV2") else None

    client = client_for(start_proxy(bucket, entry={"creds": False, "ttl": 300}, bucket_creds_fetcher=fetcher))
    for _ in range(2):
        assert client.get_object(Bucket=bucket, Key="r")["Body"].read() == b"readable"
        client.list_objects_v2(Bucket=bucket, Prefix="r")
        with pytest.raises(ClientError) as exc:
            client.put_object(Bucket=bucket, Key="w", Body=b"x")
        assert_client_error(exc, 403, "AccessDenied", client)
    t = CLIENT_ACCESS_KEY
    assert sorted(log.calls) == sorted([
        (t, bucket, "GET", "r", "GetObject"),
        (t, bucket, "GET", "r", "ListObjectsV2"),
        (t, bucket, "PUT", "w", "PutObject"),
    ])  # each once: cached per (token, bucket, operation, key), the None too
    assert not object_exists(direct, bucket, "w")
