"""Errors the proxy answers itself, as S3 XML with the right status: an
unmapped bucket, an unreachable backend, features not implemented yet."""

from __future__ import annotations

import base64
import hashlib
import hmac
import zlib
from email.utils import formatdate
from typing import Any, Callable

import pytest
import requests
from botocore.exceptions import ClientError

from helpers import (
    CLIENT_ACCESS_KEY,
    CLIENT_SECRET_KEY,
    assert_client_error,
    assert_s3_error,
    bucket_exists,
    free_port,
    object_exists,
    send_signed,
    stored_body,
    stored_keys,
)


# --------------------------------------------------------------------------
# NoSuchBucket for buckets not in cos_map


def test_bucket_not_in_cos_map(proxy: Any, client: Any, direct: Any, make_bucket: Callable[..., str]) -> None:
    # The bucket exists at the backend; the proxy must not serve it.
    unmapped = make_bucket("unmapped")
    direct.put_object(Bucket=unmapped, Key="inside", Body=b"hidden")

    put = send_signed("PUT", f"{proxy.endpoint_url}/{unmapped}/new", body=b"x")
    fields = assert_s3_error(put, 404, "NoSuchBucket")
    assert fields.get("Resource", unmapped) == unmapped
    get = send_signed("GET", f"{proxy.endpoint_url}/{unmapped}/inside")
    assert_s3_error(get, 404, "NoSuchBucket")
    assert b"hidden" not in get.content
    listing = send_signed("GET", f"{proxy.endpoint_url}/{unmapped}?list-type=2")
    assert_s3_error(listing, 404, "NoSuchBucket")

    with pytest.raises(ClientError) as exc:
        client.delete_object(Bucket=unmapped, Key="inside")
    assert_client_error(exc, 404, "NoSuchBucket", client)
    with pytest.raises(ClientError) as exc:
        client.head_object(Bucket=unmapped, Key="inside")
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404

    assert stored_keys(direct, unmapped) == ["inside"]


def test_create_bucket_not_in_cos_map(client: Any, direct: Any, new_bucket_name: Callable[..., str]) -> None:
    name = new_bucket_name("nomap")
    with pytest.raises(ClientError) as exc:
        client.create_bucket(Bucket=name)
    assert_client_error(exc, 404, "NoSuchBucket", client)
    assert not bucket_exists(direct, name)


# --------------------------------------------------------------------------
# unreachable backend


def test_unreachable_backend(start_proxy: Callable[..., Any], client_for: Callable[..., Any], backend: Any,
                             direct: Any, bucket: str, new_bucket_name: Callable[..., str]) -> None:
    dead = new_bucket_name("dead")
    closed_port = free_port()
    proxy = start_proxy(bucket, cos_map={dead: backend.entry(port=closed_port)})

    response = send_signed("PUT", f"{proxy.endpoint_url}/{dead}/k", body=b"x")
    assert_s3_error(response, 503, "ServiceUnavailable")
    response = send_signed("GET", f"{proxy.endpoint_url}/{dead}/k")
    assert_s3_error(response, 503, "ServiceUnavailable")

    # The other bucket is still served by the same proxy.
    client_for(proxy).put_object(Bucket=bucket, Key="alive", Body=b"alive")
    assert stored_body(direct, bucket, "alive") == b"alive"


# --------------------------------------------------------------------------
# not implemented yet: a clear 501, never a wrong answer


def test_signature_v2_is_refused(proxy: Any, direct: Any, bucket: str) -> None:
    # `aws s3 presign` (cli v1) and s3cmd default to SigV2: refuse clearly.
    date = formatdate(usegmt=True)
    string_to_sign = f"PUT\n\napplication/octet-stream\n{date}\n/{bucket}/v2"
    signature = base64.b64encode(hmac.new(CLIENT_SECRET_KEY.encode(), string_to_sign.encode(),
                                          hashlib.sha1).digest()).decode()
    response = requests.put(
        f"{proxy.endpoint_url}/{bucket}/v2", data=b"x", timeout=30,
        headers={"Date": date, "Content-Type": "application/octet-stream",
                 "Authorization": f"AWS {CLIENT_ACCESS_KEY}:{signature}"},
    )

    assert_s3_error(response, 400, "InvalidRequest")
    assert not object_exists(direct, bucket, "v2")

