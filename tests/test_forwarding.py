"""The forwarding rule and request screening (issue 12, items 4-7, 9, 14 and
the structural rule): a header reaches the backend only if the client signed
it, it is on the short allowlist of headers S3 clients leave unsigned, or
the proxy sets it itself; copy sources, header names, Connection tokens and
keys that could make the backend read a request differently from what was
verified and authorized are refused before anything is forwarded; and
everything that needs no secret is checked before a secret is looked up.

What a backend receives is seen with the ``recorder`` fixture (an
s3wire.RecordingBackend that records every request whole); what is stored,
with the ``direct`` client at versitygw. Raw requests are rendered, signed
and sent by s3wire (through helpers' raw_signed_headers and send_raw).
The rule against every mutation of real signed requests (boto3, the aws
cli, presigned URLs) is test_mutations.py.
"""

from __future__ import annotations

import datetime
import hashlib
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import pytest
import requests

from helpers import (
    BACKEND_ACCESS_KEY,
    BACKEND_SECRET_KEY,
    RAW_TIMEOUT,
    REGION,
    CallLog,
    assert_xml_error,
    object_exists,
    presign,
    raw_signed_headers,
    send_raw,
    stored_body,
    stored_keys,
    utcnow,
)
from s3wire import Headers, RecordingBackend, Reply, amz_now, authorization, exchange, render, sign_raw

TIMEOUT = RAW_TIMEOUT


@pytest.fixture
def rproxy(start_proxy: Callable[..., Any], backend: Any, recorder: RecordingBackend) -> Any:
    """A proxy whose buckets "allowed" and "other" are on the recorder."""
    entry = backend.entry(port=recorder.port)
    return start_proxy(cos_map={"allowed": entry, "other": dict(entry)})


def refused(reply: Reply, recorder: RecordingBackend, status: int, code: str) -> None:
    """Refused with this S3 error, and nothing reached the backend."""
    assert_xml_error(reply, status, code)
    assert recorder.requests == [], [(r.method, r.target, r.headers) for r in recorder.requests]


def put(proxy: Any, target: str, body: bytes = b"x", *, extra: Sequence[Tuple[str, str]] = (),
        unsigned: Sequence[Tuple[str, str]] = ()) -> Reply:
    """A raw PUT signed over ``extra`` (and the usual headers), with
    ``unsigned`` added after signing."""
    return send_raw(proxy, "PUT", target, raw_signed_headers(proxy, "PUT", target, body, extra=extra) + list(unsigned),
                    body)


# --------------------------------------------------------------------------
# item 4: copy sources


def test_copy_source_given_twice_is_refused(rproxy: Any, recorder: RecordingBackend) -> None:
    """Two X-Amz-Copy-Source headers, both signed (canonically joined): the
    proxy checked the first, a backend could take the second."""
    reply = put(rproxy, "/allowed/dst", b"", extra=[("X-Amz-Copy-Source", "allowed/src"),
                                                    ("X-Amz-Copy-Source", "other/secret")])
    refused(reply, recorder, 400, "InvalidArgument")


@pytest.mark.parametrize("values", [
    pytest.param(["", "other/secret"], id="empty-then-source"),
    pytest.param([""], id="empty"),
    pytest.param(["   "], id="blank"),
])
def test_empty_copy_source_is_refused(rproxy: Any, recorder: RecordingBackend, values: List[str]) -> None:
    """A present but empty copy source is not "no copy": an empty first value
    made the request a PutObject whose source nobody checked."""
    reply = put(rproxy, "/allowed/dst", b"", extra=[("X-Amz-Copy-Source", v) for v in values])
    refused(reply, recorder, 400, "InvalidArgument")


@pytest.mark.parametrize("name", ["x-amz-copy-source", "X-Amz-Copy-Source", "x-amz-copy-source-range"])
def test_copy_source_query_parameter_is_refused(rproxy: Any, recorder: RecordingBackend, name: str) -> None:
    """The copy source in the query (S3 takes x-amz-* headers as query
    parameters of presigned URLs): never checked by the proxy, so refused."""
    target = f"/allowed/dst?{name}=other%2Fsecret"
    refused(put(rproxy, target, b""), recorder, 400, "InvalidArgument")


@pytest.mark.parametrize("source", [
    "allowed/a/../secret",
    "allowed/../other/secret",
    "allowed/a/%2e%2e/secret",
    "allowed/a/%2E%2E/secret",
    "allowed/a/.%2e/secret",
    "allowed/..%2Fother%2Fsecret",
    "allowed/./secret",
    "/allowed/a/../../other/secret",
    "allowed/a/../secret?versionId=1",
])
def test_copy_source_with_dot_segments_is_refused(rproxy: Any, recorder: RecordingBackend, source: str) -> None:
    """A source key with '.' or '..' segments, plain or percent-encoded, as
    object keys in the path already are."""
    reply = put(rproxy, "/allowed/dst", b"", extra=[("X-Amz-Copy-Source", source)])
    refused(reply, recorder, 400, "InvalidArgument")


@pytest.mark.parametrize("source", ["allowed/%FF", "allowed/a%C3", "allowed/%ED%A0%80"])
def test_copy_source_key_not_utf8_is_refused(rproxy: Any, recorder: RecordingBackend, source: str) -> None:
    reply = put(rproxy, "/allowed/dst", b"", extra=[("X-Amz-Copy-Source", source)])
    refused(reply, recorder, 400, "InvalidArgument")


@pytest.mark.parametrize("source, forwarded", [
    ("/allowed/a%20b/c.txt?versionId=v1", "allowed/a%20b/c.txt?versionId=v1"),
    ("allowed/a+b c", "allowed/a%2Bb%20c"),
    ("allowed/d/%C3%BC%2Bx?versionId=a%2Bb", "allowed/d/%C3%BC%2Bx?versionId=a%2Bb"),
])
def test_valid_copy_source_reaches_the_backend_as_authorized(rproxy: Any, recorder: RecordingBackend, source: str,
                                                              forwarded: str) -> None:
    """A well-formed copy source is forwarded as the proxy read it, in
    canonical encoding: nothing left for the backend to decode otherwise."""
    reply = put(rproxy, "/allowed/dst", b"", extra=[("X-Amz-Copy-Source", source)])
    assert reply.status == 200, reply.body[:300]
    assert recorder.only().header("x-amz-copy-source") == [forwarded]


@pytest.mark.parametrize("source", ["allowed/k?versionId=1&x=2", "allowed/k?partNumber=1", "allowed/k?versionId=1&versionId=2"])
def test_copy_source_with_other_parameters_is_refused(rproxy: Any, recorder: RecordingBackend, source: str) -> None:
    refused(put(rproxy, "/allowed/dst", b"", extra=[("X-Amz-Copy-Source", source)]), recorder, 400, "InvalidArgument")


def test_copy_source_plus_is_the_key_the_validator_saw(start_proxy: Callable[..., Any], direct: Any,
                                                       bucket: str) -> None:
    """A raw '+' in the copy source: the proxy reads a '+', versitygw would
    read a space -- another object than the one authorized."""
    seen = CallLog()

    def validator(token: str, bucket: str, method: str, key: str, operation: str) -> bool:
        seen.add(operation, key)
        return True

    proxy = start_proxy(bucket, validator=validator)
    direct.put_object(Bucket=bucket, Key="a+b", Body=b"the authorized object")
    direct.put_object(Bucket=bucket, Key="a b", Body=b"another object")
    reply = put(proxy, f"/{bucket}/dst", b"", extra=[("X-Amz-Copy-Source", f"{bucket}/a+b")])
    assert reply.status == 200, reply.body[:300]
    assert ("GetObject", "a+b") in seen.calls
    assert stored_body(direct, bucket, "dst") == b"the authorized object"


def test_copy_with_dot_segment_source_stores_nothing(client: Any, direct: Any, bucket: str) -> None:
    """Against versitygw, through boto3: nothing copied."""
    direct.put_object(Bucket=bucket, Key="secret", Body=b"secret")
    with pytest.raises(Exception) as exc:
        client.copy_object(Bucket=bucket, Key="dst", CopySource=f"{bucket}/a/../secret")
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400, exc.value.response
    assert exc.value.response["Error"]["Code"] == "InvalidArgument"
    assert not object_exists(direct, bucket, "dst")


# --------------------------------------------------------------------------
# item 5: header names with '_'


@pytest.mark.parametrize("signed_too", [False, True], ids=["unsigned", "signed"])
@pytest.mark.parametrize("name", ["X_Amz_Copy_Source", "x_amz_copy_source", "X-Amz_Copy-Source", "Content_Type",
                                  "Some_Header"])
def test_header_name_with_underscore_is_refused(rproxy: Any, recorder: RecordingBackend, name: str,
                                                 signed_too: bool) -> None:
    """Servers that fold '_' into '-' would read X_Amz_Copy_Source as a copy
    source; the proxy would have signed it for them."""
    header = [(name, "other/secret")]
    reply = put(rproxy, "/allowed/dst", b"", extra=header if signed_too else (),
                unsigned=() if signed_too else header)
    refused(reply, recorder, 400, "InvalidArgument")


# --------------------------------------------------------------------------
# item 6: Connection


@pytest.mark.parametrize("connection", [
    "X-Amz-Copy-Source",
    "close, x-amz-copy-source",
    "x-amz-meta-a",
    "X-Amz-Content-Sha256",
    "x-amz-date",
    "x-amz-anything",
    "Authorization",
    "Host",
    "Content-Length",
    "Transfer-Encoding",
    "Cache-Control",     # signed
    "Range",             # allowlisted unsigned
    "Content-Type",      # allowlisted unsigned
    "If-Match",
])
def test_connection_naming_a_forwarded_header_is_refused(rproxy: Any, recorder: RecordingBackend,
                                                         connection: str) -> None:
    """A Connection header that would remove a header the backend otherwise
    gets: X-Amz-Copy-Source named in it turned an authorized copy into a
    plain PutObject of the client's body."""
    reply = put(rproxy, "/allowed/dst", b"body", extra=[("X-Amz-Copy-Source", "allowed/src"),
                                                        ("X-Amz-Meta-A", "1"), ("Cache-Control", "no-store")],
                unsigned=[("Connection", connection)])
    refused(reply, recorder, 400, "InvalidArgument")


@pytest.mark.parametrize("connection", ["close", "keep-alive", "Keep-Alive, TE", "upgrade",
                                        "X-Forwarded-For", "Expect, Via", "X-Hop-Only", "keep-alive, X-Real-Ip"])
def test_connection_naming_only_dropped_headers_is_accepted(rproxy: Any, recorder: RecordingBackend,
                                                            connection: str) -> None:
    reply = put(rproxy, "/allowed/k", b"body", extra=[("X-Amz-Meta-A", "1")],
                unsigned=[("Connection", connection), ("X-Forwarded-For", "203.0.113.7"),
                          ("X-Hop-Only", "1")])
    assert reply.status == 200, reply.body[:300]
    got = recorder.only()
    assert got.header("x-amz-meta-a") == ["1"]
    assert got.body.endswith(b"body") or b"body" in got.body
    for gone in ("x-forwarded-for", "x-hop-only", "x-real-ip", "via"):
        assert got.header(gone) == [], got.headers


# --------------------------------------------------------------------------
# item 7: signed header values reach the backend as signed


# boto3 takes ASCII metadata only; tabs are left out because SDKs disagree
# on them (botocore collapses any whitespace, the SigV4 spec, the Go SDK
# and versitygw only spaces: versitygw refuses botocore's tabs itself).
METADATA = {
    "runs": "a   b    c",
    "mixed": "x , y ,, z",
    "lead": "   leading",
    "trail": "trailing   ",
    "inner-and-outer": "  p   q  ",
}


def test_metadata_round_trips_byte_exact(client: Any, direct: Any, bucket: str) -> None:
    """What boto3 sends through the proxy is stored exactly as the same
    upload sent to versitygw directly (the proxy collapsed inner runs of
    spaces in the request it forwarded)."""
    for name, value in METADATA.items():
        meta = {name: value}
        direct.put_object(Bucket=bucket, Key=f"direct-{name}", Body=b"m", Metadata=meta)
        client.put_object(Bucket=bucket, Key=f"proxy-{name}", Body=b"m", Metadata=meta)
        want = direct.head_object(Bucket=bucket, Key=f"direct-{name}")["Metadata"]
        got = direct.head_object(Bucket=bucket, Key=f"proxy-{name}")["Metadata"]
        assert got == want, (name, value, got, want)
    # Inner runs survive (HTTP itself trims the ends of a field value).
    assert direct.head_object(Bucket=bucket, Key="proxy-runs")["Metadata"] == {"runs": "a   b    c"}
    assert client.head_object(Bucket=bucket, Key="proxy-runs")["Metadata"] == {"runs": "a   b    c"}
    assert direct.head_object(Bucket=bucket, Key="proxy-inner-and-outer")["Metadata"] == {"inner-and-outer": "p   q"}


UTF8_METADATA = ["grüße  aus   zürich", "日本  語", "emoji 🎉   x"]


@pytest.mark.parametrize("value", UTF8_METADATA)
def test_utf8_metadata_round_trips_byte_exact(proxy: Any, backend: Any, direct: Any, bucket: str,
                                              value: str) -> None:
    """UTF-8 bytes in a signed x-amz-meta value (raw HTTP: boto3 sends
    ASCII only), through the proxy and straight to versitygw: stored alike."""
    via_proxy = put(proxy, f"/{bucket}/proxy", extra=[("X-Amz-Meta-U", value)])
    assert via_proxy.status == 200, via_proxy.body[:300]
    amz_date, payload = amz_now(), hashlib.sha256(b"x").hexdigest()
    headers: Headers = [("Host", f"127.0.0.1:{backend.port}"), ("X-Amz-Date", amz_date),
                        ("X-Amz-Content-Sha256", payload), ("X-Amz-Meta-U", value)]
    auth = authorization(*sign_raw("PUT", f"/{bucket}/direct", headers, payload, amz_date,
                                   access_key=BACKEND_ACCESS_KEY, secret_key=BACKEND_SECRET_KEY))
    raw = render("PUT", f"/{bucket}/direct", headers + [("Authorization", auth), ("Content-Length", "1")]) + b"x"
    straight = exchange(backend.port, raw, method="PUT")
    assert straight.status == 200, straight.body[:300]
    got = direct.head_object(Bucket=bucket, Key="proxy")["Metadata"]
    want = direct.head_object(Bucket=bucket, Key="direct")["Metadata"]
    assert got == want
    assert got["u"].encode("latin-1") == value.encode("utf-8")  # http.client reads header bytes as latin-1


def test_signed_header_value_reaches_the_backend_unchanged(rproxy: Any, recorder: RecordingBackend) -> None:
    reply = put(rproxy, "/allowed/k", extra=[("X-Amz-Meta-A", "a   b"), ("Cache-Control", "max-age=1,   private")])
    assert reply.status == 200, reply.body[:300]
    got = recorder.only()
    assert got.header("x-amz-meta-a") == ["a   b"]
    assert got.header("cache-control") == ["max-age=1,   private"]


# --------------------------------------------------------------------------
# the forwarding rule


# Headers a client may leave unsigned and that still reach the backend.
ALLOWLISTED = [
    ("Content-Type", "text/plain"),
    ("Cache-Control", "no-store"),
    ("Content-MD5", "nVt/6sSbQGy0a0tqj9CCEg=="),
    ("User-Agent", "curl/8"),
    ("Range", "bytes=0-1"),
    ("If-Match", '"etag"'),
    ("If-None-Match", '"other"'),
    ("If-Modified-Since", "Sat, 01 Jan 2000 00:00:00 GMT"),
    ("If-Unmodified-Since", "Sat, 01 Jan 2000 00:00:00 GMT"),
]

# Headers that change what the backend does or stores: dropped unless signed.
NOT_ALLOWLISTED = [
    ("Content-Disposition", "attachment"),
    ("Content-Encoding", "gzip"),
    ("Content-Language", "de"),
    ("Expires", "Sat, 01 Jan 2000 00:00:00 GMT"),
    ("X-Custom", "1"),
    ("Accept-Encoding", "gzip"),
    ("Origin", "https://evil.example"),
    ("Cookie", "a=b"),
]


def test_unsigned_headers_are_dropped_and_allowlisted_ones_pass(rproxy: Any, recorder: RecordingBackend) -> None:
    reply = put(rproxy, "/allowed/k", unsigned=ALLOWLISTED + NOT_ALLOWLISTED)
    assert reply.status == 200, reply.body[:300]
    got = recorder.only()
    for name, value in ALLOWLISTED:
        assert got.header(name) == [value], (name, got.headers)
    for name, _ in NOT_ALLOWLISTED:
        assert got.header(name) == [], (name, got.headers)


def test_signed_headers_pass(rproxy: Any, recorder: RecordingBackend) -> None:
    reply = put(rproxy, "/allowed/k", extra=NOT_ALLOWLISTED)
    assert reply.status == 200, reply.body[:300]
    got = recorder.only()
    for name, value in NOT_ALLOWLISTED:
        if name == "Content-Encoding":
            continue  # the proxy frames an unsigned body, and keeps gzip
        assert got.header(name) == [value], (name, got.headers)


def test_unsigned_content_headers_are_not_stored(client: Any, direct: Any, bucket: str) -> None:
    """boto3 through the proxy to versitygw: headers added after signing
    do not change the stored object, but for the allowlisted Cache-Control
    (which the JavaScript SDK never signs)."""

    def add(request: Any, **kwargs: Any) -> None:
        request.headers["Cache-Control"] = "max-age=31536000"
        request.headers["Content-Disposition"] = "attachment; filename=evil.exe"
        request.headers["Content-Language"] = "xx"

    client.meta.events.register("before-send.s3", add)
    client.put_object(Bucket=bucket, Key="k", Body=b"body", ContentType="text/plain")
    head = direct.head_object(Bucket=bucket, Key="k")
    assert head["CacheControl"] == "max-age=31536000", head
    assert "ContentDisposition" not in head, head
    assert "ContentLanguage" not in head, head
    assert head["ContentType"] == "text/plain"
    assert stored_body(direct, bucket, "k") == b"body"


def test_presigned_request_forwards_only_signed_and_allowlisted(rproxy: Any, recorder: RecordingBackend) -> None:
    url = presign("GET", rproxy.endpoint_url, "allowed", "k", headers={"x-amz-meta-x": "1"})
    response = requests.get(url, timeout=TIMEOUT, headers={
        "x-amz-meta-x": "1", "Range": "bytes=0-3", "If-None-Match": '"e"', "Content-Disposition": "attachment",
        "X-Custom": "1", "Accept-Encoding": "identity"})
    assert response.status_code == 200, response.content[:300]
    got = recorder.only()
    assert got.header("range") == ["bytes=0-3"]
    assert got.header("if-none-match") == ['"e"']
    assert got.header("x-amz-meta-x") == ["1"]
    for gone in ("content-disposition", "x-custom", "accept-encoding"):
        assert got.header(gone) == [], got.headers
    assert "X-Amz-Signature" not in got.target and "X-Amz-Credential" not in got.target


@pytest.mark.parametrize("name, values, sign", [
    pytest.param("Cache-Control", ["no-store", "public"], True, id="signed-twice"),
    pytest.param("X-Amz-Meta-A", ["1", "2"], True, id="meta-signed-twice"),
    pytest.param("Content-Type", ["text/plain", "text/html"], False, id="allowlisted-unsigned-twice"),
    pytest.param("Range", ["bytes=0-1", "bytes=5-9"], False, id="range-twice"),
])
def test_forwarded_header_given_twice_is_refused(rproxy: Any, recorder: RecordingBackend, name: str,
                                                 values: List[str], sign: bool) -> None:
    pairs = [(name, v) for v in values]
    reply = put(rproxy, "/allowed/k", extra=pairs if sign else (), unsigned=() if sign else pairs)
    refused(reply, recorder, 400, "InvalidArgument")


def test_case_folded_duplicate_is_refused(rproxy: Any, recorder: RecordingBackend) -> None:
    """x-amz-meta-a and X-AMZ-META-A are one header twice."""
    reply = put(rproxy, "/allowed/k", extra=[("x-amz-meta-a", "1"), ("X-AMZ-META-A", "2")])
    refused(reply, recorder, 400, "InvalidArgument")


def test_dropped_headers_may_repeat(rproxy: Any, recorder: RecordingBackend) -> None:
    """What a chain of load balancers adds, repeated, is dropped, not refused."""
    reply = put(rproxy, "/allowed/k", unsigned=[("X-Forwarded-For", "1.2.3.4"), ("X-Forwarded-For", "5.6.7.8"),
                                                ("Via", "1.1 a"), ("Via", "1.1 b"), ("X-Custom", "1"),
                                                ("X-Custom", "2")])
    assert reply.status == 200, reply.body[:300]
    got = recorder.only()
    for gone in ("x-forwarded-for", "via", "x-custom"):
        assert got.header(gone) == [], got.headers


def test_dropped_header_names_are_logged_at_debug_without_values(start_proxy: Callable[..., Any], backend: Any,
                                                                 recorder: RecordingBackend, capfd: Any) -> None:
    proxy = start_proxy(cos_map={"allowed": backend.entry(port=recorder.port)}, log_level="debug")
    reply = put(proxy, "/allowed/k", unsigned=[("X-Secretish", "VALUE-NOT-FOR-LOGS")])
    assert reply.status == 200, reply.body[:300]
    err = capfd.readouterr().err
    assert "X-Secretish" in err, err[-2000:]
    assert "VALUE-NOT-FOR-LOGS" not in err


def test_without_signature_checks_the_signed_list_still_applies(start_proxy: Callable[..., Any], backend: Any,
                                                                 recorder: RecordingBackend) -> None:
    """skip_signature_validation skips the signature, not the rule: what the
    Authorization header claims as signed passes, nothing else does."""
    proxy = start_proxy(cos_map={"allowed": backend.entry(port=recorder.port)}, skip_signature_validation=True)
    headers = raw_signed_headers(proxy, "PUT", "/allowed/k", b"x", extra=[("X-Amz-Meta-A", "1")])
    headers = [(n, v[:-8] + "00000000" if n == "Authorization" else v) for n, v in headers]  # a wrong signature
    reply = send_raw(proxy, "PUT", "/allowed/k", headers + [("Content-Disposition", "attachment"), ("Range", "bytes=0-1")], b"x")
    assert reply.status == 200, reply.body[:300]
    got = recorder.only()
    assert got.header("x-amz-meta-a") == ["1"] and got.header("range") == ["bytes=0-1"]
    assert got.header("content-disposition") == [], got.headers
    unsigned_amz = send_raw(proxy, "PUT", "/allowed/k", headers + [("X-Amz-Copy-Source", "other/secret")], b"x")
    refused_amz = assert_xml_error(unsigned_amz, 403, "AccessDenied")
    assert "x-amz-copy-source" in refused_amz["HeadersNotSigned"]  # S3 names them there, not in the Message
    assert len(recorder.requests) == 1


# --------------------------------------------------------------------------
# item 9: no secret lookup before the checks that need none


def _header_auth(proxy: Any, target: str, *, amz_date: Optional[str] = None, credential: Optional[str] = None,
                 signed_headers: Optional[str] = None, signature: Optional[str] = None,
                 extra_unsigned: Sequence[Tuple[str, str]] = ()) -> Headers:
    amz_date = amz_date or amz_now()
    payload = hashlib.sha256(b"").hexdigest()
    headers: Headers = [("Host", f"127.0.0.1:{proxy.http_port}"), ("X-Amz-Date", amz_date),
                        ("X-Amz-Content-Sha256", payload)]
    cred, names, sig = sign_raw("GET", target, headers, payload, amz_date if amz_date[:8].isdigit() else
                                "20200101T000000Z", access_key=UNKNOWN_KEY, secret_key="whatever")
    auth = authorization(credential or cred, signed_headers or names, signature or sig)
    return headers + [("Authorization", auth)] + list(extra_unsigned)


UNKNOWN_KEY = "AKIDNOTINTHEKEYSTORE"


def _skewed(minutes: int) -> str:
    return (utcnow() + datetime.timedelta(minutes=minutes)).strftime("%Y%m%dT%H%M%SZ")


def _scope(date: str, region: str = REGION, service: str = "s3", end: str = "aws4_request") -> str:
    return f"{UNKNOWN_KEY}/{date}/{region}/{service}/{end}"


# Each case makes its options when it runs: a date taken at collection
# would be minutes old by then (a +20 min skew shrinks under 15).
HEADER_CASES: List[Any] = [
    pytest.param(lambda: dict(amz_date=_skewed(-20)), 403, "RequestTimeTooSkewed", id="skewed-past"),
    pytest.param(lambda: dict(amz_date=_skewed(20)), 403, "RequestTimeTooSkewed", id="skewed-future"),
    pytest.param(lambda: dict(amz_date="2020-01-01T00:00:00Z"), 403, "AccessDenied", id="date-format"),
    pytest.param(lambda: dict(credential=_scope("20200101")), 400, "AuthorizationHeaderMalformed", id="scope-date"),
    pytest.param(lambda: dict(credential=_scope(utcnow().strftime("%Y%m%d"), service="ec2")), 400,
                 "AuthorizationHeaderMalformed", id="service"),
    pytest.param(lambda: dict(credential=_scope(utcnow().strftime("%Y%m%d"), region="")), 400,
                 "AuthorizationHeaderMalformed", id="empty-region"),
    pytest.param(lambda: dict(credential=_scope(utcnow().strftime("%Y%m%d"), end="aws5_request")), 400,
                 "AuthorizationHeaderMalformed", id="terminator"),
    pytest.param(lambda: dict(signature="a" * 63), 400, "AuthorizationHeaderMalformed", id="signature-format"),
    pytest.param(lambda: dict(signed_headers="x-amz-content-sha256;x-amz-date"), 400, "AuthorizationHeaderMalformed",
                 id="host-not-signed"),
    pytest.param(lambda: dict(extra_unsigned=[("X-Amz-Meta-A", "1")]), 403, "AccessDenied", id="unsigned-amz-header"),
    pytest.param(lambda: dict(extra_unsigned=[("Connection", "x-amz-date")]), 400, "InvalidArgument",
                 id="connection-names-a-signed-header"),
    pytest.param(lambda: dict(extra_unsigned=[("Range", "bytes=0-1"), ("Range", "bytes=2-3")]), 400, "InvalidArgument",
                 id="forwarded-header-twice"),
    pytest.param(lambda: dict(extra_unsigned=[("X_Amz_Meta_A", "1")]), 400, "InvalidArgument", id="underscore"),
]


@pytest.fixture
def fetcher_proxy(start_proxy: Callable[..., Any], bucket: str) -> Tuple[Any, CallLog]:
    log = CallLog()

    def hmac_fetcher(access_key: str) -> Optional[str]:
        log.add(access_key)
        return None

    return start_proxy(bucket, hmac_keystore=None, hmac_fetcher=hmac_fetcher), log


@pytest.mark.parametrize("make_options, status, code", HEADER_CASES)
def test_header_auth_checks_needing_no_secret_come_before_the_lookup(
        fetcher_proxy: Tuple[Any, CallLog], bucket: str, make_options: Callable[[], Dict[str, Any]], status: int,
        code: str) -> None:
    proxy, log = fetcher_proxy
    options = make_options()
    if "amz_date" in options and "credential" not in options and options["amz_date"][:8].isdigit():
        options = dict(options, credential=_scope(options["amz_date"][:8]))
    target = f"/{bucket}/k"
    reply = send_raw(proxy, "GET", target, _header_auth(proxy, target, **options))
    assert_xml_error(reply, status, code)
    assert log.calls == [], "hmac_fetcher was called for a request refused without a secret"


def _presigned(proxy: Any, bucket: str, **options: Any) -> str:
    return presign("GET", proxy.endpoint_url, bucket, "k", access_key=UNKNOWN_KEY, secret_key="whatever",
                   **options)


def _replace_param(url: str, name: str, value: Optional[str]) -> str:
    path, _, query = url.partition("?")
    pairs = [p for p in query.split("&") if p.split("=", 1)[0] != name]
    if value is not None:
        pairs.append(f"{name}={value}")
    return path + "?" + "&".join(pairs)


PRESIGN_CASES: List[Any] = [
    pytest.param(lambda p, b: _presigned(p, b, at=utcnow() - datetime.timedelta(hours=2), expires=60),
                 403, "AccessDenied", id="expired"),
    pytest.param(lambda p, b: _presigned(p, b, at=utcnow() + datetime.timedelta(hours=1)),
                 403, "AccessDenied", id="not-yet-valid"),
    pytest.param(lambda p, b: _presigned(p, b, expires=604801), 400, "AuthorizationQueryParametersError",
                 id="expires-too-long"),
    pytest.param(lambda p, b: _presigned(p, b, region=""), 400, "AuthorizationQueryParametersError",
                 id="empty-region"),
    pytest.param(lambda p, b: _replace_param(_presigned(p, b), "X-Amz-SignedHeaders", "x-amz-meta-a"),
                 400, "AuthorizationQueryParametersError", id="host-not-signed"),
    pytest.param(lambda p, b: _replace_param(_presigned(p, b), "X-Amz-Signature", "a" * 65),
                 403, "SignatureDoesNotMatch", id="signature-65-hex"),
    pytest.param(lambda p, b: _replace_param(_presigned(p, b), "X-Amz-Content-Sha256", "nonsense"),
                 400, "InvalidArgument", id="content-sha256"),
]


@pytest.mark.parametrize("make_url, status, code", PRESIGN_CASES)
def test_presigned_checks_needing_no_secret_come_before_the_lookup(
        fetcher_proxy: Tuple[Any, CallLog], bucket: str, make_url: Callable[[Any, str], str], status: int,
        code: str) -> None:
    proxy, log = fetcher_proxy
    response = requests.get(make_url(proxy, bucket), timeout=TIMEOUT)
    assert response.status_code == status, response.content[:300]
    assert f"<Code>{code}</Code>".encode() in response.content, response.content[:300]
    assert log.calls == [], "hmac_fetcher was called for a request refused without a secret"


# --------------------------------------------------------------------------
# item 14 and compatibility: presigned parameters


def _presign_with_payload(proxy: Any, bucket: str, key: str, payload: str) -> str:
    """A presigned PUT whose X-Amz-Content-Sha256 parameter is signed as the
    payload line too (so only its form can be wrong)."""
    return presign("PUT", proxy.endpoint_url, bucket, key, query={"X-Amz-Content-Sha256": payload}, payload=payload)


@pytest.mark.parametrize("payload", ["nonsense", "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
                                     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
                                     "unsigned-payload"])
def test_presigned_content_sha256_of_the_wrong_form_is_refused(rproxy: Any, recorder: RecordingBackend,
                                                               payload: str) -> None:
    url = _presign_with_payload(rproxy, "allowed", "k", payload)
    response = requests.put(url, data=b"", timeout=TIMEOUT)
    assert response.status_code == 400, response.content[:300]
    assert b"<Code>InvalidArgument</Code>" in response.content, response.content[:300]
    assert recorder.requests == []


def test_presigned_content_sha256_of_the_right_form_is_accepted(proxy: Any, direct: Any, bucket: str) -> None:
    body = b"hashed body"
    url = _presign_with_payload(proxy, bucket, "k", hashlib.sha256(body).hexdigest())
    response = requests.put(url, data=body, timeout=TIMEOUT)
    assert response.status_code == 200, response.content[:300]
    assert stored_body(direct, bucket, "k") == body


@pytest.mark.parametrize("signature", ["a" * 65, "A" * 64, "z" * 64, "a" * 63, "%C3%A9" * 32])
def test_presigned_malformed_signature_is_signature_does_not_match(proxy: Any, direct: Any, bucket: str,
                                                                   signature: str) -> None:
    """S3 and versitygw answer 403 SignatureDoesNotMatch, not 400."""
    url = _replace_param(presign("PUT", proxy.endpoint_url, bucket, "k"), "X-Amz-Signature", signature)
    response = requests.put(url, data=b"x", timeout=TIMEOUT)
    assert response.status_code == 403, response.content[:300]
    assert b"<Code>SignatureDoesNotMatch</Code>" in response.content
    assert stored_keys(direct, bucket) == []


# --------------------------------------------------------------------------
# item 14: keys that are not UTF-8


@pytest.mark.parametrize("raw_key", ["%FF", "a%C3", "%ED%A0%80", "ok/%C0%AF", "x%80y"])
def test_key_not_utf8_is_refused(start_proxy: Callable[..., Any], backend: Any, recorder: RecordingBackend,
                                 raw_key: str) -> None:
    """The validator must never see another key than the backend gets (a
    non-UTF-8 key reached Python as U+FFFD)."""
    log = CallLog()

    def validator(token: str, bucket: str, method: str, key: str, operation: str) -> bool:
        log.add(key, operation)
        return True

    proxy = start_proxy(cos_map={"allowed": backend.entry(port=recorder.port)}, validator=validator)
    reply = put(proxy, f"/allowed/{raw_key}")
    refused(reply, recorder, 400, "InvalidURI")
    assert log.calls == []


@pytest.mark.parametrize("query", ["prefix=%FF", "list-type=2&prefix=a%C3"])
def test_query_not_utf8_is_refused(rproxy: Any, recorder: RecordingBackend, query: str) -> None:
    target = f"/allowed?{query}"
    reply = send_raw(rproxy, "GET", target, raw_signed_headers(rproxy, "GET", target))
    refused(reply, recorder, 400, "InvalidArgument")


def test_utf8_keys_still_work(client: Any, direct: Any, bucket: str) -> None:
    key = "dir/grüße 🎉/ünï+cødé%.txt"
    client.put_object(Bucket=bucket, Key=key, Body=b"u")
    assert stored_body(direct, bucket, key) == b"u"
    client.copy_object(Bucket=bucket, Key=key + ".copy", CopySource={"Bucket": bucket, "Key": key})
    assert stored_body(direct, bucket, key + ".copy") == b"u"
