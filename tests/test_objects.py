"""Basic S3 operations through the proxy, checked at versitygw directly."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import time
from typing import Any, Callable

import pytest
from botocore.exceptions import ClientError

from helpers import (
    assert_client_error,
    bucket_exists,
    object_exists,
    send_signed,
    sign_request,
    stored_body,
    stored_keys,
)


def test_create_bucket_through_proxy(start_proxy: Callable[..., Any], client_for: Callable[..., Any],
                                     direct: Any, new_bucket_name: Callable[..., str]) -> None:
    name = new_bucket_name()
    client = client_for(start_proxy(name))
    assert not bucket_exists(direct, name)

    client.create_bucket(Bucket=name)

    assert bucket_exists(direct, name)
    client.head_bucket(Bucket=name)  # and it is visible through the proxy


def test_put_get_head_delete(client: Any, direct: Any, bucket: str) -> None:
    body = b"hello, object storage\n" * 100
    put = client.put_object(Bucket=bucket, Key="greeting.txt", Body=body)

    assert stored_body(direct, bucket, "greeting.txt") == body
    assert put["ETag"] == direct.head_object(Bucket=bucket, Key="greeting.txt")["ETag"]

    got = client.get_object(Bucket=bucket, Key="greeting.txt")
    assert got["Body"].read() == body
    assert got["ContentLength"] == len(body)

    head = client.head_object(Bucket=bucket, Key="greeting.txt")
    assert head["ContentLength"] == len(body)
    assert head["ETag"] == put["ETag"]

    client.delete_object(Bucket=bucket, Key="greeting.txt")
    assert not object_exists(direct, bucket, "greeting.txt")
    with pytest.raises(ClientError) as exc:
        client.head_object(Bucket=bucket, Key="greeting.txt")
    assert_client_error(exc, 404, "404")
    with pytest.raises(ClientError) as exc:
        client.get_object(Bucket=bucket, Key="greeting.txt")
    assert_client_error(exc, 404, "NoSuchKey", client)


def test_empty_object(client: Any, direct: Any, bucket: str) -> None:
    client.put_object(Bucket=bucket, Key="empty", Body=b"")
    assert stored_body(direct, bucket, "empty") == b""
    assert client.get_object(Bucket=bucket, Key="empty")["Body"].read() == b""


def test_delete_objects_batch(client: Any, direct: Any, bucket: str) -> None:
    # DeleteObjects is a POST ?delete with a Content-MD5 the backend checks.
    for key in ("d/1", "d/2", "keep"):
        direct.put_object(Bucket=bucket, Key=key, Body=key.encode())

    out = client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "d/1"}, {"Key": "d/2"}]})

    assert sorted(d["Key"] for d in out.get("Deleted", [])) == ["d/1", "d/2"]
    assert not out.get("Errors")
    assert stored_keys(direct, bucket) == ["keep"]


def test_range_get(client: Any, direct: Any, bucket: str) -> None:
    data = bytes(range(256)) * 4
    direct.put_object(Bucket=bucket, Key="ranged", Body=data)

    middle = client.get_object(Bucket=bucket, Key="ranged", Range="bytes=10-19")
    assert middle["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert middle["Body"].read() == data[10:20]
    assert middle["ContentRange"] == f"bytes 10-19/{len(data)}"

    suffix = client.get_object(Bucket=bucket, Key="ranged", Range="bytes=-5")
    assert suffix["Body"].read() == data[-5:]

    with pytest.raises(ClientError) as exc:
        client.get_object(Bucket=bucket, Key="ranged", Range=f"bytes={len(data) + 10}-")
    assert_client_error(exc, 416, "InvalidRange", client)


def test_conditional_get(client: Any, direct: Any, bucket: str) -> None:
    etag = direct.put_object(Bucket=bucket, Key="cond", Body=b"v1")["ETag"]
    with pytest.raises(ClientError) as exc:
        client.get_object(Bucket=bucket, Key="cond", IfNoneMatch=etag)
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    with pytest.raises(ClientError) as exc:
        client.get_object(Bucket=bucket, Key="cond", IfMatch='"0123456789abcdef0123456789abcdef"')
    assert_client_error(exc, 412, "PreconditionFailed", client)
    assert client.get_object(Bucket=bucket, Key="cond", IfMatch=etag)["Body"].read() == b"v1"


def test_metadata_round_trip(client: Any, direct: Any, bucket: str) -> None:
    client.put_object(
        Bucket=bucket,
        Key="report.csv",
        Body=b"a,b\n1,2\n",
        ContentType="text/csv; charset=utf-8",
        ContentDisposition='attachment; filename="report.csv"',
        Metadata={"owner": "alice", "project-id": "42"},
    )

    for view in (direct, client):
        head = view.head_object(Bucket=bucket, Key="report.csv")
        assert head["ContentType"] == "text/csv; charset=utf-8"
        assert head["ContentDisposition"] == 'attachment; filename="report.csv"'
    got = client.get_object(Bucket=bucket, Key="report.csv")
    assert got["ContentType"] == "text/csv; charset=utf-8"
    assert got["Body"].read() == b"a,b\n1,2\n"
    # User metadata comes back exactly as it was written (S3 metadata names
    # are lower case; directly, versitygw keeps them so).
    assert direct.head_object(Bucket=bucket, Key="report.csv")["Metadata"] == {"owner": "alice", "project-id": "42"}
    assert got["Metadata"] == {"owner": "alice", "project-id": "42"}


def test_content_md5_is_forwarded(client: Any, direct: Any, bucket: str) -> None:
    body = b"checked by md5"
    good = base64.b64encode(hashlib.md5(body).digest()).decode()
    client.put_object(Bucket=bucket, Key="md5-ok", Body=body, ContentMD5=good)
    assert stored_body(direct, bucket, "md5-ok") == body

    # A wrong Content-MD5 must reach the backend, which rejects the body.
    wrong = base64.b64encode(hashlib.md5(b"something else").digest()).decode()
    with pytest.raises(ClientError) as exc:
        client.put_object(Bucket=bucket, Key="md5-bad", Body=body, ContentMD5=wrong)
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert not object_exists(direct, bucket, "md5-bad")


def test_object_tagging(client: Any, direct: Any, bucket: str) -> None:
    client.put_object(Bucket=bucket, Key="tagged", Body=b"t", Tagging="team=data&tier=hot")
    tags = direct.get_object_tagging(Bucket=bucket, Key="tagged")["TagSet"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("team", "data"), ("tier", "hot")]

    client.put_object_tagging(Bucket=bucket, Key="tagged", Tagging={"TagSet": [{"Key": "k", "Value": "v w"}]})
    tags = client.get_object_tagging(Bucket=bucket, Key="tagged")["TagSet"]
    assert [(t["Key"], t["Value"]) for t in tags] == [("k", "v w")]


def test_client_cut_off_mid_unsigned_put_stores_nothing(proxy: Any, direct: Any, bucket: str) -> None:
    """An UNSIGNED-PAYLOAD PUT whose client goes away half-way must not leave
    a partial object (versitygw itself would store what arrived)."""
    body = os.urandom(4 * 1024 * 1024)
    url = f"{proxy.endpoint_url}/{bucket}/cut-off"
    headers = sign_request("PUT", url, body=body, payload_hash="UNSIGNED-PAYLOAD")
    head = "".join(f"{k}: {v}\r\n" for k, v in {**headers, "Content-Length": str(len(body))}.items())
    sock = socket.create_connection(("127.0.0.1", proxy.http_port), timeout=10)
    sock.sendall(f"PUT /{bucket}/cut-off HTTP/1.1\r\nHost: 127.0.0.1:{proxy.http_port}\r\n{head}\r\n".encode())
    sock.sendall(body[: len(body) // 2])
    time.sleep(0.3)
    sock.close()
    time.sleep(0.5)
    assert not object_exists(direct, bucket, "cut-off")


def test_unsigned_put_is_stored_whole(proxy: Any, direct: Any, bucket: str) -> None:
    body = os.urandom(300_001)
    url = f"{proxy.endpoint_url}/{bucket}/unsigned"
    response = send_signed("PUT", url, body=body, payload_hash="UNSIGNED-PAYLOAD")
    assert response.status_code == 200, response.content
    assert stored_body(direct, bucket, "unsigned") == body
