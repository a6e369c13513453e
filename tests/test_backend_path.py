"""The body and the backend: what reaches a backend, and what comes back.

Issue 12, items 3 and 11:

* an aws-chunked body whose chunk sizes add up past x-amz-decoded-content-length
  (or overflow an int64) is refused before the backend receives the last byte
  of the declared length: a bearer (IBM API key) backend checks no payload hash,
  so a complete body it receives is stored;
* a backend's authentication error (401, 403) reaches the client as the proxy's
  own 403 AccessDenied, without the backend's access key, string to sign,
  canonical request or signature.

(Item 13, replays of non-idempotent requests, is tested in Go: upstream's
transport_test.go.)
"""

from __future__ import annotations

import random
import secrets
import urllib.parse
from typing import Any, Callable, Dict, Iterator, Mapping, Optional, Tuple

import pytest
from botocore.exceptions import ClientError

import awschunked as ac
from bearer_front import BearerFront, assert_nothing_complete_reached
from helpers import (
    BACKEND_ACCESS_KEY,
    BACKEND_SECRET_KEY,
    REGION,
    assert_s3_error,
    object_exists,
    parse_s3_error,
    sign_request,
    stored_body,
    stored_keys,
)
from iam_server import IamServer
from observe import Stderr
from s3wire import Answer, RecordedRequest, RecordingBackend, Reply, render, send_then_shut

KEY_A = "apikey-a-" + secrets.token_hex(12)

# --------------------------------------------------------------------------
# fixtures: a bearer (IBM API key) backend in front of versitygw (front and
# bearer_proxy are conftest's)


# The API keys conftest's ``iam`` knows.
IAM_API_KEYS = {KEY_A}


def payload(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


def send_raw(url: str, method: str, headers: Mapping[str, str], body: bytes) -> Optional[Reply]:
    """Sends exactly these headers and body on one connection, then
    half-closes it as a client that has nothing more to say. Returns the
    answer, or None if the server closed without one."""
    parts = urllib.parse.urlsplit(url)
    head = [("Host", parts.netloc), *((n, v) for n, v in headers.items() if n.lower() != "host")]
    return send_then_shut(parts.port or 80, render(method, parts.path, head) + body, method=method,
                          host=parts.hostname or "127.0.0.1")


# --------------------------------------------------------------------------
# item 3: chunk sizes past the declared length, or past int64


def overflowing_upload(url: str, mode: str, declared: int, first: int, size_line: str,
                       tail: bytes) -> Tuple[Dict[str, str], bytes]:
    """The headers and body of an upload announcing ``declared`` decoded
    bytes whose first chunk (``first`` bytes) is signed correctly, followed
    by a chunk header ``size_line`` (with a forged signature in signed
    modes) and ``tail``: the attacker's bytes, never signed. Content-Length
    is the length of that body."""
    upload = ac.build_upload("PUT", url, payload(first, seed=30), mode, chunk_size=first,
                             checksum_algorithm=None, content_length=False, decoded_length=declared)
    good = upload.chunks[0].size_line() + upload.chunks[0].data + b"\r\n"
    signature = f";chunk-signature={'0' * 64}" if mode in ac.SIGNED_MODES else ""
    body = good + f"{size_line}{signature}\r\n".encode() + tail
    return {**upload.headers, "Content-Length": str(len(body))}, body


OVERFLOWS = [
    pytest.param("7fffffffffffffff", id="int64-max"),
    pytest.param("7ffffffffffffffe", id="int64-max-minus-1"),
    pytest.param("8000000000000000", id="int64-min"),  # ParseInt refuses it: a malformed size
    pytest.param("ffffffffffffffff", id="uint64-max"),
    pytest.param("1000", id="past-declared"),  # 4096 > what is left of 1000
]


@pytest.mark.parametrize("mode", [ac.STREAMING_SIGNED, ac.STREAMING_UNSIGNED_TRAILER], ids=["signed", "unsigned"])
@pytest.mark.parametrize("size_line", OVERFLOWS)
def test_chunk_size_overflow_never_completes_a_bearer_upload(bearer_proxy: Callable[..., Any], front: BearerFront,
                                                             direct: Any, bucket: str, mode: str,
                                                             size_line: str) -> None:
    """One valid chunk of 10 bytes, then a chunk header whose size overflows
    the running total (or exceeds what is left of the declared 1000 bytes),
    then 2000 bytes the client never signed: the proxy refuses it, and the
    bearer backend never receives a whole 1000-byte body to store."""
    proxy = bearer_proxy({bucket: KEY_A})
    declared = 1000
    url = f"{proxy.endpoint_url}/{bucket}/overflow"
    headers, body = overflowing_upload(url, mode, declared, 10, size_line, b"E" * 2 * declared)
    r = send_raw(url, "PUT", headers, body)
    assert_nothing_complete_reached(front, direct, bucket, "overflow")
    assert r is not None, "the proxy closed the connection without an S3 error"
    assert_s3_error(r, 400, "IncompleteBody")  # S3's code for data past the declared length
    assert stored_keys(direct, bucket) == []


def test_chunk_size_past_s3_limit_is_refused_before_any_data(bearer_proxy: Callable[..., Any],
                                                             front: BearerFront, direct: Any, bucket: str) -> None:
    """A declared length past S3's 5 GiB limit of one PUT: EntityTooLarge,
    and nothing is sent to the backend."""
    proxy = bearer_proxy({bucket: KEY_A})
    url = f"{proxy.endpoint_url}/{bucket}/huge"
    declared = 5 * 1024 ** 3 + 1
    headers, body = overflowing_upload(url, ac.STREAMING_UNSIGNED_TRAILER, declared, 10, "140000000", b"E" * 100)
    r = send_raw(url, "PUT", headers, body)
    assert r is not None, "the proxy closed the connection without an S3 error"
    assert_s3_error(r, 400, "EntityTooLarge")
    front.wait_idle()
    assert front.seen_for(bucket, "huge") == []
    assert not object_exists(direct, bucket, "huge")


# --------------------------------------------------------------------------
# item 11: a backend's authentication errors are the proxy's own


# What a backend's signature error carries that a client must never see:
# element names (AWS and versitygw), and the backend's access key id.
BACKEND_DETAILS = ("StringToSign", "CanonicalRequest", "SignatureProvided", "AWSAccessKeyId", "AWS4-HMAC-SHA256",
                   BACKEND_ACCESS_KEY, "x-amz-content-sha256:", "Bearer front")


def assert_proxy_access_denied(r: Any, bucket: str, *, head: bool = False) -> None:
    """The proxy's own 403 AccessDenied naming the bucket, under the proxy's
    request id, with nothing of the backend's answer. (A HEAD answer has no
    body, so nothing to hide: its status is kept.)"""
    status = getattr(r, "status_code", None)
    assert status == 403, (status, getattr(r, "content", b"")[:500])
    request_id = r.headers.get("x-amz-request-id", "")
    assert len(request_id) == 16, dict(r.headers)
    if head:
        assert r.content == b""
        return
    assert "x-osp-backend-request-id" not in {k.lower() for k in r.headers}, dict(r.headers)
    fields = parse_s3_error(r.content)
    assert fields["Code"] == "AccessDenied", fields
    assert bucket in fields["Message"], fields
    assert fields["RequestId"] == request_id, fields
    text = r.content.decode(errors="replace")
    for detail in BACKEND_DETAILS:
        assert detail not in text, f"{detail!r} reached the client: {text}"


def raw_signed(proxy: Any, method: str, path: str, body: bytes = b"") -> ac.Response:
    url = f"{proxy.endpoint_url}{path}"
    headers = sign_request(method, url, body=body)
    return ac.raw_request("127.0.0.1", int(proxy.http_port), method, path,
                          {"Host": f"127.0.0.1:{proxy.http_port}", **headers}, body or None, timeout=10)


def access_record(stderr: Stderr, request_id: str) -> Dict[str, Any]:
    [record] = stderr.records_for([request_id])[request_id]
    return record


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "HEAD"])
def test_backend_signature_mismatch_is_the_proxys_access_denied(start_proxy: Callable[..., Any], backend: Any,
                                                                 direct: Any, bucket: str, capfd: Any,
                                                                 method: str) -> None:
    """A cos_map entry with a wrong secret: versitygw answers 403
    SignatureDoesNotMatch with its AWSAccessKeyId, StringToSign,
    CanonicalRequest and SignatureProvided. The client gets the proxy's 403
    AccessDenied with none of it; the log line names the backend's code and
    request id, and holds no string to sign, canonical request or signature."""
    direct.put_object(Bucket=bucket, Key="obj", Body=b"backend content")
    stderr = Stderr(capfd)
    proxy = start_proxy(cos_map={bucket: backend.entry(secret_key="wrong-" + secrets.token_hex(8))})
    r = raw_signed(proxy, method, f"/{bucket}/obj", b"new content" if method == "PUT" else b"")
    assert_proxy_access_denied(r, bucket, head=method == "HEAD")
    assert stored_body(direct, bucket, "obj") == b"backend content"
    record = access_record(stderr, r.headers["x-amz-request-id"])
    error = str(record.get("error", ""))
    assert "403" in error, record
    if method != "HEAD":
        assert record.get("error_code") == "AccessDenied", record
        assert "SignatureDoesNotMatch" in error, record
        for detail in ("StringToSign", "CanonicalRequest", "SignatureProvided", "AWS4-HMAC-SHA256", "&#xA;"):
            assert detail not in error, record


def test_backend_signature_mismatch_through_boto3(start_proxy: Callable[..., Any], backend: Any, bucket: str,
                                                  client_for: Callable[..., Any]) -> None:
    """What an SDK user sees: AccessDenied, with the proxy's message."""
    proxy = start_proxy(cos_map={bucket: backend.entry(secret_key="wrong-" + secrets.token_hex(8))})
    client = client_for(proxy)
    with pytest.raises(ClientError) as info:
        client.put_object(Bucket=bucket, Key="k", Body=b"x")
    error = info.value.response["Error"]
    assert error["Code"] == "AccessDenied", error
    assert bucket in error["Message"] and "StringToSign" not in error and "CanonicalRequest" not in error, error
    with pytest.raises(ClientError) as info:
        client.list_objects_v2(Bucket=bucket)
    assert info.value.response["Error"]["Code"] == "AccessDenied"


def test_bearer_backend_refusal_is_the_proxys_access_denied(bearer_proxy: Callable[..., Any], iam: IamServer,
                                                            front: BearerFront, direct: Any, bucket: str,
                                                            capfd: Any) -> None:
    """The bearer front refuses a token the proxy still holds (expired at
    the IAM): 403 AccessDenied with the front's own message. The client
    gets the proxy's AccessDenied; the front's message goes to the log."""
    proxy = bearer_proxy({bucket: KEY_A})
    assert raw_signed(proxy, "PUT", f"/{bucket}/first", b"ok").status_code == 200
    iam.expire_all()
    stderr = Stderr(capfd)
    r = raw_signed(proxy, "PUT", f"/{bucket}/second", b"refused")
    assert_proxy_access_denied(r, bucket)
    record = access_record(stderr, r.headers["x-amz-request-id"])
    assert "AccessDenied" in str(record.get("error")) and "expired token" in str(record.get("error")), record
    assert not object_exists(direct, bucket, "second")


def test_token_refused_by_the_backend_is_fetched_anew(bearer_proxy: Callable[..., Any], iam: IamServer,
                                                     front: BearerFront, direct: Any, bucket: str) -> None:
    """IAM revoked the proxy's token before its stated expiry: the request
    the backend refused gets AccessDenied (its body cannot be sent twice),
    and the next request goes with a new token instead of failing until
    the old one would have expired. A second refusal at once (a fresh token
    refused: the key lacks a right) does not make another IAM call."""
    proxy = bearer_proxy({bucket: KEY_A})
    assert raw_signed(proxy, "PUT", f"/{bucket}/first", b"ok").status_code == 200
    calls = len(iam.calls)
    iam.expire_all()
    assert_proxy_access_denied(raw_signed(proxy, "PUT", f"/{bucket}/refused", b"refused"), bucket)
    r = raw_signed(proxy, "PUT", f"/{bucket}/after", b"stored with a new token")
    assert r.status_code == 200, r.content[:300]
    assert stored_body(direct, bucket, "after") == b"stored with a new token"
    assert len(iam.calls) == calls + 1, iam.calls[calls:]
    iam.expire_all()
    for key in ("again-1", "again-2"):
        assert_proxy_access_denied(raw_signed(proxy, "PUT", f"/{bucket}/{key}", b"refused"), bucket)
    assert len(iam.calls) == calls + 1, "a refusal within the interval fetched another token"
    assert not object_exists(direct, bucket, "refused") and not object_exists(direct, bucket, "again-1")


# A scripted backend: each key is answered with a fixed status and body.

SIGNATURE_ERROR = (
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message>"
    "<AWSAccessKeyId>" + BACKEND_ACCESS_KEY + "</AWSAccessKeyId>"
    "<StringToSign>AWS4-HMAC-SHA256&#xA;20240601T000000Z&#xA;x</StringToSign>"
    "<SignatureProvided>" + "ab" * 32 + "</SignatureProvided>"
    "<CanonicalRequest>GET&#xA;/b/k</CanonicalRequest><RequestId>BACKENDREQ123</RequestId></Error>")
PLAIN_ERROR = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message>"
               "<RequestId>BACKENDREQ456</RequestId></Error>")

SCRIPT: Dict[str, Tuple[int, str]] = {
    "ibm-401": (401, '{"errorCode":"BXNIM0415E","errorMessage":"Provided API key could not be found",'
                     '"context":{"requestId":"ibm-req-1"}}'),
    "xml-401": (401, PLAIN_ERROR.format(code="AccessDenied", message="Unauthorized")),
    "sig-403": (403, SIGNATURE_ERROR.format(code="SignatureDoesNotMatch", message="does not match")),
    "key-403": (403, PLAIN_ERROR.format(code="InvalidAccessKeyId", message="no such key")),
    "skew-403": (403, PLAIN_ERROR.format(code="RequestTimeTooSkewed", message="skewed")),
    "token-400": (400, PLAIN_ERROR.format(code="ExpiredToken", message="The provided token has expired.")),
    "auth-400": (400, PLAIN_ERROR.format(code="AuthorizationHeaderMalformed", message="region is wrong")),
    "details-400": (400, SIGNATURE_ERROR.format(code="SomethingElse", message="with details")),
    "huge-403": (403, "<Error><Code>AccessDenied</Code>" + "x" * 200_000 + "</Error>"),
    # Passed on as they are: errors a client needs, with nothing to hide.
    "arg-400": (400, PLAIN_ERROR.format(code="InvalidArgument", message="Invalid argument.")),
    "archived-403": (403, PLAIN_ERROR.format(code="InvalidObjectState",
                                             message="The operation is not valid for the object's storage class")),
    "missing-404": (404, PLAIN_ERROR.format(code="NoSuchKey", message="The specified key does not exist.")),
}


def _scripted(request: RecordedRequest) -> Answer:
    """SCRIPT's answer for the request's last path segment (200, empty, for
    any other)."""
    status, body = SCRIPT.get(request.path.rsplit("/", 1)[-1], (200, ""))
    content_type = "application/json" if body.startswith("{") else "application/xml"
    return Answer(status, [("Content-Type", content_type), ("x-amz-request-id", "BACKENDREQ789")], body.encode())


@pytest.fixture
def scripted() -> Iterator[RecordingBackend]:
    server = RecordingBackend(_scripted)
    yield server
    server.close()


@pytest.fixture
def scripted_proxy(start_proxy: Callable[..., Any], scripted: RecordingBackend, new_bucket_name: Callable[..., str]
                   ) -> Tuple[Any, str]:
    name = new_bucket_name("scripted")
    entry = {"host": "127.0.0.1", "port": scripted.port, "scheme": "http", "region": REGION,
             "addressing_style": "path", "access_key": BACKEND_ACCESS_KEY, "secret_key": BACKEND_SECRET_KEY}
    return start_proxy(cos_map={name: entry}), name


@pytest.mark.parametrize("key", ["ibm-401", "xml-401", "sig-403", "key-403", "skew-403", "token-400", "auth-400",
                                 "details-400", "huge-403"])
def test_backend_authentication_errors_are_hidden(scripted_proxy: Tuple[Any, str], capfd: Any, key: str) -> None:
    proxy, bucket = scripted_proxy
    stderr = Stderr(capfd)
    r = raw_signed(proxy, "GET", f"/{bucket}/{key}")
    assert_proxy_access_denied(r, bucket)
    assert b"BACKENDREQ" not in r.content and b"BXNIM" not in r.content, r.content
    record = access_record(stderr, r.headers["x-amz-request-id"])
    error = str(record.get("error", ""))
    status = SCRIPT[key][0]
    assert str(status) in error, record
    assert "BACKENDREQ" in error or "ibm-req" in error or key == "huge-403", record
    for detail in ("StringToSign", "SignatureProvided", "CanonicalRequest", "ab" * 32, "&#xA;"):
        assert detail not in error, record
    if key == "huge-403":
        assert len(error) < 2000, len(error)


@pytest.mark.parametrize("key", ["ibm-401", "sig-403"])
def test_backend_authentication_errors_on_head_keep_their_status(scripted_proxy: Tuple[Any, str], key: str) -> None:
    """HEAD answers carry no body: nothing to hide, the status is kept."""
    proxy, bucket = scripted_proxy
    r = raw_signed(proxy, "HEAD", f"/{bucket}/{key}")
    assert r.status_code == SCRIPT[key][0] and r.content == b"", (r.status_code, r.content)


@pytest.mark.parametrize("key", ["arg-400", "archived-403", "missing-404"])
def test_other_backend_errors_pass_unchanged(scripted_proxy: Tuple[Any, str], key: str) -> None:
    """Errors a client needs and that carry nothing of the backend's
    authentication reach it as the backend sent them."""
    proxy, bucket = scripted_proxy
    r = raw_signed(proxy, "GET", f"/{bucket}/{key}")
    status, body = SCRIPT[key]
    assert (r.status_code, r.content) == (status, body.encode()), (r.status_code, r.content[:300])
