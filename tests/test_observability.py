"""What an operator on call sees: health and readiness endpoints, Prometheus
metrics after a known workload, request ids, structured access logs, and
no secret in any log line at any level.

Admin endpoints (GET only, no authentication, on the admin listener of
``admin_port``, never on the S3 listeners): /healthz, /readyz, /metrics. Metrics are per
server; logs go to stderr with log/slog (captured here with capfd, since the
Go side writes to file descriptor 2).
"""

from __future__ import annotations

import datetime
import json
import re
import secrets
import threading
import time
import urllib.parse
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest
import requests
from botocore.exceptions import ClientError

import awschunked as ac
from bearer_front import BearerFront
from helpers import (
    BACKEND_ACCESS_KEY,
    BACKEND_SECRET_KEY,
    CLIENT_ACCESS_KEY,
    CLIENT_SECRET_KEY,
    OTHER_ACCESS_KEY,
    OTHER_SECRET_KEY,
    CallLog,
    make_client,
    parse_s3_error,
    send_signed,
    stored_body,
    utcnow,
)
from iam_server import IamServer
from object_storage_proxy import ProxyServerConfig, enable_request_counting, get_request_count
from observe import (
    ACCESS_LOG_FIELDS,
    HEALTHZ,
    METRICS,
    READYZ,
    Metrics,
    Stderr,
    access_records,
    admin,
    eventually,
    log_records,
    scrape,
)

REQUEST_ID = re.compile(r"^[A-Za-z0-9+/=_-]{8,}$")


# Request counting is process-wide: every test here starts and ends with it off.
pytestmark = pytest.mark.usefixtures("counting_left_off")


def request_id(response: Any) -> str:
    """x-amz-request-id of a requests/botocore response, checked non-empty."""
    headers = response.headers
    rid = headers.get("x-amz-request-id", "")
    assert REQUEST_ID.match(rid), f"no (or an odd) x-amz-request-id: {dict(headers)}"
    return str(rid)


def sum_requests(metrics: Metrics) -> float:
    return metrics.value("osp_requests_total")


# --------------------------------------------------------------------------
# health and readiness


def test_health_endpoints_answer_without_credentials(proxy: Any) -> None:
    healthz = admin(proxy, HEALTHZ)
    assert healthz.status_code == 200, (healthz.status_code, healthz.text[:300])
    assert healthz.text.strip() == "ok"

    readyz = admin(proxy, READYZ)
    assert readyz.status_code == 200, (readyz.status_code, readyz.text[:300])

    # Answered before authentication: credentials, good or bad, change nothing.
    forged = admin(proxy, HEALTHZ, headers={
        "Authorization": "AWS4-HMAC-SHA256 Credential=NOSUCHKEY/20200101/us-east-1/s3/aws4_request, "
                         "SignedHeaders=host, Signature=" + "0" * 64})
    assert forged.status_code == 200 and forged.text.strip() == "ok", (forged.status_code, forged.text[:300])
    assert admin(proxy, READYZ, headers={"Authorization": "Bearer nonsense"}).status_code == 200

    # Like every response of the proxy, they carry a request id.
    request_id(healthz)
    request_id(readyz)


def test_admin_endpoints_are_get_only(proxy: Any) -> None:
    for path in (HEALTHZ, READYZ, METRICS):
        for method in ("PUT", "POST", "DELETE"):
            response = admin(proxy, path, method=method)
            assert 400 <= response.status_code < 500, (method, path, response.status_code, response.text[:300])


def test_readyz_is_not_ready_while_stopping(start_proxy: Callable[..., Any], make_bucket: Callable[..., str]) -> None:
    """Once stop() has begun (here: draining a request held in the
    validator), a load balancer probing the admin listener's /readyz never
    sees 200: it gets 503 (the admin listener stays up while the S3
    listeners drain)."""
    bucket, slow = make_bucket(), make_bucket("slow")
    entered, release = threading.Event(), threading.Event()

    def validator(token: str, name: str) -> bool:
        if name == slow:
            entered.set()
            release.wait(8)
        return True

    proxy = start_proxy(bucket, slow, validator=validator, entry={"ttl": 0})
    proxy_url = proxy.admin_url  # admin_port reads None once stop() has begun
    assert admin(proxy_url, READYZ).status_code == 200
    client = make_client(proxy.endpoint_url, CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY)
    outcome: Dict[str, Any] = {}

    def held() -> None:
        try:
            outcome["status"] = client.list_objects_v2(Bucket=slow)["ResponseMetadata"]["HTTPStatusCode"]
        except Exception as e:  # noqa: BLE001 - reported below
            outcome["error"] = repr(e)

    worker = threading.Thread(target=held)
    worker.start()
    assert entered.wait(5), "the held request never reached the validator"
    stopper = threading.Thread(target=proxy.stop, kwargs={"timeout": 10})
    stopper.start()
    try:
        time.sleep(0.3)
        try:
            probe: Optional[int] = admin(proxy_url, READYZ, timeout=2).status_code
        except requests.RequestException:
            probe = None  # not listening any more: not ready either
    finally:
        release.set()
        worker.join(15)
        stopper.join(15)
    assert probe == 503, f"GET {proxy_url}{READYZ} while stopping answered {probe}"


# --------------------------------------------------------------------------
# metrics


def test_metrics_after_a_known_workload(start_proxy: Callable[..., Any], make_bucket: Callable[..., str],
                                        new_bucket_name: Callable[..., str], direct: Any) -> None:
    bucket = make_bucket("metrics")
    proxy = start_proxy(bucket)
    url = proxy.endpoint_url
    client = make_client(url, CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY)
    wrong = make_client(url, CLIENT_ACCESS_KEY, "not-the-secret-" + secrets.token_hex(8))
    unknown = make_client(url, "NOSUCHKEY" + secrets.token_hex(4).upper(), "whatever-" + secrets.token_hex(8))

    before = scrape(proxy)
    assert sum_requests(before) == 0, before.table("osp_requests_total")
    enable_request_counting()

    sizes = [1000, 2000, 3000]
    for i, size in enumerate(sizes):
        client.put_object(Bucket=bucket, Key=f"k{i}", Body=bytes([65 + i]) * size)
    for i in range(2):
        assert len(client.get_object(Bucket=bucket, Key=f"k{i}")["Body"].read()) == sizes[i]
    with pytest.raises(ClientError):
        client.get_object(Bucket=bucket, Key="missing")
    client.list_objects_v2(Bucket=bucket)
    listing_bytes = len(client.raw_responses.responses[-1].content)
    client.list_buckets()
    with pytest.raises(ClientError):
        wrong.get_object(Bucket=bucket, Key="k0")
    with pytest.raises(ClientError):
        unknown.get_object(Bucket=bucket, Key="k0")
    not_mapped = new_bucket_name("unmapped")
    with pytest.raises(ClientError):
        client.list_objects_v2(Bucket=not_mapped)
    unmapped_status = client.raw_responses.responses[-1].status_code

    # Admin requests in the middle of the workload are not counted.
    admin(proxy, HEALTHZ)
    admin(proxy, READYZ)
    scrape(proxy)
    sent = len(client.raw_responses.responses) + len(wrong.raw_responses.responses) + len(
        unknown.raw_responses.responses)
    assert sent == 11

    def check() -> Metrics:
        m = scrape(proxy)
        table = m.table("osp_requests_total")
        assert m.value("osp_requests_total", bucket=bucket, operation="PutObject", status="200") == 3, table
        assert m.value("osp_requests_total", bucket=bucket, operation="GetObject", status="200") == 2, table
        assert m.value("osp_requests_total", bucket=bucket, operation="GetObject", status="404") == 1, table
        assert m.value("osp_requests_total", bucket=bucket, operation="ListObjectsV2", status="200") == 1, table
        assert m.value("osp_requests_total", bucket="", operation="ListBuckets", status="200") == 1, table
        assert m.value("osp_requests_total", bucket=bucket, status="403") == 2, table
        assert m.value("osp_requests_total", bucket=bucket, operation="GetObject", status="403") == 2, table
        assert m.value("osp_requests_total", bucket="_unknown", operation="ListObjectsV2",
                       status=str(unmapped_status)) == 1, table
        # The unmapped name never becomes a label (unbounded cardinality).
        assert not_mapped not in m.text
        assert sum_requests(m) == sent, table
        return m

    m = eventually(check)
    assert get_request_count() == sum_requests(m) == sent

    assert m.types.get("osp_requests_total") == "counter", m.types
    for histogram in ("osp_request_duration_seconds", "osp_backend_duration_seconds"):
        assert m.types.get(histogram) == "histogram", m.types

    # Latency: every counted request has a duration; the backend was asked
    # by the 3 puts, 3 gets and 1 listing only (ListBuckets answers from
    # cos_map, rejected requests never leave the proxy).
    assert m.value("osp_request_duration_seconds_count") == sent, m.table("osp_request_duration_seconds_count")
    assert m.value("osp_request_duration_seconds_count", operation="PutObject") == 3
    assert m.value("osp_request_duration_seconds_bucket", operation="PutObject", le="+Inf") == 3
    assert m.value("osp_request_duration_seconds_sum") > 0
    assert m.value("osp_backend_duration_seconds_count", bucket=bucket) == 7, m.table(
        "osp_backend_duration_seconds_count")
    assert m.value("osp_backend_duration_seconds_count") == 7
    assert 0 < m.value("osp_backend_duration_seconds_sum", bucket=bucket) <= m.value(
        "osp_request_duration_seconds_sum")

    # Bytes: bodies in (the puts) and out (what the clients received).
    assert m.value("osp_request_bytes_total", bucket=bucket) == sum(sizes), m.table("osp_request_bytes_total")
    # Out: the two objects and the listing, plus (maybe) the error documents.
    ok_out = sizes[0] + sizes[1] + listing_bytes
    errors_out = sum(len(r.content or b"") for c in (client, wrong, unknown) for r in c.raw_responses.responses
                     if r.status_code >= 300)
    all_out = ok_out + errors_out
    out = m.value("osp_response_bytes_total", bucket=bucket)
    assert listing_bytes > 0 and errors_out > 0
    assert ok_out <= out <= all_out, (ok_out, out, all_out, m.table("osp_response_bytes_total"))

    # Auth failures by reason.
    assert m.value("osp_auth_failures_total", reason="SignatureDoesNotMatch") == 1, m.table("osp_auth_failures_total")
    assert m.value("osp_auth_failures_total", reason="InvalidAccessKeyId") == 1, m.table("osp_auth_failures_total")
    assert m.value("osp_auth_failures_total") == 2, m.table("osp_auth_failures_total")


def test_auth_failures_by_reason(start_proxy: Callable[..., Any], bucket: str) -> None:
    def validator(token: str, name: str) -> bool:
        return token != OTHER_ACCESS_KEY

    proxy = start_proxy(bucket, validator=validator)
    url = f"{proxy.endpoint_url}/{bucket}/k"
    assert send_signed("PUT", url, body=b"x").status_code == 200

    expected = {
        "SignatureDoesNotMatch": send_signed("GET", url, secret_key="wrong-" + secrets.token_hex(8)),
        "InvalidAccessKeyId": send_signed("GET", url, access_key="NOSUCHKEYNOSUCHKEY00"),
        "AccessDenied": send_signed("GET", url, access_key=OTHER_ACCESS_KEY, secret_key=OTHER_SECRET_KEY),
        "RequestTimeTooSkewed": send_signed("GET", url, at=utcnow() - datetime.timedelta(hours=1)),
    }
    for reason, response in expected.items():
        fields = parse_s3_error(response.content)
        assert (response.status_code, fields["Code"]) == (403, reason), (reason, response.status_code, fields)
        assert fields["RequestId"] == request_id(response)

    def check() -> Metrics:
        m = scrape(proxy)
        table = m.table("osp_auth_failures_total")
        for reason in expected:
            assert m.value("osp_auth_failures_total", reason=reason) == 1, (reason, table)
        assert m.value("osp_auth_failures_total") == len(expected), table
        assert m.value("osp_requests_total", bucket=bucket, status="403") == len(expected), m.table(
            "osp_requests_total")
        return m

    eventually(check)


def test_metrics_are_per_server(start_proxy: Callable[..., Any], client_for: Callable[..., Any], bucket: str) -> None:
    busy, idle = start_proxy(bucket), start_proxy(bucket)
    client = client_for(busy)
    for i in range(4):
        client.put_object(Bucket=bucket, Key=f"k{i}", Body=b"x")
    eventually(lambda: _assert_eq(scrape(busy).value("osp_requests_total", bucket=bucket), 4))
    assert scrape(idle).value("osp_requests_total") == 0


def _assert_eq(got: Any, want: Any) -> None:
    assert got == want, (got, want)


def test_metrics_can_be_turned_off(start_proxy: Callable[..., Any], client_for: Callable[..., Any],
                                   bucket: str) -> None:
    proxy = start_proxy(bucket, metrics=False)
    response = admin(proxy, METRICS)
    assert response.status_code == 404, (response.status_code, response.text[:300])
    assert "osp_requests_total" not in response.text
    assert admin(proxy, HEALTHZ).status_code == 200
    client_for(proxy).put_object(Bucket=bucket, Key="k", Body=b"still proxied")
    assert client_for(proxy).get_object(Bucket=bucket, Key="k")["Body"].read() == b"still proxied"


def test_metrics_default_on_and_config_checked(backend: Any, bucket: str) -> None:
    assert ProxyServerConfig({bucket: backend.entry()}, http_port=0).metrics is True
    with pytest.raises(TypeError, match="metrics"):
        ProxyServerConfig({bucket: backend.entry()}, http_port=0, metrics="yes")


def test_cache_and_callable_metrics(start_proxy: Callable[..., Any], make_bucket: Callable[..., str],
                                    backend: Any) -> None:
    plain, fetched, broken, slow = (make_bucket("plain"), make_bucket("fetched"), make_bucket("broken"),
                                    make_bucket("slow"))
    fetched_key, fetched_secret = "FETCHEDKEY" + secrets.token_hex(5).upper(), "fetched-" + secrets.token_hex(16)
    calls = CallLog()

    def validator(token: str, name: str) -> bool:
        calls.add("validator", name)
        if name == broken:
            raise RuntimeError("validator bug (test)")
        if name == slow:
            time.sleep(1.2)
        return True

    def hmac_fetcher(access_key: str) -> Optional[str]:
        calls.add("hmac_fetcher", access_key)
        return fetched_secret if access_key == fetched_key else None

    def bucket_creds_fetcher(token: str, name: str) -> str:
        calls.add("bucket_creds_fetcher", name)
        return json.dumps({"access_key": BACKEND_ACCESS_KEY, "secret_key": BACKEND_SECRET_KEY})

    proxy = start_proxy(plain, broken, slow, cos_map={fetched: backend.entry(creds=False)},
                        validator=validator, hmac_fetcher=hmac_fetcher, bucket_creds_fetcher=bucket_creds_fetcher,
                        hmac_keystore=None, callback_timeout=0.5)
    client = make_client(proxy.endpoint_url, fetched_key, fetched_secret)
    for _ in range(3):
        client.list_objects_v2(Bucket=fetched)
    with pytest.raises(ClientError) as broken_error:
        client.list_objects_v2(Bucket=broken)
    assert broken_error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    with pytest.raises(ClientError) as slow_error:
        client.list_objects_v2(Bucket=slow)
    assert slow_error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503

    kinds = [c[0] for c in calls.calls]
    assert kinds.count("hmac_fetcher") == 1 and kinds.count("bucket_creds_fetcher") == 1, calls.calls

    def check() -> Metrics:
        m = scrape(proxy)
        calls_table = m.table("osp_callable_calls_total")
        assert m.value("osp_callable_calls_total", callable="hmac_fetcher", outcome="ok") == 1, calls_table
        assert m.value("osp_callable_calls_total", callable="bucket_creds_fetcher", outcome="ok") == 1, calls_table
        assert m.value("osp_callable_calls_total", callable="validator", outcome="ok") == 1, calls_table
        assert m.value("osp_callable_calls_total", callable="validator", outcome="error") == 1, calls_table
        assert m.value("osp_callable_calls_total", callable="validator", outcome="timeout") == 1, calls_table
        assert m.value("osp_callable_calls_total") == 5, calls_table
        assert m.label_values("osp_callable_calls_total", "callable") == ["bucket_creds_fetcher", "hmac_fetcher",
                                                                          "validator"]
        return m

    m = eventually(check)
    assert m.types.get("osp_callable_duration_seconds") == "histogram", m.types
    durations = m.table("osp_callable_duration_seconds_count")
    assert m.value("osp_callable_duration_seconds_count", callable="hmac_fetcher") == 1, durations
    assert m.value("osp_callable_duration_seconds_count", callable="bucket_creds_fetcher") == 1, durations
    assert m.value("osp_callable_duration_seconds_count", callable="validator") == 3, durations
    # The timed-out call counts at least the timeout (0.5 s), not the 1.2 s it went on running.
    assert m.value("osp_callable_duration_seconds_sum", callable="validator") >= 0.45, m.table(
        "osp_callable_duration_seconds_sum")

    caches = m.table("osp_cache_requests_total")
    # 5 requests by one fetched key: one miss, then hits.
    assert m.value("osp_cache_requests_total", cache="client_secrets", result="miss") == 1, caches
    assert m.value("osp_cache_requests_total", cache="client_secrets", result="hit") == 4, caches
    # bucket_creds only for the bucket without credentials: 3 requests.
    assert m.value("osp_cache_requests_total", cache="bucket_creds", result="miss") == 1, caches
    assert m.value("osp_cache_requests_total", cache="bucket_creds", result="hit") == 2, caches
    # validator: fetched (miss, hit, hit), broken (miss), slow (miss).
    assert m.value("osp_cache_requests_total", cache="validator", result="miss") == 3, caches
    assert m.value("osp_cache_requests_total", cache="validator", result="hit") == 2, caches
    assert set(m.label_values("osp_cache_requests_total", "result")) <= {"hit", "miss"}, caches


# --------------------------------------------------------------------------
# IBM Cloud IAM token metrics


API_KEY = "apikey-obs-" + secrets.token_hex(12)
BAD_API_KEY = "apikey-obs-revoked-" + secrets.token_hex(12)


# The API keys conftest's ``iam`` knows.
IAM_API_KEYS = {API_KEY}


def test_iam_token_metrics(start_proxy: Callable[..., Any], iam: IamServer, front: BearerFront,
                           make_bucket: Callable[..., str], direct: Any) -> None:
    good, bad = make_bucket("iam-good"), make_bucket("iam-bad")
    proxy = start_proxy(cos_map={good: front.entry(API_KEY), bad: front.entry(BAD_API_KEY)},
                        iam_url=iam.url)
    client = make_client(proxy.endpoint_url, CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY)
    client.put_object(Bucket=good, Key="k", Body=b"via a bearer token")
    client.get_object(Bucket=good, Key="k")["Body"].read()
    client.list_objects_v2(Bucket=good)
    assert stored_body(direct, good, "k") == b"via a bearer token"
    assert iam.calls_for(API_KEY) == 1
    with pytest.raises(ClientError) as refused:
        client.list_objects_v2(Bucket=bad)
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403

    def check() -> Metrics:
        m = scrape(proxy)
        fetches = m.table("osp_iam_token_fetches_total")
        assert m.value("osp_iam_token_fetches_total", outcome="ok") == 1, fetches
        assert m.value("osp_iam_token_fetches_total", outcome="error") == iam.calls_for(BAD_API_KEY) >= 1, fetches
        caches = m.table("osp_cache_requests_total")
        assert m.value("osp_cache_requests_total", cache="iam_tokens", result="miss") >= 1, caches
        assert m.value("osp_cache_requests_total", cache="iam_tokens", result="hit") >= 2, caches
        return m

    eventually(check)


# --------------------------------------------------------------------------
# request ids and access logs


def test_request_id_on_every_response_and_in_its_access_log_line(
        start_proxy: Callable[..., Any], bucket: str, new_bucket_name: Callable[..., str], capfd: Any) -> None:
    stderr = Stderr(capfd)
    proxy = start_proxy(bucket)
    base = f"{proxy.endpoint_url}/{bucket}"
    responses: List[Tuple[str, str, str, requests.Response]] = []  # (method, operation, bucket label, response)

    def send(method: str, url: str, operation: str, label: str, **kw: Any) -> requests.Response:
        response = send_signed(method, url, **kw)
        responses.append((method, operation, label, response))
        return response

    assert send("PUT", f"{base}/obj", "PutObject", bucket, body=b"hello").status_code == 200
    assert send("GET", f"{base}/obj", "GetObject", bucket).status_code == 200
    assert send("GET", f"{base}/missing", "GetObject", bucket).status_code == 404  # versitygw's 404
    assert send("GET", f"{base}/obj", "GetObject", bucket, secret_key="wrong-secret-" + secrets.token_hex(6)
                ).status_code == 403  # the proxy's own error
    assert send("GET", f"{proxy.endpoint_url}/", "ListBuckets", "").status_code == 200
    send("GET", f"{proxy.endpoint_url}/{new_bucket_name('unmapped')}?list-type=2", "ListObjectsV2", "_unknown")

    ids = [request_id(r) for *_, r in responses]
    assert len(set(ids)) == len(ids), ids
    # The proxy's own errors (a bad signature, a bucket not in cos_map) name
    # the same id in their XML body. (versitygw's 404 keeps versitygw's body.)
    for response in (responses[3][3], responses[5][3]):
        assert response.status_code >= 400, response.status_code
        assert parse_s3_error(response.content)["RequestId"] == request_id(response)

    records = stderr.records_for(request_id(r) for *_, r in responses)
    for method, operation, label, response in responses:
        rid = request_id(response)
        assert len(records[rid]) == 1, records[rid]
        record = records[rid][0]
        assert str(record.get("level", "")).upper() == "INFO", record
        assert record["method"] == method, record
        assert record["operation"] == operation, record
        assert record["bucket"] == label, record
        assert int(record["status"]) == response.status_code, record


def test_access_log_names_the_key_of_refused_requests(start_proxy: Callable[..., Any], bucket: str,
                                                     capfd: Any) -> None:
    """Who is failing? The access key a refused request presented (an
    identifier, not a secret) is in its log line."""
    stderr = Stderr(capfd)

    def validator(token: str, name: str) -> bool:
        return token != OTHER_ACCESS_KEY

    proxy = start_proxy(bucket, validator=validator)
    url = f"{proxy.endpoint_url}/{bucket}/k"
    unknown_key = "NOSUCHKEY" + secrets.token_hex(5).upper()
    sent = {
        CLIENT_ACCESS_KEY: send_signed("GET", url, secret_key="wrong-" + secrets.token_hex(8)),
        unknown_key: send_signed("GET", url, access_key=unknown_key),
        OTHER_ACCESS_KEY: send_signed("GET", url, access_key=OTHER_ACCESS_KEY, secret_key=OTHER_SECRET_KEY),
    }
    records = stderr.records_for(request_id(r) for r in sent.values())
    for access_key, response in sent.items():
        assert response.status_code == 403, response.content[:300]
        record = records[request_id(response)][0]
        assert (record["access_key"], int(record["status"])) == (access_key, 403), record


def test_access_log_fields_text(start_proxy: Callable[..., Any], client_for: Callable[..., Any], bucket: str,
                                capfd: Any) -> None:
    stderr = Stderr(capfd)
    proxy = start_proxy(bucket, log_format="text")
    client = client_for(proxy)
    key = "secret-looking/" + secrets.token_hex(8)  # object keys stay out of access logs
    body = secrets.token_bytes(12345)
    put = client.put_object(Bucket=bucket, Key=key, Body=body)
    got = client.get_object(Bucket=bucket, Key=key)
    assert got["Body"].read() == body
    put_id = put["ResponseMetadata"]["HTTPHeaders"]["x-amz-request-id"]
    get_id = got["ResponseMetadata"]["HTTPHeaders"]["x-amz-request-id"]
    records = stderr.records_for([put_id, get_id])
    put_line = [line for line in stderr.text.splitlines() if put_id in line and "msg=request" in line]
    assert put_line and put_line[0].startswith("time=") and " level=INFO " in put_line[0], put_line

    put_record, get_record = records[put_id][0], records[get_id][0]
    for record in (put_record, get_record):
        missing = [f for f in ACCESS_LOG_FIELDS if f not in record]
        assert not missing, (missing, record)
        assert record["access_key"] == CLIENT_ACCESS_KEY, record
        assert record["bucket"] == bucket, record
        assert int(record["status"]) == 200, record
        assert float(record["duration_ms"]) >= float(record["backend_ms"]) >= 0, record
        assert str(record["remote"]).startswith("127.0.0.1"), record
        assert "key" not in record, record
        assert key not in json.dumps(record), record
    assert (put_record["method"], put_record["operation"]) == ("PUT", "PutObject")
    assert (get_record["method"], get_record["operation"]) == ("GET", "GetObject")
    assert int(put_record["bytes_in"]) == len(body), put_record
    assert int(get_record["bytes_out"]) == len(body), get_record
    assert int(get_record["bytes_in"]) == 0, get_record


def test_access_log_json(start_proxy: Callable[..., Any], client_for: Callable[..., Any], bucket: str,
                         capfd: Any) -> None:
    capfd.readouterr()
    stderr = Stderr(capfd)
    proxy = start_proxy(bucket, log_format="json")
    client = client_for(proxy)
    put = client.put_object(Bucket=bucket, Key="k", Body=b"0123456789")
    rid = put["ResponseMetadata"]["HTTPHeaders"]["x-amz-request-id"]
    record = stderr.records_for([rid])[rid][0]
    lines = [line for line in stderr.text.splitlines() if line.strip()]
    not_json = []
    for line in lines:
        try:
            assert isinstance(json.loads(line), dict)
        except (ValueError, AssertionError):
            not_json.append(line)
    assert not not_json, f"lines of a log_format='json' server that are not JSON objects: {not_json[:5]}"
    assert record["msg"] == "request" and record["level"] == "INFO", record
    missing = [f for f in ACCESS_LOG_FIELDS if f not in record]
    assert not missing, (missing, record)
    assert record["access_key"] == CLIENT_ACCESS_KEY
    assert int(record["status"]) == 200 and int(record["bytes_in"]) == 10
    assert isinstance(record["duration_ms"], (int, float)), record


@pytest.mark.parametrize("level", ["warn", "error"])
def test_log_level_above_info_hides_access_lines(start_proxy: Callable[..., Any], client_for: Callable[..., Any],
                                                 bucket: str, capfd: Any, level: str) -> None:
    stderr = Stderr(capfd)
    quiet = start_proxy(bucket, log_level=level)
    loud = start_proxy(bucket, log_level="debug")
    quiet_id = client_for(quiet).put_object(Bucket=bucket, Key="q", Body=b"q")["ResponseMetadata"][
        "HTTPHeaders"]["x-amz-request-id"]
    loud_id = client_for(loud).put_object(Bucket=bucket, Key="l", Body=b"l")["ResponseMetadata"][
        "HTTPHeaders"]["x-amz-request-id"]
    stderr.records_for([loud_id])  # debug includes info: the access line is there
    time.sleep(0.2)
    assert quiet_id not in stderr.read(), f"log_level={level!r} still logged request {quiet_id}"
    assert all(str(r.get("level")).upper() in ("DEBUG", "INFO", "WARN", "ERROR") for r in log_records(stderr.text))


def test_log_settings_from_the_environment(start_proxy: Callable[..., Any], client_for: Callable[..., Any],
                                           bucket: str, capfd: Any, monkeypatch: Any) -> None:
    stderr = Stderr(capfd)
    monkeypatch.setenv("OSP_LOG_FORMAT", "json")
    monkeypatch.setenv("OSP_LOG_LEVEL", "info")
    from_env = start_proxy(bucket)
    rid = client_for(from_env).put_object(Bucket=bucket, Key="e", Body=b"e")["ResponseMetadata"][
        "HTTPHeaders"]["x-amz-request-id"]
    stderr.records_for([rid])
    line = next(line for line in stderr.text.splitlines() if rid in line)
    assert json.loads(line)["request_id"] == rid, line

    # An explicit keyword wins over the environment.
    explicit = start_proxy(bucket, log_format="text")
    rid = client_for(explicit).put_object(Bucket=bucket, Key="t", Body=b"t")["ResponseMetadata"][
        "HTTPHeaders"]["x-amz-request-id"]
    stderr.records_for([rid])
    line = next(line for line in stderr.text.splitlines() if rid in line)
    assert line.startswith("time=") and f"request_id={rid}" in line, line

    monkeypatch.setenv("OSP_LOG_LEVEL", "error")
    silent = start_proxy(bucket)
    rid = client_for(silent).put_object(Bucket=bucket, Key="s", Body=b"s")["ResponseMetadata"][
        "HTTPHeaders"]["x-amz-request-id"]
    time.sleep(0.2)
    assert rid not in stderr.read()


def test_bad_log_settings_are_refused(backend: Any, bucket: str) -> None:
    entry = {bucket: backend.entry()}
    with pytest.raises(ValueError, match="log_level"):
        ProxyServerConfig(entry, http_port=0, log_level="verbose")
    with pytest.raises(ValueError, match="log_format"):
        ProxyServerConfig(entry, http_port=0, log_format="xml")
    for level in ("debug", "info", "warn", "error"):
        assert ProxyServerConfig(entry, http_port=0, log_level=level).log_level == level
    for fmt in ("text", "json"):
        assert ProxyServerConfig(entry, http_port=0, log_format=fmt).log_format == fmt


# --------------------------------------------------------------------------
# secrets never logged


def _signature_of(authorization: str) -> Optional[str]:
    m = re.search(r"Signature=([0-9a-f]{64})", authorization)
    return m.group(1) if m else None


class SignatureTap:
    """Keeps the SigV4 signatures a boto3 client sends."""

    def __init__(self, client: Any) -> None:
        self.signatures: List[str] = []
        client.meta.events.register("before-send.s3", self._keep)

    def _keep(self, request: Any, **kwargs: Any) -> None:
        value = request.headers.get("Authorization")
        if isinstance(value, bytes):
            value = value.decode()
        signature = _signature_of(value or "")
        if signature:
            self.signatures.append(signature)


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_no_secret_in_any_log_line(start_proxy: Callable[..., Any], make_bucket: Callable[..., str], backend: Any,
                                   iam: IamServer, front: BearerFront, capfd: Any, caplog: Any,
                                   log_format: str) -> None:
    stderr = Stderr(capfd)
    plain, by_fetcher, ibm, ibm_bad = (make_bucket("plain"), make_bucket("fetched"), make_bucket("ibm"),
                                       make_bucket("ibmbad"))
    fetched_key, fetched_secret = "FETCHEDKEY" + secrets.token_hex(5).upper(), "fetched-secret-" + secrets.token_hex(16)
    wrong_secret = "wrong-secret-" + secrets.token_hex(16)
    unknown_secret = "unknown-secret-" + secrets.token_hex(16)
    client_bearer = "client-bearer-" + secrets.token_hex(16)

    def hmac_fetcher(access_key: str) -> Optional[str]:
        return fetched_secret if access_key == fetched_key else None

    def bucket_creds_fetcher(token: str, name: str) -> Dict[str, str]:
        return {"access_key": BACKEND_ACCESS_KEY, "secret_key": BACKEND_SECRET_KEY}

    def validator(token: str, name: str) -> bool:
        return not (token == OTHER_ACCESS_KEY and name == plain)

    cos_map = {by_fetcher: backend.entry(creds=False), ibm: front.entry(API_KEY),
               ibm_bad: front.entry(BAD_API_KEY)}
    proxy = start_proxy(plain, cos_map=cos_map, hmac_fetcher=hmac_fetcher, bucket_creds_fetcher=bucket_creds_fetcher,
                        validator=validator, iam_url=iam.url, log_level="debug", log_format=log_format)
    url = proxy.endpoint_url
    signatures: List[str] = []
    ids: List[str] = []

    def boto(access_key: str, secret_key: str) -> Tuple[Any, SignatureTap]:
        c = make_client(url, access_key, secret_key)
        return c, SignatureTap(c)

    good, good_tap = boto(CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY)
    other, other_tap = boto(OTHER_ACCESS_KEY, OTHER_SECRET_KEY)
    fetched, fetched_tap = boto(fetched_key, fetched_secret)
    wrong, wrong_tap = boto(CLIENT_ACCESS_KEY, wrong_secret)
    unknown, unknown_tap = boto("NOSUCHKEY" + secrets.token_hex(5).upper(), unknown_secret)

    def attempt(call: Callable[[], Any]) -> None:
        try:
            call()
        except ClientError:
            pass

    # good requests on every kind of bucket
    for name in (plain, by_fetcher, ibm):
        good.put_object(Bucket=name, Key="a", Body=b"payload a")
        good.get_object(Bucket=name, Key="a")["Body"].read()
        good.list_objects_v2(Bucket=name)
        fetched.head_object(Bucket=name, Key="a")
    good.list_buckets()
    upload = good.create_multipart_upload(Bucket=plain, Key="mp")
    part = good.upload_part(Bucket=plain, Key="mp", UploadId=upload["UploadId"], PartNumber=1, Body=b"p" * 100)
    good.complete_multipart_upload(Bucket=plain, Key="mp", UploadId=upload["UploadId"],
                                   MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]})
    good.copy_object(Bucket=plain, Key="copy", CopySource={"Bucket": plain, "Key": "a"})
    # bad ones: wrong secret, unknown key, denied, IAM refusing the API key, missing key
    attempt(lambda: wrong.get_object(Bucket=plain, Key="a"))
    attempt(lambda: wrong.put_object(Bucket=plain, Key="w", Body=b""))
    attempt(lambda: unknown.list_objects_v2(Bucket=plain))
    attempt(lambda: other.get_object(Bucket=plain, Key="a"))
    attempt(lambda: good.list_objects_v2(Bucket=ibm_bad))
    attempt(lambda: good.get_object(Bucket=plain, Key="nothing-here"))
    # presigned URLs: good, tampered, signed with a wrong secret
    presigned = [
        good.generate_presigned_url("get_object", Params={"Bucket": plain, "Key": "a"}, ExpiresIn=300),
        fetched.generate_presigned_url("get_object", Params={"Bucket": ibm, "Key": "a"}, ExpiresIn=300),
        wrong.generate_presigned_url("get_object", Params={"Bucket": plain, "Key": "a"}, ExpiresIn=300),
    ]
    tampered = re.sub(r"(X-Amz-Signature=)([0-9a-f]{64})", lambda m: m.group(1) + ac.flip(m.group(2)), presigned[0])
    presigned.append(tampered)
    statuses = [requests.get(u, timeout=20).status_code for u in presigned]
    assert statuses == [200, 200, 403, 403], statuses
    for u in presigned:
        signatures += urllib.parse.parse_qs(urllib.parse.urlsplit(u).query)["X-Amz-Signature"]
    # aws-chunked uploads with signed chunks: good and forged
    chunked = ac.build_upload("PUT", f"{url}/{plain}/chunked", secrets.token_bytes(20000), ac.STREAMING_SIGNED_TRAILER)
    assert ac.send(chunked).status_code == 200
    forged = ac.build_upload("PUT", f"{url}/{plain}/forged", secrets.token_bytes(20000), ac.STREAMING_SIGNED)
    forged.chunks[1].signature = ac.flip(forged.chunks[1].signature or "")
    assert ac.send(forged).status_code in (400, 403)
    for up in (chunked, forged):
        signatures += [c.signature for c in up.chunks if c.signature]
        signatures += [s for s in (up.trailer_signature, _signature_of(up.headers["Authorization"])) if s]
    # a client sending a bearer token, and a raw request signed with a wrong secret
    r = requests.get(f"{url}/{plain}/a", headers={"Authorization": f"Bearer {client_bearer}"}, timeout=20)
    assert r.status_code in (400, 403), r.status_code
    ids.append(request_id(r))
    signed = send_signed("GET", f"{url}/{plain}/a", secret_key=wrong_secret)
    assert signed.status_code == 403
    ids.append(request_id(signed))

    for tap in (good_tap, other_tap, fetched_tap, wrong_tap, unknown_tap):
        signatures += tap.signatures
    for c in (good, wrong, unknown):
        ids += [r.headers["x-amz-request-id"] for r in c.raw_responses.responses if "x-amz-request-id" in r.headers]
    tokens = iam.tokens_of(API_KEY)
    assert tokens, "the IBM bucket was never reached with a bearer token"
    assert len(signatures) > 30

    # The workload was logged (at debug level), so the check below is not vacuous.
    stderr.records_for(ids)
    time.sleep(0.2)
    text = stderr.read() + "\n" + caplog.text
    assert len(access_records(text)) >= len(ids)
    # Control: the grep below sees the log (identifiers, not secrets, are in it).
    assert CLIENT_ACCESS_KEY in text and fetched_key in text and plain in text

    named = {
        "client secret": CLIENT_SECRET_KEY, "other client secret": OTHER_SECRET_KEY,
        "fetched client secret": fetched_secret, "wrong secret": wrong_secret, "unknown key's secret": unknown_secret,
        "backend secret": BACKEND_SECRET_KEY, "API key": API_KEY, "refused API key": BAD_API_KEY,
        "client's bearer token": client_bearer,
    }
    named.update({f"IAM token {i}": t for i, t in enumerate(tokens)})
    named.update({f"IAM token {i} signature part": t.rsplit(".", 1)[1] for i, t in enumerate(tokens)})
    named.update({f"signature {s}": s for s in set(signatures)})
    named.update({f"signature prefix {s[:16]}": s[:16] for s in set(signatures)})
    leaks = {what: [line[:300] for line in text.splitlines() if value in line][:2]
             for what, value in named.items() if value in text}
    assert not leaks, f"secrets in the log (log_level=debug, log_format={log_format!r}): {leaks}"
