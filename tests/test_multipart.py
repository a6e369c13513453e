"""Multipart uploads through the proxy."""

from __future__ import annotations

import hashlib
import random
from typing import Any

from helpers import object_exists, stored_body


def test_multipart_upload_20mb(client: Any, direct: Any, bucket: str) -> None:
    part_size = 5 * 1024 * 1024
    data = random.Random(20).randbytes(20 * 1024 * 1024)
    parts = [data[i:i + part_size] for i in range(0, len(data), part_size)]
    assert len(data) == 20 * 1024 * 1024

    upload = client.create_multipart_upload(Bucket=bucket, Key="big/object.bin", ContentType="application/x-test")
    done = []
    for number, chunk in enumerate(parts, start=1):
        part = client.upload_part(Bucket=bucket, Key="big/object.bin", UploadId=upload["UploadId"],
                                  PartNumber=number, Body=chunk)
        done.append({"ETag": part["ETag"], "PartNumber": number})
    listed = client.list_parts(Bucket=bucket, Key="big/object.bin", UploadId=upload["UploadId"])
    assert [p["PartNumber"] for p in listed["Parts"]] == [1, 2, 3, 4]
    client.complete_multipart_upload(Bucket=bucket, Key="big/object.bin", UploadId=upload["UploadId"],
                                     MultipartUpload={"Parts": done})

    stored = stored_body(direct, bucket, "big/object.bin")
    assert hashlib.sha256(stored).hexdigest() == hashlib.sha256(data).hexdigest()
    head = direct.head_object(Bucket=bucket, Key="big/object.bin")
    assert head["ContentLength"] == len(data)
    assert head["ContentType"] == "application/x-test"
    # And the download through the proxy streams the same bytes.
    got = client.get_object(Bucket=bucket, Key="big/object.bin")["Body"].read()
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()


def test_abort_multipart_upload(client: Any, direct: Any, bucket: str) -> None:
    upload = client.create_multipart_upload(Bucket=bucket, Key="aborted")
    client.upload_part(Bucket=bucket, Key="aborted", UploadId=upload["UploadId"], PartNumber=1, Body=b"x" * 1024)
    client.abort_multipart_upload(Bucket=bucket, Key="aborted", UploadId=upload["UploadId"])
    assert direct.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert not object_exists(direct, bucket, "aborted")


def test_managed_multipart_upload_with_boto3_transfer(client: Any, direct: Any, bucket: str) -> None:
    # boto3's transfer manager: parallel parts, file-like bodies (sent with
    # Expect: 100-continue), the way applications really upload.
    import io

    from boto3.s3.transfer import TransferConfig

    data = hashlib.sha512(b"seed").digest() * (12 * 1024 * 1024 // 64)
    config = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024, max_concurrency=4)
    client.upload_fileobj(io.BytesIO(data), bucket, "managed.bin", Config=config)

    assert hashlib.sha256(stored_body(direct, bucket, "managed.bin")).digest() == hashlib.sha256(data).digest()
    out = io.BytesIO()
    client.download_fileobj(bucket, "managed.bin", out, Config=config)  # ranged, parallel GETs
    assert hashlib.sha256(out.getvalue()).digest() == hashlib.sha256(data).digest()
