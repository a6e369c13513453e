"""The newest boto3 (1.43, from the pyenv interpreter, in a child process)
through the proxy, with its defaults: over HTTPS it sends uploads as
aws-chunked `STREAMING-UNSIGNED-PAYLOAD-TRAILER` bodies with an
`x-amz-checksum-crc32` trailer; over plain HTTP a signed payload hash and an
`x-amz-checksum-crc32` header. What versitygw stores must be the client's
bytes exactly.

The venv's boto3 (Debian's 1.26) predates default checksums, hence the child
process (clients.run_boto3_latest). It runs a scenario (Python source) after
a preamble that builds the client from OSP_PARAMS and records the headers of
every request it sends; the scenario reports with ``emit(...)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest

from clients import (
    MIB,
    assert_stored_exactly,
    fetch,
    https_endpoint,
    part_count,
    run_boto3_latest,
    sent_for,
    write_random,
)
from helpers import (
    object_exists,
    parse_s3_error,
    stored_body,
    stored_keys,
)


# --------------------------------------------------------------------------
# fixtures: the same test over HTTPS (aws-chunked trailers) and plain HTTP


@pytest.fixture(params=["https", "http"])
def transport(request: Any) -> str:
    return str(request.param)


@pytest.fixture
def endpoint(
    transport: str, start_proxy: Callable[..., Any], bucket: str, tls_cert: Tuple[str, str]
) -> Tuple[str, Optional[str]]:
    """(endpoint URL, CA bundle or None) of a proxy for ``bucket``."""
    cert, key = tls_cert
    server = start_proxy(bucket, https_port=0, tls_cert_path=cert, tls_key_path=key)
    if transport == "https":
        return https_endpoint(server), cert
    return server.endpoint_url, None


def check_upload_mode(out: Dict[str, Any], transport: str, sent: List[Dict[str, Any]]) -> None:
    """The upload requests used the mode the test is about."""
    assert sent, out["sent"]
    for s in sent:
        if transport == "https":
            assert s["content_sha256"] == "STREAMING-UNSIGNED-PAYLOAD-TRAILER", s
            assert s["trailer"] == "x-amz-checksum-crc32", s
        else:
            assert len(s["content_sha256"] or "") == 64, s
            assert s["checksum_crc32"], s


# --------------------------------------------------------------------------
# tests


def test_put_get_head_list(tmp_path: Path, endpoint: Tuple[str, Optional[str]], transport: str, bucket: str, direct: Any) -> None:
    url, ca = endpoint
    data = write_random(tmp_path / "small.bin", 70_000)
    out = run_boto3_latest(
        tmp_path,
        """
        body = open("small.bin", "rb").read()
        put = s3.put_object(Bucket=bucket, Key="dir/small.bin", Body=body, Metadata={"origin": "boto3-latest"})
        got = s3.get_object(Bucket=bucket, Key="dir/small.bin")
        got_body = got["Body"].read()
        head = s3.head_object(Bucket=bucket, Key="dir/small.bin")
        listed = s3.list_objects_v2(Bucket=bucket, Prefix="dir/")
        emit(
            put_crc32=put.get("ChecksumCRC32"),
            same=(got_body == body),
            got_len=len(got_body),
            head_len=head["ContentLength"],
            metadata=head["Metadata"],
            keys=[o["Key"] for o in listed.get("Contents", [])],
        )
        """,
        endpoint=url, ca=ca, bucket=bucket,
    )
    check_upload_mode(out, transport, sent_for(out, "PUT"))
    assert out["same"] and out["got_len"] == len(data), out
    assert out["head_len"] == len(data)
    assert out["metadata"] == {"origin": "boto3-latest"}
    assert out["keys"] == ["dir/small.bin"]
    assert_stored_exactly(direct, bucket, "dir/small.bin", data)


def test_multipart_upload_file_and_download(
    tmp_path: Path, endpoint: Tuple[str, Optional[str]], transport: str, bucket: str, direct: Any
) -> None:
    url, ca = endpoint
    data = write_random(tmp_path / "big.bin", 12 * MIB + 12345)
    out = run_boto3_latest(
        tmp_path,
        """
        cfg = TransferConfig(multipart_threshold=8 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024, max_concurrency=3)
        s3.upload_file("big.bin", bucket, "big.bin", Config=cfg)
        s3.download_file(bucket, "big.bin", "big.down", Config=cfg)
        emit(same=(open("big.bin", "rb").read() == open("big.down", "rb").read()))
        """,
        endpoint=url, ca=ca, bucket=bucket,
    )
    check_upload_mode(out, transport, sent_for(out, "PUT", query="partNumber="))
    assert len(sent_for(out, "PUT", query="partNumber=")) == 3, out["sent"]
    assert out["same"], "the file downloaded through the proxy differs from the uploaded one"
    assert_stored_exactly(direct, bucket, "big.bin", data)
    assert part_count(direct, bucket, "big.bin") == 3


def test_copy_object(tmp_path: Path, endpoint: Tuple[str, Optional[str]], bucket: str, direct: Any) -> None:
    url, ca = endpoint
    data = write_random(tmp_path / "src.bin", 33_333)
    out = run_boto3_latest(
        tmp_path,
        """
        s3.put_object(Bucket=bucket, Key="src.bin", Body=open("src.bin", "rb").read())
        s3.copy_object(Bucket=bucket, Key="copy.bin", CopySource={"Bucket": bucket, "Key": "src.bin"})
        s3.copy({"Bucket": bucket, "Key": "src.bin"}, bucket, "copy2.bin")  # managed copy
        emit(copy=s3.get_object(Bucket=bucket, Key="copy.bin")["Body"].read() == open("src.bin", "rb").read())
        """,
        endpoint=url, ca=ca, bucket=bucket,
    )
    assert out["copy"]
    for key in ("src.bin", "copy.bin", "copy2.bin"):
        assert_stored_exactly(direct, bucket, key, data)


def test_presigned_get_and_put(tmp_path: Path, endpoint: Tuple[str, Optional[str]], bucket: str, direct: Any) -> None:
    """URLs presigned by boto3 (SigV4 query auth, UNSIGNED-PAYLOAD) work
    from urllib with no other headers."""
    url, ca = endpoint
    data = b"presigned get \x00\xff" * 1000
    direct.put_object(Bucket=bucket, Key="get.bin", Body=data)
    out = run_boto3_latest(
        tmp_path,
        """
        emit(
            get_url=s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "get.bin"}, ExpiresIn=300),
            put_url=s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "put.bin"}, ExpiresIn=300),
        )
        """,
        endpoint=url, ca=ca, bucket=bucket,
    )
    for presigned in (out["get_url"], out["put_url"]):
        assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in presigned and "X-Amz-Signature=" in presigned, presigned

    status, body = fetch(out["get_url"], cafile=ca)
    assert status == 200, (status, body[:500])
    assert body == data

    uploaded = b"presigned put \x00\xff" * 777
    status, body = fetch(out["put_url"], method="PUT", data=uploaded, cafile=ca)
    assert status == 200, (status, body[:500])
    assert_stored_exactly(direct, bucket, "put.bin", uploaded)


def test_wrong_secret_is_rejected_and_nothing_stored(
    tmp_path: Path, endpoint: Tuple[str, Optional[str]], transport: str, bucket: str, direct: Any
) -> None:
    url, ca = endpoint
    write_random(tmp_path / "small.bin", 10_000)
    out = run_boto3_latest(
        tmp_path,
        """
        errors = []
        try:
            s3.put_object(Bucket=bucket, Key="small.bin", Body=open("small.bin", "rb").read())
        except ClientError as e:
            errors.append(error_of(e))
        emit(errors=errors)
        """,
        endpoint=url, ca=ca, bucket=bucket, secret_key="not-the-client-secret",
    )
    check_upload_mode(out, transport, sent_for(out, "PUT"))
    assert [(e["status"], e["code"]) for e in out["errors"]] == [(403, "SignatureDoesNotMatch")], out["errors"]
    assert not object_exists(direct, bucket, "small.bin")


def test_presigned_url_with_wrong_secret_is_rejected(
    tmp_path: Path, start_proxy: Callable[..., Any], bucket: str, direct: Any
) -> None:
    server = start_proxy(bucket)
    out = run_boto3_latest(
        tmp_path,
        """
        emit(put_url=s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "x.bin"}, ExpiresIn=300))
        """,
        endpoint=server.endpoint_url, bucket=bucket, secret_key="not-the-client-secret",
    )
    status, body = fetch(out["put_url"], method="PUT", data=b"forged")
    assert status == 403, (status, body[:500])
    assert parse_s3_error(body)["Code"] == "SignatureDoesNotMatch"
    assert not object_exists(direct, bucket, "x.bin")


# --------------------------------------------------------------------------
# addressing: virtual-host style and ListBuckets


def test_virtual_host_addressing(
    tmp_path: Path, start_proxy: Callable[..., Any], bucket: str, direct: Any
) -> None:
    """boto3 with addressing_style="virtual" against an endpoint in the
    proxy's virtual_host_domains: `bucket.s3.osp.test:port/key` addresses
    `bucket` (the child resolves *.osp.test to 127.0.0.1)."""
    server = start_proxy(bucket, virtual_host_domains=["s3.osp.test"])
    data = write_random(tmp_path / "v.bin", 20_000)
    out = run_boto3_latest(
        tmp_path,
        """
        v = make_client("virtual")
        v.put_object(Bucket=bucket, Key="v/dir/v.bin", Body=open("v.bin", "rb").read())
        body = v.get_object(Bucket=bucket, Key="v/dir/v.bin")["Body"].read()
        keys = [o["Key"] for o in v.list_objects_v2(Bucket=bucket).get("Contents", [])]
        v.delete_object(Bucket=bucket, Key="v/dir/v.bin")
        v.put_object(Bucket=bucket, Key="kept.bin", Body=body)
        emit(same=(body == open("v.bin", "rb").read()), keys=keys)
        """,
        endpoint=f"http://s3.osp.test:{server.http_port}", bucket=bucket, resolve_to_localhost=".osp.test",
    )
    hosts = {s["url"].split("/")[2] for s in out["sent"]}
    assert hosts == {f"{bucket}.s3.osp.test:{server.http_port}"}, hosts
    assert out["same"] and out["keys"] == ["v/dir/v.bin"], out
    assert stored_keys(direct, bucket) == ["kept.bin"]
    assert stored_body(direct, bucket, "kept.bin") == data


def test_list_buckets_shows_the_allowed_buckets(
    tmp_path: Path, start_proxy: Callable[..., Any], make_bucket: Callable[..., str]
) -> None:
    allowed, denied = make_bucket("allowed"), make_bucket("denied")
    server = start_proxy(allowed, denied, validator=lambda token, b: b == allowed)
    out = run_boto3_latest(
        tmp_path,
        """
        emit(buckets=[b["Name"] for b in s3.list_buckets()["Buckets"]])
        """,
        endpoint=server.endpoint_url, bucket=allowed,
    )
    assert out["buckets"] == [allowed]

