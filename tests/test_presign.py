"""Presigned URLs (SigV4 query auth) through the proxy: verified with the
client's secret, expiry and date enforced, forwarded re-signed so that a
plain HTTP client with no other headers can GET, HEAD and PUT.

URLs come from botocore's generate_presigned_url and from ``presign`` below,
a hand-built signer (checked against versitygw itself first) that can also
sign what botocore will not: any date, any X-Amz-Expires, other regions,
extra signed headers.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import datetime
import importlib
import urllib.parse
from typing import Any, Callable, Dict, List, Optional
from unittest import mock

import botocore.auth
import pytest
import requests

from helpers import (
    BACKEND_ACCESS_KEY,
    BACKEND_SECRET_KEY,
    CLIENT_ACCESS_KEY,
    CLIENT_SECRET_KEY,
    OTHER_SECRET_KEY,
    REGION,
    assert_s3_error,
    make_client,
    object_exists,
    parse_s3_error,
    presign,
    stored_body,
    stored_keys,
    utcnow,
)
from s3wire import clock_at

TIMEOUT = 20


def with_query(url: str, **changes: Optional[str]) -> str:
    """The URL with query parameters replaced, added (value) or removed (None)."""
    parts = urllib.parse.urlsplit(url)
    pairs = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True) if k not in changes]
    pairs += [(k, v) for k, v in changes.items() if v is not None]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(pairs, quote_via=urllib.parse.quote)))


def boto_presign(proxy: Any, operation: str, params: Dict[str, Any], *, expires: int = 300,
                 at: Optional[datetime.datetime] = None, secret_key: str = CLIENT_SECRET_KEY) -> str:
    client = make_client(proxy.endpoint_url, CLIENT_ACCESS_KEY, secret_key)
    if at is None:
        return str(client.generate_presigned_url(operation, Params=params, ExpiresIn=expires))
    # botocore presigns with its CRT signer when awscrt is installed: freeze both clocks.
    with contextlib.ExitStack() as stack:
        for module in _signer_modules():
            stack.enter_context(mock.patch.object(module, "datetime", clock_at(at)))
        url = str(client.generate_presigned_url(operation, Params=params, ExpiresIn=expires))
    assert f"X-Amz-Date={at:%Y%m%dT%H%M}" in url, ("the clock was not frozen", url)
    return url


def _signer_modules() -> List[Any]:
    modules: List[Any] = [botocore.auth]
    try:
        modules.append(importlib.import_module("botocore.crt.auth"))
    except ImportError:
        pass
    return modules


def get(url: str, **kwargs: Any) -> requests.Response:
    return requests.get(url, timeout=TIMEOUT, allow_redirects=False, **kwargs)


def put(url: str, body: bytes, **kwargs: Any) -> requests.Response:
    return requests.put(url, data=body, timeout=TIMEOUT, allow_redirects=False, **kwargs)


def head(url: str) -> requests.Response:
    return requests.head(url, timeout=TIMEOUT, allow_redirects=False)


def assert_ok(response: requests.Response) -> None:
    assert response.status_code == 200, (response.status_code, response.content[:600])


ODD_KEY = "dir/with space/ünï+cöde&=;,()'!*~$@.txt"


# --------------------------------------------------------------------------
# control: the hand-built signer against versitygw itself


def test_hand_built_presign_is_right_for_versitygw(backend: Any, direct: Any, bucket: str) -> None:
    direct.put_object(Bucket=bucket, Key=ODD_KEY, Body=b"control")
    url = presign("GET", backend.endpoint_url, bucket, ODD_KEY,
                  access_key=BACKEND_ACCESS_KEY, secret_key=BACKEND_SECRET_KEY,
                  query={"response-content-type": "text/x-control"})
    response = get(url)
    assert_ok(response)
    assert response.content == b"control"
    assert response.headers["Content-Type"] == "text/x-control"
    tampered = with_query(url, **{"X-Amz-Expires": "301"})
    assert_s3_error(get(tampered), 403, "SignatureDoesNotMatch")


# --------------------------------------------------------------------------
# accepted: GET, HEAD, PUT from plain HTTP, no other headers


@pytest.mark.parametrize("key", ["plain.txt", ODD_KEY], ids=["plain-key", "odd-key"])
def test_boto3_presigned_get_head_put(proxy: Any, direct: Any, bucket: str, key: str) -> None:
    direct.put_object(Bucket=bucket, Key=key, Body=b"presigned content")
    params = {"Bucket": bucket, "Key": key}

    response = get(boto_presign(proxy, "get_object", params))
    assert_ok(response)
    assert response.content == b"presigned content"

    response = head(boto_presign(proxy, "head_object", params))
    assert response.status_code == 200, response.status_code
    assert response.headers["Content-Length"] == str(len(b"presigned content"))

    put_params = {"Bucket": bucket, "Key": key + ".new"}
    assert_ok(put(boto_presign(proxy, "put_object", put_params), b"uploaded by URL"))
    assert stored_body(direct, bucket, key + ".new") == b"uploaded by URL"


@pytest.mark.parametrize("key", ["plain.txt", ODD_KEY], ids=["plain-key", "odd-key"])
def test_hand_built_presigned_get_head_put(proxy: Any, direct: Any, bucket: str, key: str) -> None:
    direct.put_object(Bucket=bucket, Key=key, Body=b"hand presigned")

    response = get(presign("GET", proxy.endpoint_url, bucket, key))
    assert_ok(response)
    assert response.content == b"hand presigned"

    response = head(presign("HEAD", proxy.endpoint_url, bucket, key))
    assert response.status_code == 200, response.status_code

    assert_ok(put(presign("PUT", proxy.endpoint_url, bucket, key + ".new"), b"hand uploaded"))
    assert stored_body(direct, bucket, key + ".new") == b"hand uploaded"


def test_response_overrides(proxy: Any, direct: Any, bucket: str) -> None:
    direct.put_object(Bucket=bucket, Key="report.csv", Body=b"a,b\n1,2\n", ContentType="text/csv")
    url = boto_presign(proxy, "get_object", {
        "Bucket": bucket, "Key": "report.csv",
        "ResponseContentType": "application/x-override",
        "ResponseContentDisposition": 'attachment; filename="r.csv"',
        "ResponseCacheControl": "no-store",
    })
    assert "response-content-type=" in url
    response = get(url)
    assert_ok(response)
    assert response.content == b"a,b\n1,2\n"
    assert response.headers["Content-Type"] == "application/x-override"
    assert response.headers["Content-Disposition"] == 'attachment; filename="r.csv"'
    assert response.headers["Cache-Control"] == "no-store"


def test_presigned_get_range(proxy: Any, direct: Any, bucket: str) -> None:
    # Range is not signed; a presigned GET may still carry it.
    direct.put_object(Bucket=bucket, Key="ranged", Body=b"0123456789")
    response = get(boto_presign(proxy, "get_object", {"Bucket": bucket, "Key": "ranged"}),
                   headers={"Range": "bytes=2-4"})
    assert response.status_code == 206, response.content
    assert response.content == b"234"


def test_signed_extra_header(proxy: Any, direct: Any, bucket: str) -> None:
    url = presign("PUT", proxy.endpoint_url, bucket, "with-meta", headers={"x-amz-meta-note": "signed"})
    assert_ok(put(url, b"m", headers={"x-amz-meta-note": "signed"}))
    assert direct.head_object(Bucket=bucket, Key="with-meta")["Metadata"] == {"note": "signed"}

    url = presign("PUT", proxy.endpoint_url, bucket, "tampered-meta", headers={"x-amz-meta-note": "signed"})
    assert_s3_error(put(url, b"m", headers={"x-amz-meta-note": "changed"}), 403, "SignatureDoesNotMatch")
    assert not object_exists(direct, bucket, "tampered-meta")


def test_unsigned_amz_header_with_presigned_put(proxy: Any, direct: Any, bucket: str) -> None:
    # The proxy must not sign, for the backend, a header the client did not sign.
    url = presign("PUT", proxy.endpoint_url, bucket, "injected")
    assert_s3_error(put(url, b"x", headers={"x-amz-meta-injected": "yes"}), 403, "AccessDenied")
    assert not object_exists(direct, bucket, "injected")


def test_any_signing_region(proxy: Any, direct: Any, bucket: str) -> None:
    direct.put_object(Bucket=bucket, Key="regional", Body=b"eu")
    response = get(presign("GET", proxy.endpoint_url, bucket, "regional", region="eu-west-3"))
    assert_ok(response)
    assert response.content == b"eu"


def test_longest_expiry_is_accepted(proxy: Any, direct: Any, bucket: str) -> None:
    direct.put_object(Bucket=bucket, Key="week", Body=b"7 days")
    response = get(presign("GET", proxy.endpoint_url, bucket, "week", expires=604800))
    assert_ok(response)
    assert response.content == b"7 days"


def test_old_but_unexpired_url(proxy: Any, direct: Any, bucket: str) -> None:
    # Signed 50 minutes ago for an hour: still valid (no 15 minute skew rule
    # for a past X-Amz-Date of a presigned URL); the proxy re-signs at its time.
    direct.put_object(Bucket=bucket, Key="old", Body=b"still valid")
    url = presign("GET", proxy.endpoint_url, bucket, "old", expires=3600,
                  at=utcnow() - datetime.timedelta(minutes=50))
    response = get(url)
    assert_ok(response)
    assert response.content == b"still valid"


# --------------------------------------------------------------------------
# refused


@pytest.mark.parametrize("expires", ["0", "-1", "604801", "abc", ""])
def test_bad_expires(proxy: Any, direct: Any, bucket: str, expires: str) -> None:
    direct.put_object(Bucket=bucket, Key="k", Body=b"secret")
    response = get(presign("GET", proxy.endpoint_url, bucket, "k", expires=expires))
    assert_s3_error(response, 400, "AuthorizationQueryParametersError")
    assert b"secret" not in response.content


def test_expired_hand_built(proxy: Any, direct: Any, bucket: str) -> None:
    direct.put_object(Bucket=bucket, Key="k", Body=b"secret")
    url = presign("GET", proxy.endpoint_url, bucket, "k", expires=3600, at=utcnow() - datetime.timedelta(hours=2))
    assert_s3_error(get(url), 403, "AccessDenied")
    url = presign("PUT", proxy.endpoint_url, bucket, "expired-put", expires=60,
                  at=utcnow() - datetime.timedelta(minutes=2))
    assert_s3_error(put(url, b"late"), 403, "AccessDenied")
    assert stored_keys(direct, bucket) == ["k"]


def test_expired_boto3(proxy: Any, direct: Any, bucket: str) -> None:
    direct.put_object(Bucket=bucket, Key="k", Body=b"secret")
    url = boto_presign(proxy, "get_object", {"Bucket": bucket, "Key": "k"}, expires=60,
                       at=utcnow() - datetime.timedelta(minutes=5))
    response = get(url)
    assert_s3_error(response, 403, "AccessDenied")
    assert b"secret" not in response.content
    url = boto_presign(proxy, "head_object", {"Bucket": bucket, "Key": "k"}, expires=60,
                       at=utcnow() - datetime.timedelta(minutes=5))
    assert head(url).status_code == 403


def test_date_in_the_future(proxy: Any, direct: Any, bucket: str) -> None:
    direct.put_object(Bucket=bucket, Key="k", Body=b"secret")
    url = presign("GET", proxy.endpoint_url, bucket, "k", expires=3600, at=utcnow() + datetime.timedelta(minutes=20))
    response = get(url)
    assert response.status_code == 403, response.content
    assert parse_s3_error(response.content)["Code"] in ("AccessDenied", "RequestTimeTooSkewed"), response.content
    assert b"secret" not in response.content


@pytest.mark.parametrize("secret", ["not-the-secret", OTHER_SECRET_KEY], ids=["wrong", "other-clients"])
def test_wrong_secret(proxy: Any, direct: Any, bucket: str, secret: str) -> None:
    direct.put_object(Bucket=bucket, Key="k", Body=b"secret")
    assert_s3_error(get(presign("GET", proxy.endpoint_url, bucket, "k", secret_key=secret)),
                    403, "SignatureDoesNotMatch")
    assert_s3_error(get(boto_presign(proxy, "get_object", {"Bucket": bucket, "Key": "k"}, secret_key=secret)),
                    403, "SignatureDoesNotMatch")
    assert_s3_error(put(presign("PUT", proxy.endpoint_url, bucket, "new", secret_key=secret), b"x"),
                    403, "SignatureDoesNotMatch")
    assert stored_keys(direct, bucket) == ["k"]


def test_unknown_access_key(proxy: Any, direct: Any, bucket: str) -> None:
    url = presign("PUT", proxy.endpoint_url, bucket, "new", access_key="AKIANOBODYKNOWS00000", secret_key="x")
    assert_s3_error(put(url, b"x"), 403, "InvalidAccessKeyId")
    assert stored_keys(direct, bucket) == []


@pytest.mark.parametrize("change", [
    pytest.param({"X-Amz-Expires": "3600"}, id="longer-expiry"),
    pytest.param({"X-Amz-Date": None}, id="date-removed"),
    pytest.param({"response-content-type": "text/html"}, id="param-added"),
    pytest.param({"versionId": "null"}, id="version-added"),
    pytest.param({"X-Amz-SignedHeaders": "host;x-amz-meta-a"}, id="signed-headers-changed"),
])
def test_tampered_query(proxy: Any, direct: Any, bucket: str, change: Dict[str, Optional[str]]) -> None:
    direct.put_object(Bucket=bucket, Key="k", Body=b"secret")
    url = with_query(presign("GET", proxy.endpoint_url, bucket, "k", expires=60), **change)
    response = get(url, headers={"x-amz-meta-a": "1"} if "X-Amz-SignedHeaders" in change else None)
    if "X-Amz-Date" in change:  # a parameter missing: malformed rather than wrong
        assert response.status_code in (400, 403), response.content
    else:
        assert_s3_error(response, 403, "SignatureDoesNotMatch")
    assert b"secret" not in response.content


def test_tampered_override_value(proxy: Any, direct: Any, bucket: str) -> None:
    direct.put_object(Bucket=bucket, Key="k", Body=b"secret")
    url = boto_presign(proxy, "get_object", {"Bucket": bucket, "Key": "k", "ResponseContentType": "text/plain"})
    assert "response-content-type=text%2Fplain" in url
    tampered = url.replace("response-content-type=text%2Fplain", "response-content-type=text%2Fhtml")
    assert_s3_error(get(tampered), 403, "SignatureDoesNotMatch")


def test_tampered_path(proxy: Any, direct: Any, bucket: str) -> None:
    direct.put_object(Bucket=bucket, Key="public", Body=b"public")
    direct.put_object(Bucket=bucket, Key="private", Body=b"private")
    url = presign("GET", proxy.endpoint_url, bucket, "public")
    response = get(url.replace("/public?", "/private?"))
    assert_s3_error(response, 403, "SignatureDoesNotMatch")
    assert b"private" not in response.content

    url = presign("PUT", proxy.endpoint_url, bucket, "intended")
    assert_s3_error(put(url.replace("/intended?", "/elsewhere?"), b"x"), 403, "SignatureDoesNotMatch")
    assert sorted(stored_keys(direct, bucket)) == ["private", "public"]


def test_method_changed(proxy: Any, direct: Any, bucket: str) -> None:
    url = presign("GET", proxy.endpoint_url, bucket, "k")
    assert_s3_error(put(url, b"x"), 403, "SignatureDoesNotMatch")
    assert stored_keys(direct, bucket) == []


def test_missing_signature(proxy: Any, direct: Any, bucket: str) -> None:
    direct.put_object(Bucket=bucket, Key="k", Body=b"secret")
    url = with_query(presign("GET", proxy.endpoint_url, bucket, "k"), **{"X-Amz-Signature": None})
    response = get(url)
    assert response.status_code in (400, 403), response.content
    assert b"secret" not in response.content


def test_validator_applies(start_proxy: Callable[..., Any], direct: Any, bucket: str) -> None:
    direct.put_object(Bucket=bucket, Key="k", Body=b"secret")
    proxy = start_proxy(bucket, validator=lambda token, name: False)
    response = get(presign("GET", proxy.endpoint_url, bucket, "k"))
    assert_s3_error(response, 403, "AccessDenied")
    assert b"secret" not in response.content


def test_sigv2_presigned(proxy: Any, direct: Any, bucket: str) -> None:
    direct.put_object(Bucket=bucket, Key="k", Body=b"secret")
    v2 = boto3_v2_client(proxy)
    url = v2.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=300)
    assert "AWSAccessKeyId=" in url and "Signature=" in url and "Expires=" in url, url
    response = get(url)
    assert_s3_error(response, 400, "InvalidRequest")
    assert b"secret" not in response.content
    put_url = v2.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "v2"}, ExpiresIn=300)
    assert_s3_error(put(put_url, b"x"), 400, "InvalidRequest")
    assert stored_keys(direct, bucket) == ["k"]


def boto3_v2_client(proxy: Any) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3", endpoint_url=proxy.endpoint_url, region_name=REGION,
        aws_access_key_id=CLIENT_ACCESS_KEY, aws_secret_access_key=CLIENT_SECRET_KEY,
        config=Config(signature_version="s3", s3={"addressing_style": "path"}),
    )


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_with_no_other_headers(proxy: Any, direct: Any, bucket: str, tmp_path: Any) -> None:
    # What a user does with a presigned URL: hand it to curl.
    upload = tmp_path / "up.bin"
    upload.write_bytes(b"from curl " * 1000)
    put_url = boto_presign(proxy, "put_object", {"Bucket": bucket, "Key": "curl.bin"})
    subprocess.run(["curl", "-sSf", "-T", str(upload), put_url], check=True)
    assert direct.get_object(Bucket=bucket, Key="curl.bin")["Body"].read() == upload.read_bytes()

    get_url = boto_presign(proxy, "get_object", {"Bucket": bucket, "Key": "curl.bin"})
    got = subprocess.run(["curl", "-sSf", get_url], check=True, capture_output=True).stdout
    assert got == upload.read_bytes()
    head_url = boto_presign(proxy, "head_object", {"Bucket": bucket, "Key": "curl.bin"})
    headers = subprocess.run(["curl", "-sSf", "-I", head_url], check=True, capture_output=True, text=True).stdout
    assert "content-length: 10000" in headers.lower()
    # A URL signed for GET does not work for PUT.
    forged = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-T", str(upload), get_url],
                            capture_output=True, text=True)
    assert forged.stdout == "403"
