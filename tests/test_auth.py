"""Authentication: the proxy verifies every client's SigV4 signature with
the client's secret (never the backend's), and a rejected request reaches
nothing: the backend is checked directly to hold nothing afterwards.

The default proxy of these tests has no validator: authentication must not
depend on one (the original skipped it then)."""

from __future__ import annotations

import datetime
import hashlib
import http.client
import io
from typing import Any, Callable

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from helpers import (
    BACKEND_ACCESS_KEY,
    BACKEND_SECRET_KEY,
    CLIENT_ACCESS_KEY,
    CLIENT_SECRET_KEY,
    OTHER_SECRET_KEY,
    assert_client_error,
    assert_s3_error,
    object_exists,
    parse_s3_error,
    send_signed,
    sign_request,
    stored_body,
    stored_keys,
    utcnow,
)


def object_url(proxy: Any, bucket: str, key: str) -> str:
    return f"{proxy.endpoint_url}/{bucket}/{key}"


def test_hand_signed_request_is_accepted(proxy: Any, direct: Any, bucket: str) -> None:
    # The control for the raw rejections below: the same signer, right key.
    response = send_signed("PUT", object_url(proxy, bucket, "raw.txt"), body=b"raw body")
    assert response.status_code == 200, response.content
    assert stored_body(direct, bucket, "raw.txt") == b"raw body"


def test_unsigned_payload(proxy: Any, direct: Any, bucket: str) -> None:
    # x-amz-content-sha256: UNSIGNED-PAYLOAD (many SDKs over HTTPS): headers
    # verified, body forwarded as is.
    response = send_signed("PUT", object_url(proxy, bucket, "unsigned"), body=b"unsigned payload",
                           payload_hash="UNSIGNED-PAYLOAD")
    assert response.status_code == 200, response.content
    assert stored_body(direct, bucket, "unsigned") == b"unsigned payload"

    response = send_signed("PUT", object_url(proxy, bucket, "unsigned-bad"), body=b"x",
                           payload_hash="UNSIGNED-PAYLOAD", secret_key="not-the-secret")
    assert_s3_error(response, 403, "SignatureDoesNotMatch")
    assert not object_exists(direct, bucket, "unsigned-bad")


def test_wrong_secret(proxy: Any, client_for: Callable[..., Any], direct: Any, bucket: str) -> None:
    response = send_signed("PUT", object_url(proxy, bucket, "k"), body=b"data", secret_key="not-the-secret")
    assert_s3_error(response, 403, "SignatureDoesNotMatch")

    client = client_for(proxy, CLIENT_ACCESS_KEY, "not-the-secret")
    with pytest.raises(ClientError) as exc:
        client.put_object(Bucket=bucket, Key="k", Body=b"data")
    assert_client_error(exc, 403, "SignatureDoesNotMatch", client)
    with pytest.raises(ClientError) as exc:
        client.get_object(Bucket=bucket, Key="k")
    assert_client_error(exc, 403, "SignatureDoesNotMatch", client)

    assert stored_keys(direct, bucket) == []


def test_another_clients_secret(proxy: Any, direct: Any, bucket: str) -> None:
    # A valid secret, but of a different access key.
    response = send_signed("PUT", object_url(proxy, bucket, "k"), body=b"x", secret_key=OTHER_SECRET_KEY)
    assert_s3_error(response, 403, "SignatureDoesNotMatch")
    assert stored_keys(direct, bucket) == []


def test_backend_keys_are_not_client_keys(proxy: Any, direct: Any, bucket: str) -> None:
    # The backend's own root pair is not a client key of the proxy.
    response = send_signed("PUT", object_url(proxy, bucket, "k"), body=b"x",
                           access_key=BACKEND_ACCESS_KEY, secret_key=BACKEND_SECRET_KEY)
    assert_s3_error(response, 403, "InvalidAccessKeyId")
    assert stored_keys(direct, bucket) == []


def test_unknown_access_key(proxy: Any, client_for: Callable[..., Any], direct: Any, bucket: str) -> None:
    response = send_signed("PUT", object_url(proxy, bucket, "k"), body=b"x",
                           access_key="AKIANOBODYKNOWS00000", secret_key="whatever")
    assert_s3_error(response, 403, "InvalidAccessKeyId")

    client = client_for(proxy, "AKIANOBODYKNOWS00000", "whatever")
    with pytest.raises(ClientError) as exc:
        client.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert_client_error(exc, 403, "InvalidAccessKeyId", client)
    assert stored_keys(direct, bucket) == []


def test_tampered_signed_header(client: Any, direct: Any, bucket: str) -> None:
    # Signed by botocore, then a signed header changed on the way.
    def tamper(request: Any, **kwargs: Any) -> None:
        assert "x-amz-meta-owner" in request.headers["Authorization"].decode()
        request.headers["x-amz-meta-owner"] = "mallory"

    client.meta.events.register("before-send.s3.PutObject", tamper)
    with pytest.raises(ClientError) as exc:
        client.put_object(Bucket=bucket, Key="tampered", Body=b"x", Metadata={"owner": "alice"})

    assert_client_error(exc, 403, "SignatureDoesNotMatch", client)
    assert not object_exists(direct, bucket, "tampered")


def test_tampered_path(client: Any, direct: Any, bucket: str) -> None:
    def retarget(request: Any, **kwargs: Any) -> None:
        request.url = request.url.replace("/intended", "/elsewhere")

    client.meta.events.register("before-send.s3.PutObject", retarget)
    with pytest.raises(ClientError) as exc:
        client.put_object(Bucket=bucket, Key="intended", Body=b"x")

    assert_client_error(exc, 403, "SignatureDoesNotMatch", client)
    assert stored_keys(direct, bucket) == []


def test_tampered_body(proxy: Any, direct: Any, bucket: str) -> None:
    # Signed for one body, another sent: the proxy forwards the client's
    # payload hash, so the backend refuses the body and stores nothing.
    url = object_url(proxy, bucket, "body")
    headers = sign_request("PUT", url, body=b"the signed body")
    response = requests.put(url, data=b"another body!!!", headers=headers, timeout=30)

    assert response.status_code in (400, 403), response.content
    assert not object_exists(direct, bucket, "body")


def test_unsigned_amz_header_added_after_signing(client: Any, direct: Any, bucket: str) -> None:
    # An x-amz-* header that was not signed would be signed by the proxy on
    # the client's behalf: it must be refused.
    def inject(request: Any, **kwargs: Any) -> None:
        request.headers["x-amz-meta-injected"] = "yes"

    client.meta.events.register("before-send.s3.PutObject", inject)
    with pytest.raises(ClientError) as exc:
        client.put_object(Bucket=bucket, Key="injected", Body=b"x")

    assert_client_error(exc, 403, "AccessDenied", client)
    assert not object_exists(direct, bucket, "injected")


@pytest.mark.parametrize("minutes", [-20, 20])
def test_skewed_date(proxy: Any, direct: Any, bucket: str, minutes: int) -> None:
    when = utcnow() + datetime.timedelta(minutes=minutes)
    response = send_signed("PUT", object_url(proxy, bucket, "skewed"), body=b"x", at=when)

    assert_s3_error(response, 403, "RequestTimeTooSkewed")
    assert not object_exists(direct, bucket, "skewed")


def test_date_inside_the_skew_window(proxy: Any, direct: Any, bucket: str) -> None:
    # 10 minutes off is within the 15 minute window. The proxy re-signs at
    # its own time, so the backend accepts it too.
    when = utcnow() - datetime.timedelta(minutes=10)
    response = send_signed("PUT", object_url(proxy, bucket, "slightly-late"), body=b"late", at=when)

    assert response.status_code == 200, response.content
    assert stored_body(direct, bucket, "slightly-late") == b"late"


def test_anonymous_request(proxy: Any, direct: Any, bucket: str) -> None:
    direct.put_object(Bucket=bucket, Key="private", Body=b"private")

    put = requests.put(object_url(proxy, bucket, "anon"), data=b"x", timeout=30)
    assert_s3_error(put, 403, "AccessDenied")
    get = requests.get(object_url(proxy, bucket, "private"), timeout=30)
    assert_s3_error(get, 403, "AccessDenied")
    assert b"private" not in get.content

    assert stored_keys(direct, bucket) == ["private"]


def test_malformed_authorization_header(proxy: Any, direct: Any, bucket: str) -> None:
    url = object_url(proxy, bucket, "malformed")
    headers = {
        "Authorization": "AWS4-HMAC-SHA256 Credential=nonsense, SignedHeaders=host, Signature=00",
        "x-amz-date": utcnow().strftime("%Y%m%dT%H%M%SZ"),
        "x-amz-content-sha256": hashlib.sha256(b"x").hexdigest(),
    }
    response = requests.put(url, data=b"x", headers=headers, timeout=30)

    assert_s3_error(response, 400, "AuthorizationHeaderMalformed")
    assert not object_exists(direct, bucket, "malformed")


def test_any_signing_region_is_accepted(proxy: Any, direct: Any, bucket: str) -> None:
    # Clients such as polars sign us-east-1 (or anything) against custom
    # endpoints; the backend's region is the proxy's business.
    client = boto3.session.Session().client(
        "s3", endpoint_url=proxy.endpoint_url, region_name="eu-central-1",
        aws_access_key_id=CLIENT_ACCESS_KEY, aws_secret_access_key=CLIENT_SECRET_KEY,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                      retries={"total_max_attempts": 1}),
    )
    client.put_object(Bucket=bucket, Key="regional", Body=b"eu")
    assert stored_body(direct, bucket, "regional") == b"eu"


# --------------------------------------------------------------------------
# Nothing skips the check: Expect: 100-continue, uploadId queries.


def test_expect_100_continue_upload_part_with_wrong_secret(proxy: Any, client: Any,
                                                           client_for: Callable[..., Any],
                                                           direct: Any, bucket: str) -> None:
    upload = client.create_multipart_upload(Bucket=bucket, Key="mp")
    upload_id = upload["UploadId"]
    bad = client_for(proxy, CLIENT_ACCESS_KEY, "not-the-secret")
    sent = {}

    def record(request: Any, **kwargs: Any) -> None:
        sent.update({k.lower(): v for k, v in request.headers.items()})

    bad.meta.events.register("before-send.s3.UploadPart", record)
    with pytest.raises(ClientError) as exc:
        # A file-like body makes botocore send Expect: 100-continue.
        bad.upload_part(Bucket=bucket, Key="mp", UploadId=upload_id, PartNumber=1, Body=io.BytesIO(b"p" * 65536))

    assert sent.get("expect") in (b"100-continue", "100-continue"), sent
    assert_client_error(exc, 403, "SignatureDoesNotMatch", bad)
    assert direct.list_parts(Bucket=bucket, Key="mp", UploadId=upload_id).get("Parts", []) == []


def test_expect_100_continue_put_with_wrong_secret(proxy: Any, direct: Any, bucket: str) -> None:
    body = b"e" * 100_000
    url = object_url(proxy, bucket, "expect")
    headers = sign_request("PUT", url, body=body, secret_key="not-the-secret")
    headers["Expect"] = "100-continue"
    conn = http.client.HTTPConnection("127.0.0.1", proxy.http_port, timeout=10)
    try:
        conn.putrequest("PUT", f"/{bucket}/expect", skip_host=True)
        for name, value in {**headers, "Host": f"127.0.0.1:{proxy.http_port}",
                            "Content-Length": str(len(body))}.items():
            conn.putheader(name, value)
        conn.endheaders()
        # Do not send the body: a verifying proxy answers on the headers.
        response = conn.getresponse()
        status, payload = response.status, response.read()
    finally:
        conn.close()

    assert status == 403, payload
    assert parse_s3_error(payload)["Code"] == "SignatureDoesNotMatch"
    assert not object_exists(direct, bucket, "expect")


def test_upload_id_queries_with_wrong_secret(proxy: Any, client: Any, client_for: Callable[..., Any],
                                            direct: Any, bucket: str) -> None:
    upload = client.create_multipart_upload(Bucket=bucket, Key="mp")
    upload_id = upload["UploadId"]
    part = client.upload_part(Bucket=bucket, Key="mp", UploadId=upload_id, PartNumber=1, Body=b"only part")
    bad = client_for(proxy, CLIENT_ACCESS_KEY, "not-the-secret")

    with pytest.raises(ClientError) as exc:
        bad.list_parts(Bucket=bucket, Key="mp", UploadId=upload_id)
    assert_client_error(exc, 403, "SignatureDoesNotMatch", bad)
    with pytest.raises(ClientError) as exc:
        bad.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload_id,
                                      MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]})
    assert_client_error(exc, 403, "SignatureDoesNotMatch", bad)
    with pytest.raises(ClientError) as exc:
        bad.abort_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload_id)
    assert_client_error(exc, 403, "SignatureDoesNotMatch", bad)

    # Neither completed nor aborted.
    assert not object_exists(direct, bucket, "mp")
    uploads = direct.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert [u["UploadId"] for u in uploads] == [upload_id]


def test_wrong_secret_on_bucket_operations(proxy: Any, client_for: Callable[..., Any], direct: Any,
                                           bucket: str, new_bucket_name: Callable[..., str]) -> None:
    bad = client_for(proxy, CLIENT_ACCESS_KEY, "not-the-secret")
    direct.put_object(Bucket=bucket, Key="listed", Body=b"x")

    with pytest.raises(ClientError) as exc:
        bad.list_objects_v2(Bucket=bucket)
    assert_client_error(exc, 403, "SignatureDoesNotMatch", bad)
    with pytest.raises(ClientError) as exc:
        bad.delete_object(Bucket=bucket, Key="listed")
    assert_client_error(exc, 403, "SignatureDoesNotMatch", bad)
    assert stored_keys(direct, bucket) == ["listed"]


def test_skip_signature_validation(start_proxy: Callable[..., Any], client_for: Callable[..., Any],
                                   direct: Any, bucket: str) -> None:
    seen = []

    def validator(token: str, bucket_name: str) -> bool:
        seen.append((token, bucket_name))
        return True

    proxy = start_proxy(bucket, validator=validator, skip_signature_validation=True)
    client = client_for(proxy, CLIENT_ACCESS_KEY, "not-the-secret")

    client.put_object(Bucket=bucket, Key="unchecked", Body=b"let through")

    assert stored_body(direct, bucket, "unchecked") == b"let through"
    assert seen == [(CLIENT_ACCESS_KEY, bucket)]


def test_wrong_secret_client_is_rejected_by_default(start_proxy: Callable[..., Any],
                                                    client_for: Callable[..., Any], bucket: str) -> None:
    # The same setup without skip_signature_validation: the control.
    proxy = start_proxy(bucket, validator=lambda token, b: True)
    client = client_for(proxy, CLIENT_ACCESS_KEY, "not-the-secret")
    with pytest.raises(ClientError) as exc:
        client.put_object(Bucket=bucket, Key="unchecked", Body=b"x")
    assert_client_error(exc, 403, "SignatureDoesNotMatch", client)


def test_backend_rejection_is_passed_through(start_proxy: Callable[..., Any], client_for: Callable[..., Any],
                                             direct: Any, bucket: str) -> None:
    # cos_map with a wrong backend secret: the client is fine, the backend
    # refuses the proxy's signature, and the client sees a 403: the proxy's
    # own AccessDenied, not the backend's SignatureDoesNotMatch and its
    # details (issue 12, item 11; tests/test_backend_path.py).
    proxy = start_proxy(bucket, entry={"secret_key": "wrong-backend-secret"})
    client = client_for(proxy)
    with pytest.raises(ClientError) as exc:
        client.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert_client_error(exc, 403, "AccessDenied", client)
    assert stored_keys(direct, bucket) == []

