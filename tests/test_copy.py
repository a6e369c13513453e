"""CopyObject through the proxy: x-amz-copy-source is forwarded, and its
bucket is routed and authorized like any other."""

from __future__ import annotations

from typing import Any, Callable

import pytest
from botocore.exceptions import ClientError

from helpers import CLIENT_ACCESS_KEY, CallLog, assert_client_error, object_exists, stored_body


def test_copy_within_bucket(client: Any, direct: Any, bucket: str) -> None:
    direct.put_object(Bucket=bucket, Key="src.txt", Body=b"copy me", ContentType="text/plain")

    client.copy_object(Bucket=bucket, Key="dst.txt", CopySource={"Bucket": bucket, "Key": "src.txt"})

    assert stored_body(direct, bucket, "dst.txt") == b"copy me"
    assert direct.head_object(Bucket=bucket, Key="dst.txt")["ContentType"] == "text/plain"


def test_copy_between_mapped_buckets_with_odd_source_key(start_proxy: Callable[..., Any],
                                                         client_for: Callable[..., Any],
                                                         make_bucket: Callable[..., str], direct: Any) -> None:
    src, dst = make_bucket("src"), make_bucket("dst")
    client = client_for(start_proxy(src, dst))
    key = "dir/ünï cødé+1%.txt"
    direct.put_object(Bucket=src, Key=key, Body=b"between buckets")

    client.copy_object(Bucket=dst, Key="copied", CopySource={"Bucket": src, "Key": key})

    assert stored_body(direct, dst, "copied") == b"between buckets"


def test_copy_replaces_metadata_when_asked(client: Any, direct: Any, bucket: str) -> None:
    direct.put_object(Bucket=bucket, Key="src", Body=b"m", Metadata={"v": "1"})

    client.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"},
                       MetadataDirective="REPLACE", ContentType="application/json")

    head = direct.head_object(Bucket=bucket, Key="dst")
    assert head["ContentType"] == "application/json"
    assert head["Metadata"] == {}


def test_upload_part_copy(client: Any, direct: Any, bucket: str) -> None:
    source = bytes(range(256)) * 40
    direct.put_object(Bucket=bucket, Key="part-source", Body=source)
    upload = client.create_multipart_upload(Bucket=bucket, Key="assembled")
    part = client.upload_part_copy(Bucket=bucket, Key="assembled", UploadId=upload["UploadId"], PartNumber=1,
                                   CopySource={"Bucket": bucket, "Key": "part-source"},
                                   CopySourceRange="bytes=100-1099")
    client.complete_multipart_upload(
        Bucket=bucket, Key="assembled", UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"ETag": part["CopyPartResult"]["ETag"], "PartNumber": 1}]})

    assert stored_body(direct, bucket, "assembled") == source[100:1100]


def test_copy_from_bucket_not_in_cos_map(client: Any, direct: Any, bucket: str,
                                         make_bucket: Callable[..., str]) -> None:
    # The source exists at the backend, but the proxy does not serve it.
    hidden = make_bucket("hidden")
    direct.put_object(Bucket=hidden, Key="secret.txt", Body=b"not for proxy clients")

    with pytest.raises(ClientError) as exc:
        client.copy_object(Bucket=bucket, Key="stolen", CopySource={"Bucket": hidden, "Key": "secret.txt"})

    assert_client_error(exc, 404, "NoSuchBucket", client)
    assert not object_exists(direct, bucket, "stolen")


def test_copy_from_bucket_the_validator_denies(start_proxy: Callable[..., Any], client_for: Callable[..., Any],
                                              make_bucket: Callable[..., str], direct: Any) -> None:
    allowed, denied = make_bucket("allowed"), make_bucket("denied")
    direct.put_object(Bucket=denied, Key="private.txt", Body=b"private")
    log = CallLog()

    def validator(token: str, bucket: str) -> bool:
        log.add(token, bucket)
        return bucket == allowed

    client = client_for(start_proxy(allowed, denied, validator=validator))

    with pytest.raises(ClientError) as exc:
        client.copy_object(Bucket=allowed, Key="leaked", CopySource={"Bucket": denied, "Key": "private.txt"})

    assert_client_error(exc, 403, "AccessDenied", client)
    assert not object_exists(direct, allowed, "leaked")
    assert (CLIENT_ACCESS_KEY, denied) in log.calls
