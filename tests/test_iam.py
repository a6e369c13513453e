"""IBM Cloud API-key backends: IAM bearer tokens, end to end.

The chain under test is

    boto3 / raw HTTP --client keys--> ProxyServer --Bearer <token>--> BearerFront --SigV4--> versitygw
                                          |
                                          +--POST /identity/token--> IamServer

IamServer (iam_server.py) is a local IAM token service that counts calls and
can fail; BearerFront (bearer_front.py) accepts only unexpired tokens that
IamServer issued, refuses to forward an incomplete body, and checks no
payload hash, so whatever the proxy lets through is stored. What was stored
is checked at versitygw directly.
"""

from __future__ import annotations

import hashlib
import json
import random
import secrets
import subprocess
import threading
import time
from typing import Any, Callable, List, Optional, Tuple

import pytest
from botocore.exceptions import ClientError

import awschunked as ac
from awschunked import STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER, build_upload
from bearer_front import BearerFront, Seen, assert_nothing_complete_reached
from helpers import (
    CLIENT_ACCESS_KEY,
    OTHER_ACCESS_KEY,
    OTHER_SECRET_KEY,
    CallLog,
    assert_client_error,
    assert_s3_error,
    parse_s3_error,
    send_signed,
    stored_body,
    stored_keys,
)
from iam_server import IamServer

KEY_A = "apikey-a-" + secrets.token_hex(12)
KEY_B = "apikey-b-" + secrets.token_hex(12)
KEY_C = "apikey-c-" + secrets.token_hex(12)
BAD_KEY = "apikey-revoked-" + secrets.token_hex(12)

IBM_HOST = "s3.eu-de.cloud-object-storage.appdomain.cloud"
ODD_KEY = "dir/with space/ünï+cöde&=;,()'!*~$@.bin"

SHA256_OF_OTHER = hashlib.sha256(b"some other body").hexdigest()
CHUNK = 8192


def payload(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


# --------------------------------------------------------------------------
# fixtures (front and bearer_proxy, on this iam, are conftest's)


# The API keys conftest's ``iam`` knows.
IAM_API_KEYS = {KEY_A, KEY_B, KEY_C}


def _openssl_cert(directory: Any, name: str, sans: str) -> Tuple[str, str]:
    cert, key = str(directory / f"{name}.crt"), str(directory / f"{name}.key")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", key, "-out", cert, "-days", "2", "-subj", f"/CN={name}",
         "-addext", f"subjectAltName={sans}",
         "-addext", "keyUsage=critical,digitalSignature,keyCertSign",
         "-addext", "extendedKeyUsage=serverAuth"],
        check=True, capture_output=True)
    return cert, key


@pytest.fixture(scope="module")
def ibm_cert(tmp_path_factory: Any) -> Tuple[str, str]:
    """A self-signed certificate for IBM's eu-de endpoints (and 127.0.0.1,
    for an IAM over TLS)."""
    return _openssl_cert(tmp_path_factory.mktemp("certs"), "ibm-eu-de",
                         f"DNS:*.{IBM_HOST},DNS:{IBM_HOST},IP:127.0.0.1")


@pytest.fixture(scope="module")
def other_cert(tmp_path_factory: Any) -> Tuple[str, str]:
    """A self-signed certificate for other names."""
    return _openssl_cert(tmp_path_factory.mktemp("certs"), "elsewhere",
                         "DNS:*.s3.elsewhere.example,DNS:elsewhere.example")


def seen_during(front: BearerFront, action: Callable[[], Any]) -> List[Seen]:
    """The requests the front received while ``action`` ran (sequential
    tests only)."""
    before = len(front.seen)
    action()
    return front.seen[before:]


def token_key(iam: IamServer, seen: Seen) -> Optional[str]:
    """The API key the token of a request was issued for."""
    token = iam.token(seen.token or "")
    return token.apikey if token else None


def assert_bearer_only(seen: List[Seen]) -> None:
    for s in seen:
        assert s.authorization.startswith("Bearer "), s
        assert "AWS4-HMAC-SHA256" not in s.authorization, s
        assert s.accepted, (s.method, s.path, s.reason)


def url_of(proxy: Any, bucket: str, key: str = "") -> str:
    return f"{proxy.endpoint_url}/{bucket}/{key}"


# --------------------------------------------------------------------------
# tokens: one IAM call, shared per key, refreshed ahead of expiry


def test_one_iam_call_for_many_concurrent_first_requests(bearer_proxy: Callable[..., Any], iam: IamServer,
                                                         front: BearerFront, direct: Any, bucket: str) -> None:
    proxy = bearer_proxy({bucket: KEY_A})
    iam.delay = 0.5  # every first request arrives while the one fetch is in flight
    n = 50
    barrier = threading.Barrier(n)
    results: List[Any] = [None] * n

    def put(i: int) -> None:
        barrier.wait()
        try:
            r = send_signed("PUT", url_of(proxy, bucket, f"c{i:02d}"), body=f"body {i}".encode())
            results[i] = (r.status_code, r.content[:300])
        except Exception as e:  # noqa: BLE001 - reported below
            results[i] = (0, repr(e))

    threads = [threading.Thread(target=put, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)

    assert [r for r in results if r is None or r[0] != 200] == []
    assert len(iam.calls) == 1, [c.apikey for c in iam.calls]
    seen = front.seen_for(bucket)
    assert len(seen) == n
    assert_bearer_only(seen)
    tokens = {s.token for s in seen}
    assert len(tokens) == 1
    assert token_key(iam, seen[0]) == KEY_A
    assert sorted(stored_keys(direct, bucket)) == [f"c{i:02d}" for i in range(n)]
    assert stored_body(direct, bucket, "c07") == b"body 7"


def test_one_iam_call_for_concurrent_first_requests_to_buckets_sharing_a_key(
        bearer_proxy: Callable[..., Any], iam: IamServer, front: BearerFront,
        make_bucket: Callable[..., str]) -> None:
    b1, b2 = make_bucket("iam-s1"), make_bucket("iam-s2")
    proxy = bearer_proxy({b1: KEY_A, b2: KEY_A})
    iam.delay = 0.5
    n = 20
    barrier = threading.Barrier(2 * n)
    statuses: List[int] = []

    def put(name: str, i: int) -> None:
        barrier.wait()
        statuses.append(send_signed("PUT", url_of(proxy, name, f"k{i}"), body=b"x").status_code)

    threads = [threading.Thread(target=put, args=(name, i)) for name in (b1, b2) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert statuses == [200] * (2 * n)
    assert len(iam.calls) == 1, "singleflight per API key, not per bucket"
    assert len({s.token for s in front.seen}) == 1


def test_token_shared_by_buckets_with_one_key(bearer_proxy: Callable[..., Any], client_for: Callable[..., Any],
                                              iam: IamServer, front: BearerFront, direct: Any,
                                              make_bucket: Callable[..., str]) -> None:
    b1, b2, b3 = make_bucket("iam-a1"), make_bucket("iam-a2"), make_bucket("iam-b")
    proxy = bearer_proxy({b1: KEY_A, b2: KEY_A, b3: KEY_B})
    client = client_for(proxy)
    for name in (b1, b2, b3):
        client.put_object(Bucket=name, Key="k", Body=name.encode())
        assert [o["Key"] for o in client.list_objects_v2(Bucket=name)["Contents"]] == ["k"]
        assert client.get_object(Bucket=name, Key="k")["Body"].read() == name.encode()

    assert iam.calls_for(KEY_A) == 1
    assert iam.calls_for(KEY_B) == 1
    assert len(iam.calls) == 2
    tokens = {name: {s.token for s in front.seen_for(name)} for name in (b1, b2, b3)}
    assert len(tokens[b1]) == 1 and tokens[b1] == tokens[b2], tokens
    assert len(tokens[b3]) == 1 and tokens[b3] != tokens[b1], tokens
    assert token_key(iam, front.seen_for(b1)[0]) == KEY_A
    assert token_key(iam, front.seen_for(b3)[0]) == KEY_B
    # addressing_style "path": /bucket/key at the configured host:port
    put = [s for s in front.seen_for(b1) if s.method == "PUT"][0]
    assert put.path == f"/{b1}/k" and put.host == front.address and not put.virtual
    assert_bearer_only(front.seen)
    for name in (b1, b2, b3):
        assert stored_body(direct, name, "k") == name.encode()


def test_refresh_before_expiry_without_a_failed_or_waiting_request(
        bearer_proxy: Callable[..., Any], iam: IamServer, front: BearerFront, direct: Any, bucket: str) -> None:
    iam.expires_in = 10  # lifetime 9-10 s (expiration is whole seconds)
    direct.put_object(Bucket=bucket, Key="tick", Body=b"tock")
    proxy = bearer_proxy({bucket: KEY_A})
    url = url_of(proxy, bucket, "tick")
    first = send_signed("GET", url)
    assert first.status_code == 200, first.content
    # From now on IAM takes 0.3 s to answer: a request that waited for a
    # refresh would take that long; a background refresh is invisible.
    iam.delay = 0.3
    failures: List[Any] = []
    latencies: List[float] = []
    end = time.monotonic() + 10.5
    while time.monotonic() < end:
        started = time.monotonic()
        r = send_signed("GET", url)
        latencies.append(time.monotonic() - started)
        if r.status_code != 200 or r.content != b"tock":
            failures.append((round(time.monotonic() - end + 10.5, 2), r.status_code, r.content[:200]))
        time.sleep(0.2)

    assert failures == []
    assert len(iam.calls) >= 2, "the token was not refreshed"
    seen = front.seen_for(bucket)
    assert len(seen) == len(latencies) + 1
    assert [s for s in seen if not s.accepted] == [], "a request reached the backend with an expired token"
    tokens_in_order = list(dict.fromkeys(s.token for s in seen))
    assert len(tokens_in_order) >= 2
    # The refresh happened ahead of expiry, and no token was used in its last
    # min(30 s, lifetime / 10).
    for s in seen:
        token = iam.token(s.token or "")
        assert token is not None
        lifetime = token.expiration - token.issued_at
        assert s.at < token.expiration - min(30.0, lifetime / 10) + 0.05, (
            f"token used {token.expiration - s.at:.2f}s before its expiry (lifetime {lifetime:.2f}s)")
    slow = [round(x, 3) for x in latencies if x >= 0.25]
    assert slow == [], f"requests waited for the refresh: {slow}"


def test_iam_failing_during_refresh_window_fails_no_request(bearer_proxy: Callable[..., Any], iam: IamServer,
                                                            front: BearerFront, direct: Any, bucket: str) -> None:
    # The refresh starts while the old token is still good; if IAM fails
    # then, requests go on with the old token (quickly) until its last tenth.
    iam.expires_in = 5
    direct.put_object(Bucket=bucket, Key="k", Body=b"v")
    proxy = bearer_proxy({bucket: KEY_A})
    url = url_of(proxy, bucket, "k")
    assert send_signed("GET", url).status_code == 200
    [first] = iam.calls
    token = iam.token(front.seen[0].token or "")
    assert token is not None
    lifetime = token.expiration - token.issued_at
    iam.fail = "500"
    usable_until = token.expiration - min(30.0, lifetime / 10) - 0.15
    results = []
    while time.time() < usable_until:
        started = time.monotonic()
        r = send_signed("GET", url)
        results.append((round(token.expiration - time.time(), 2), r.status_code, round(time.monotonic() - started, 3)))
        time.sleep(0.1)
    assert [x for x in results if x[1] != 200 or x[2] >= 0.25] == [], results
    assert len(iam.calls) >= 2, "no refresh was tried before the token's last tenth"
    assert all(c.status == 500 for c in iam.calls[1:])

    iam.fail = None  # IAM is back: a new token comes, before or after the old one ends
    time.sleep(max(0.0, token.expiration - time.time()) + 0.2)
    started = time.monotonic()
    r = send_signed("GET", url)
    assert r.status_code == 200, (r.status_code, r.content[:300])
    assert time.monotonic() - started < 3.0
    assert [s for s in front.seen if not s.accepted] == []
    assert len({s.token for s in front.seen}) == 2


# --------------------------------------------------------------------------
# IAM failures


@pytest.mark.parametrize("mode", ["refused", "500", "garbage"])
def test_iam_outage_gives_503_then_recovers(bearer_proxy: Callable[..., Any], iam: IamServer, front: BearerFront,
                                            direct: Any, bucket: str, mode: str) -> None:
    direct.put_object(Bucket=bucket, Key="k", Body=b"still here")
    proxy = bearer_proxy({bucket: KEY_A})
    if mode == "refused":
        iam.stop()
    else:
        iam.fail = mode

    started = time.monotonic()
    r = send_signed("GET", url_of(proxy, bucket, "k"))
    elapsed = time.monotonic() - started
    fields = assert_s3_error(r, 503, "ServiceUnavailable")
    assert KEY_A not in r.text and KEY_A not in str(r.headers)
    assert 1.5 <= elapsed <= 6.0, f"IAM retry budget: gave up after {elapsed:.2f}s"
    if mode != "refused":
        assert 2 <= len(iam.calls) <= 40, f"{len(iam.calls)} IAM calls: retried with backoff?"
    assert front.seen == []
    assert fields["Message"]

    if mode == "refused":  # a write during the outage stores nothing (once: each costs the retry budget)
        r = send_signed("PUT", url_of(proxy, bucket, "during-outage"), body=b"x")
        assert_s3_error(r, 503, "ServiceUnavailable")

    if mode == "refused":
        iam.start()
    else:
        iam.fail = None
    started = time.monotonic()
    r = send_signed("GET", url_of(proxy, bucket, "k"))
    assert r.status_code == 200 and r.content == b"still here", (r.status_code, r.content[:300])
    assert time.monotonic() - started < 2.0, "recovery waited for an old backoff"
    assert_bearer_only(front.seen)
    assert stored_keys(direct, bucket) == ["k"]


@pytest.mark.parametrize("mode", ["500", "garbage", "reset"])
def test_transient_iam_failure_is_retried(bearer_proxy: Callable[..., Any], iam: IamServer, front: BearerFront,
                                          direct: Any, bucket: str, mode: str) -> None:
    proxy = bearer_proxy({bucket: KEY_A})
    iam.fail_next(2, mode)
    started = time.monotonic()
    r = send_signed("PUT", url_of(proxy, bucket, "k"), body=b"after retries")
    assert r.status_code == 200, (r.status_code, r.content[:300])
    assert time.monotonic() - started < 3.0
    assert len(iam.calls) == 3
    assert stored_body(direct, bucket, "k") == b"after retries"


def test_hanging_iam_gives_503_in_bounded_time(bearer_proxy: Callable[..., Any], iam: IamServer,
                                               front: BearerFront, bucket: str) -> None:
    proxy = bearer_proxy({bucket: KEY_A})
    iam.delay = 20  # IAM accepts the connection and never answers in time
    started = time.monotonic()
    r = send_signed("GET", url_of(proxy, bucket, "k"))
    elapsed = time.monotonic() - started
    assert_s3_error(r, 503, "ServiceUnavailable")
    assert elapsed <= 7.0, f"the client waited {elapsed:.2f}s for a hanging IAM"
    assert front.seen == []


@pytest.mark.parametrize("status", [400, 401])
def test_bad_api_key_is_access_denied_naming_the_bucket(bearer_proxy: Callable[..., Any],
                                                        client_for: Callable[..., Any], iam: IamServer,
                                                        front: BearerFront, direct: Any, bucket: str,
                                                        capfd: Any, status: int) -> None:
    iam.bad_key_status = status
    proxy = bearer_proxy({bucket: BAD_KEY})
    client = client_for(proxy)
    started = time.monotonic()
    with pytest.raises(ClientError) as exc:
        client.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert time.monotonic() - started < 2.0, "a bad key (IAM 400) is not worth retrying"
    assert_client_error(exc, 403, "AccessDenied", client)
    fields = client.raw_responses.assert_last_error(403, "AccessDenied")
    assert bucket in fields["Message"], fields
    raw = client.raw_responses.responses[-1]
    assert BAD_KEY not in raw.content.decode(errors="replace")
    assert BAD_KEY not in str(dict(raw.headers))

    with pytest.raises(ClientError) as exc:
        client.get_object(Bucket=bucket, Key="k")
    assert_client_error(exc, 403, "AccessDenied", client)

    assert iam.calls and all(c.apikey == BAD_KEY and c.status == status for c in iam.calls)
    assert front.seen == []
    assert stored_keys(direct, bucket) == []
    captured = capfd.readouterr()
    assert BAD_KEY not in captured.err and BAD_KEY not in captured.out, "the API key was logged"


# --------------------------------------------------------------------------
# API keys from bucket_creds_fetcher, per token


def test_bad_key_of_one_bucket_does_not_affect_another(bearer_proxy: Callable[..., Any], iam: IamServer,
                                                       front: BearerFront, direct: Any,
                                                       make_bucket: Callable[..., str]) -> None:
    bad, good = make_bucket("iam-bad"), make_bucket("iam-good")
    proxy = bearer_proxy({bad: BAD_KEY, good: KEY_A})
    assert_s3_error(send_signed("PUT", url_of(proxy, bad, "k"), body=b"x"), 403, "AccessDenied")
    r = send_signed("PUT", url_of(proxy, good, "k"), body=b"x")
    assert r.status_code == 200, (r.status_code, r.content[:300])
    assert_s3_error(send_signed("GET", url_of(proxy, bad, "k")), 403, "AccessDenied")
    assert stored_keys(direct, bad) == [] and stored_keys(direct, good) == ["k"]


def test_unauthenticated_requests_cause_no_iam_call(bearer_proxy: Callable[..., Any], iam: IamServer,
                                                    front: BearerFront, bucket: str) -> None:
    proxy = bearer_proxy({bucket: KEY_A})
    r = send_signed("PUT", url_of(proxy, bucket, "k"), body=b"x", secret_key="not-the-client-secret")
    assert_s3_error(r, 403, "SignatureDoesNotMatch")
    r = send_signed("GET", url_of(proxy, bucket, "k"), access_key="AKIANOBODY0000000000")
    assert_s3_error(r, 403, "InvalidAccessKeyId")
    assert iam.calls == [] and front.seen == []


def test_api_key_per_token_from_creds_fetcher(bearer_proxy: Callable[..., Any], client_for: Callable[..., Any],
                                              iam: IamServer, front: BearerFront, direct: Any,
                                              bucket: str) -> None:
    log = CallLog()

    def fetcher(token: str, bucket_name: str) -> str:
        log.add(token, bucket_name)
        if token == CLIENT_ACCESS_KEY:
            return KEY_A  # a plain API key
        return json.dumps({"api_key": KEY_B})

    proxy = bearer_proxy({bucket: None}, entry={"ttl": 300}, bucket_creds_fetcher=fetcher)
    a = client_for(proxy)
    b = client_for(proxy, OTHER_ACCESS_KEY, OTHER_SECRET_KEY)

    by_a = seen_during(front, lambda: a.put_object(Bucket=bucket, Key="from-a", Body=b"a"))
    by_b = seen_during(front, lambda: b.put_object(Bucket=bucket, Key="from-b", Body=b"b"))
    by_a += seen_during(front, lambda: a.get_object(Bucket=bucket, Key="from-b")["Body"].read())
    by_b += seen_during(front, lambda: b.get_object(Bucket=bucket, Key="from-a")["Body"].read())
    by_a += seen_during(front, lambda: a.list_objects_v2(Bucket=bucket))

    assert by_a and by_b
    assert_bearer_only(by_a + by_b)
    assert {token_key(iam, s) for s in by_a} == {KEY_A}
    assert {token_key(iam, s) for s in by_b} == {KEY_B}
    assert iam.calls_for(KEY_A) == 1 and iam.calls_for(KEY_B) == 1
    assert sorted(set(log.calls)) == sorted({(CLIENT_ACCESS_KEY, bucket), (OTHER_ACCESS_KEY, bucket)})
    assert len(log) == 2  # cached per (token, bucket) for the ttl
    assert stored_keys(direct, bucket) == ["from-a", "from-b"]


def test_api_key_per_operation_from_identity_creds_fetcher(bearer_proxy: Callable[..., Any],
                                                           client_for: Callable[..., Any], iam: IamServer,
                                                           front: BearerFront, direct: Any, bucket: str) -> None:
    # A reader key for reads, a writer key for writes: the fetcher sees the operation.
    log = CallLog()

    def fetcher(token: str, bucket: str, operation: str, key: str) -> str:
        log.add(token, bucket, operation, key)
        return KEY_B if operation in ("PutObject", "DeleteObject") else KEY_A

    client = client_for(bearer_proxy({bucket: None}, bucket_creds_fetcher=fetcher))
    writes = seen_during(front, lambda: client.put_object(Bucket=bucket, Key="w", Body=b"w"))
    reads = seen_during(front, lambda: client.get_object(Bucket=bucket, Key="w")["Body"].read())
    reads += seen_during(front, lambda: client.list_objects_v2(Bucket=bucket, Prefix="w"))
    writes += seen_during(front, lambda: client.delete_object(Bucket=bucket, Key="w"))
    assert_bearer_only(writes + reads)
    assert {token_key(iam, s) for s in writes} == {KEY_B}
    assert {token_key(iam, s) for s in reads} == {KEY_A}
    assert iam.calls_for(KEY_A) == 1 and iam.calls_for(KEY_B) == 1
    t = CLIENT_ACCESS_KEY
    assert log.calls == [(t, bucket, "PutObject", "w"), (t, bucket, "GetObject", "w"),
                         (t, bucket, "ListObjectsV2", "w"), (t, bucket, "DeleteObject", "w")]
    assert stored_keys(direct, bucket) == []


def test_iam_url_from_environment(start_proxy: Callable[..., Any], iam: IamServer, front: BearerFront,
                                  direct: Any, bucket: str, monkeypatch: Any) -> None:
    monkeypatch.setenv("OSP_IAM_URL", iam.url)
    proxy = start_proxy(cos_map={bucket: front.entry(KEY_C)})
    r = send_signed("PUT", url_of(proxy, bucket, "env"), body=b"via env")
    assert r.status_code == 200, (r.status_code, r.content[:300])
    assert iam.calls_for(KEY_C) == 1
    assert stored_body(direct, bucket, "env") == b"via env"


# --------------------------------------------------------------------------
# the proxy checks the payload (the bearer backend does not)


def test_wrong_payload_hash_is_refused(bearer_proxy: Callable[..., Any], front: BearerFront, direct: Any,
                                       bucket: str) -> None:
    proxy = bearer_proxy({bucket: KEY_A})
    data = payload(300_000, seed=3)
    r = send_signed("PUT", url_of(proxy, bucket, "forged"), body=data, payload_hash=SHA256_OF_OTHER)
    assert_s3_error(r, 400, "XAmzContentSHA256Mismatch")
    assert_nothing_complete_reached(front, direct, bucket, "forged")

    small = send_signed("PUT", url_of(proxy, bucket, "forged-small"), body=b"tiny", payload_hash=SHA256_OF_OTHER)
    assert_s3_error(small, 400, "XAmzContentSHA256Mismatch")
    assert_nothing_complete_reached(front, direct, bucket, "forged-small")
    assert stored_keys(direct, bucket) == []


@pytest.mark.parametrize("payload_hash", [None, "UNSIGNED-PAYLOAD"], ids=["sha256", "unsigned"])
def test_good_payloads_are_stored_exactly(bearer_proxy: Callable[..., Any], front: BearerFront, direct: Any,
                                          bucket: str, payload_hash: Optional[str]) -> None:
    proxy = bearer_proxy({bucket: KEY_A})
    data = payload(300_001, seed=4)
    r = send_signed("PUT", url_of(proxy, bucket, "good"), body=data, payload_hash=payload_hash)
    assert r.status_code == 200, (r.status_code, r.content[:300])
    assert stored_body(direct, bucket, "good") == data
    [seen] = front.seen_for(bucket, "good")
    assert seen.complete and seen.content_length == len(data)


MODES = [STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER]
MODE_IDS = ["signed", "signed-trailer", "unsigned-trailer"]


@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
def test_aws_chunked_to_bearer_backend_is_plain_bytes(bearer_proxy: Callable[..., Any], front: BearerFront,
                                                      direct: Any, bucket: str, mode: str) -> None:
    proxy = bearer_proxy({bucket: KEY_A})
    data = payload(3 * CHUNK + 777, seed=5)
    upload = build_upload("PUT", url_of(proxy, bucket, "chunked"), data, mode)
    r = ac.send(upload)
    assert r.status_code == 200, (r.status_code, r.content[:300])
    assert stored_body(direct, bucket, "chunked") == data
    [seen] = front.seen_for(bucket, "chunked")
    assert seen.complete
    assert seen.content_length == len(data), "not the decoded length"
    assert "aws-chunked" not in seen.headers.get("content-encoding", "")
    assert "chunked" not in seen.headers.get("transfer-encoding", "")
    # nothing may tell a real COS the (plain) body is framed
    assert not seen.headers.get("x-amz-content-sha256", "").startswith("STREAMING-"), seen.headers
    assert "x-amz-decoded-content-length" not in seen.headers, seen.headers
    assert "x-amz-trailer" not in seen.headers, seen.headers
    assert seen.body_sample == data[:64], "the backend got framing, not the client's bytes"


def _forge(upload: ac.Upload, how: str) -> None:
    if how == "middle-chunk-signature":
        upload.chunks[1].signature = ac.flip(upload.chunks[1].signature or "")
    elif how == "last-chunk-data":
        last = upload.chunks[-2]
        last.data = last.data[:-1] + bytes([last.data[-1] ^ 1])
    elif how == "trailer-checksum":
        upload.trailers = [("x-amz-checksum-crc32", ac.checksum("crc32", b"something else"))]
    elif how == "trailer-signature":
        upload.trailer_signature = ac.flip(upload.trailer_signature or "")
    else:
        raise AssertionError(how)


FORGERIES = [
    pytest.param(STREAMING_SIGNED, "middle-chunk-signature", 403, "SignatureDoesNotMatch", id="signed-middle-sig"),
    pytest.param(STREAMING_SIGNED, "last-chunk-data", 403, "SignatureDoesNotMatch", id="signed-last-data"),
    pytest.param(STREAMING_SIGNED_TRAILER, "trailer-signature", 403, "SignatureDoesNotMatch",
                 id="signed-trailer-sig"),
    pytest.param(STREAMING_UNSIGNED_TRAILER, "trailer-checksum", 400, "BadDigest", id="unsigned-trailer-sum"),
    pytest.param(STREAMING_UNSIGNED_TRAILER, "last-chunk-data", 400, "BadDigest", id="unsigned-last-data"),
]


@pytest.mark.parametrize("mode, how, status, code", FORGERIES)
def test_aws_chunked_forgery_stores_nothing_at_bearer_backend(bearer_proxy: Callable[..., Any],
                                                              front: BearerFront, direct: Any, bucket: str,
                                                              mode: str, how: str, status: int, code: str) -> None:
    proxy = bearer_proxy({bucket: KEY_A})
    data = payload(3 * CHUNK + 100, seed=6)
    upload = build_upload("PUT", url_of(proxy, bucket, "forged"), data, mode)
    _forge(upload, how)
    r = ac.send(upload)
    assert_s3_error(r, status, code)
    assert_nothing_complete_reached(front, direct, bucket, "forged")
    assert stored_keys(direct, bucket) == []


# --------------------------------------------------------------------------
# more S3 through a bearer backend


def test_multipart_upload_through_bearer_backend(bearer_proxy: Callable[..., Any], client_for: Callable[..., Any],
                                                 iam: IamServer, front: BearerFront, direct: Any,
                                                 bucket: str) -> None:
    client = client_for(bearer_proxy({bucket: KEY_A}))
    part1, part2 = payload(5 * 1024 * 1024, seed=8), payload(1234, seed=9)
    upload_id = client.create_multipart_upload(Bucket=bucket, Key="mp.bin")["UploadId"]
    e1 = client.upload_part(Bucket=bucket, Key="mp.bin", UploadId=upload_id, PartNumber=1, Body=part1)["ETag"]
    e2 = client.upload_part(Bucket=bucket, Key="mp.bin", UploadId=upload_id, PartNumber=2, Body=part2)["ETag"]
    client.complete_multipart_upload(Bucket=bucket, Key="mp.bin", UploadId=upload_id, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    assert stored_body(direct, bucket, "mp.bin") == part1 + part2
    assert_bearer_only(front.seen)
    assert len(iam.calls) == 1


def test_presigned_get_through_bearer_backend(bearer_proxy: Callable[..., Any], client_for: Callable[..., Any],
                                              front: BearerFront, direct: Any, bucket: str) -> None:
    import requests

    direct.put_object(Bucket=bucket, Key="shared.txt", Body=b"by url")
    client = client_for(bearer_proxy({bucket: KEY_A}))
    url = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "shared.txt"}, ExpiresIn=60)
    r = requests.get(url, timeout=10)
    assert r.status_code == 200 and r.content == b"by url", (r.status_code, r.content[:300])
    [seen] = front.seen
    assert seen.authorization.startswith("Bearer ") and "X-Amz-Signature" not in seen.query


def test_copy_between_bearer_buckets(bearer_proxy: Callable[..., Any], client_for: Callable[..., Any],
                                     direct: Any, make_bucket: Callable[..., str]) -> None:
    src, same_key, other_key = make_bucket("cp-src"), make_bucket("cp-same"), make_bucket("cp-other")
    direct.put_object(Bucket=src, Key="o", Body=b"copy me")
    client = client_for(bearer_proxy({src: KEY_A, same_key: KEY_A, other_key: KEY_B}))
    client.copy_object(Bucket=same_key, Key="o2", CopySource={"Bucket": src, "Key": "o"})
    assert stored_body(direct, same_key, "o2") == b"copy me"
    client.copy_object(Bucket=src, Key="o3", CopySource={"Bucket": src, "Key": "o"})
    assert stored_body(direct, src, "o3") == b"copy me"
    # different API keys: different credentials, refused up front
    with pytest.raises(ClientError) as exc:
        client.copy_object(Bucket=other_key, Key="o4", CopySource={"Bucket": src, "Key": "o"})
    status = exc.value.response["ResponseMetadata"]["HTTPStatusCode"]
    assert 400 <= status < 500, exc.value.response
    assert stored_keys(direct, other_key) == []


# --------------------------------------------------------------------------
# IBM endpoints: the README's bucket, virtual hosts, TLS


def test_readme_bucket_served_through_local_iam(start_proxy: Callable[..., Any], client_for: Callable[..., Any],
                                                iam: IamServer, backend: Any, direct: Any, bucket: str,
                                                ibm_cert: Tuple[str, str]) -> None:
    cert, key = ibm_cert
    with BearerFront(iam, backend.endpoint_url, domains=[IBM_HOST], tls_cert=cert, tls_key=key) as front:
        cos_map = {bucket: {"host": IBM_HOST, "port": 443, "apikey": KEY_A, "ttl": 300}}
        proxy = start_proxy(cos_map=cos_map, iam_url=iam.url, verify=cert,
                            connect_to={f"{IBM_HOST}:443": front.address})
        client = client_for(proxy)

        client.put_object(Bucket=bucket, Key="readme.txt", Body=b"hello ibm cos")
        assert client.get_object(Bucket=bucket, Key="readme.txt")["Body"].read() == b"hello ibm cos"
        assert client.head_object(Bucket=bucket, Key="readme.txt")["ContentLength"] == len(b"hello ibm cos")
        listed = client.list_objects_v2(Bucket=bucket)
        assert [o["Key"] for o in listed["Contents"]] == ["readme.txt"]

        seen = front.seen
        assert [s.method for s in seen] == ["PUT", "GET", "HEAD", "GET"]
        assert_bearer_only(seen)
        for s in seen:
            assert s.tls and s.virtual
            assert s.host == f"{bucket}.{IBM_HOST}", s.host
            assert s.bucket == bucket
        assert [s.path for s in seen[:3]] == ["/readme.txt"] * 3
        assert seen[3].path == "/" and "list-type=2" in seen[3].query
        assert len({s.token for s in seen}) == 1 and token_key(iam, seen[0]) == KEY_A
        assert len(iam.calls) == 1
    assert stored_body(direct, bucket, "readme.txt") == b"hello ibm cos"


def test_tls_backend_name_is_verified(start_proxy: Callable[..., Any], iam: IamServer, backend: Any,
                                      direct: Any, bucket: str, other_cert: Tuple[str, str]) -> None:
    # The front presents a certificate that `verify` trusts but that names
    # other hosts: connect_to must not make the proxy skip the name check.
    cert, key = other_cert
    with BearerFront(iam, backend.endpoint_url, domains=[IBM_HOST], tls_cert=cert, tls_key=key) as front:
        cos_map = {bucket: {"host": IBM_HOST, "port": 443, "apikey": KEY_A, "ttl": 300}}
        proxy = start_proxy(cos_map=cos_map, iam_url=iam.url, verify=cert,
                            connect_to={f"{IBM_HOST}:443": front.address})
        r = send_signed("PUT", url_of(proxy, bucket, "k"), body=b"x")
        assert 500 <= r.status_code < 600, (r.status_code, r.content[:300])
        parse_s3_error(r.content)
        assert front.seen == []
    assert stored_keys(direct, bucket) == []


def test_virtual_host_over_http_with_connect_to(start_proxy: Callable[..., Any], client_for: Callable[..., Any],
                                                iam: IamServer, backend: Any, direct: Any, bucket: str) -> None:
    host = "s3.private.osp-test.example"
    with BearerFront(iam, backend.endpoint_url, domains=[host]) as front:
        cos_map = {bucket: {"host": host, "port": 9000, "scheme": "http", "apikey": KEY_B}}
        proxy = start_proxy(cos_map=cos_map, iam_url=iam.url, connect_to={f"{host}:9000": front.address})
        client = client_for(proxy)
        client.put_object(Bucket=bucket, Key="dir/v.txt", Body=b"virtual")
        assert client.get_object(Bucket=bucket, Key="dir/v.txt")["Body"].read() == b"virtual"
        client.put_object(Bucket=bucket, Key=ODD_KEY, Body=b"odd")
        assert client.get_object(Bucket=bucket, Key=ODD_KEY)["Body"].read() == b"odd"
        seen = front.seen
        assert_bearer_only(seen)
        assert [(s.host, s.path) for s in seen[:2]] == [(f"{bucket}.{host}:9000", "/dir/v.txt")] * 2
        assert [s.key for s in seen[2:]] == [ODD_KEY] * 2
    assert stored_body(direct, bucket, "dir/v.txt") == b"virtual"
    assert stored_body(direct, bucket, ODD_KEY) == b"odd"


def test_path_style_bearer_entry_with_connect_to(start_proxy: Callable[..., Any], client_for: Callable[..., Any],
                                                 iam: IamServer, front: BearerFront, direct: Any,
                                                 bucket: str) -> None:
    host = "cos.internal.osp-test.example"
    cos_map = {bucket: {"host": host, "port": 9000, "scheme": "http", "addressing_style": "path", "apikey": KEY_A}}
    client = client_for(start_proxy(cos_map=cos_map, iam_url=iam.url, connect_to={f"{host}:9000": front.address}))
    client.put_object(Bucket=bucket, Key="p.txt", Body=b"path")
    [seen] = front.seen
    assert (seen.host, seen.path) == (f"{host}:9000", f"/{bucket}/p.txt")
    assert stored_body(direct, bucket, "p.txt") == b"path"


def test_connect_to_for_an_hmac_backend(start_proxy: Callable[..., Any], client_for: Callable[..., Any],
                                        backend: Any, direct: Any, bucket: str) -> None:
    # connect_to is not about IAM: a SigV4 bucket configured with a name
    # reaches versitygw at 127.0.0.1, signed for the configured name.
    host = "s3.hmac.osp-test.example"
    entry = backend.entry(host=host)
    client = client_for(start_proxy(cos_map={bucket: entry},
                                    connect_to={f"{host}:{backend.port}": f"127.0.0.1:{backend.port}"}))
    client.put_object(Bucket=bucket, Key="h.txt", Body=b"hmac")
    assert client.get_object(Bucket=bucket, Key="h.txt")["Body"].read() == b"hmac"
    assert stored_body(direct, bucket, "h.txt") == b"hmac"


def test_iam_over_tls_follows_verify(start_proxy: Callable[..., Any], backend: Any, direct: Any,
                                     make_bucket: Callable[..., str], ibm_cert: Tuple[str, str],
                                     other_cert: Tuple[str, str]) -> None:
    cert, key = ibm_cert
    good, bad = make_bucket("iam-tls"), make_bucket("iam-tls")
    with IamServer({KEY_A}, tls_cert=cert, tls_key=key) as iam_tls, BearerFront(iam_tls, backend.endpoint_url) as front:
        assert iam_tls.url.startswith("https://127.0.0.1:")
        trusted = start_proxy(cos_map={good: front.entry(KEY_A)}, iam_url=iam_tls.url, verify=cert)
        r = send_signed("PUT", url_of(trusted, good, "k"), body=b"tls iam")
        assert r.status_code == 200, (r.status_code, r.content[:300])
        assert len(iam_tls.calls) == 1

        untrusted = start_proxy(cos_map={bad: front.entry(KEY_A)}, iam_url=iam_tls.url,
                                verify=other_cert[0])
        r = send_signed("PUT", url_of(untrusted, bad, "k"), body=b"x")
        assert 500 <= r.status_code < 600, (r.status_code, r.content[:300])
        assert KEY_A not in r.text
        assert len(iam_tls.calls) == 1, "a token request went to an IAM whose certificate is not trusted"
        assert front.seen_for(bad) == []
    assert stored_body(direct, good, "k") == b"tls iam"
    assert stored_keys(direct, bad) == []
