"""SeaweedFS as the backend: the core end-to-end tests through the proxy on
a second, independent S3 implementation (tests/seaweed.py starts it with
SigV4 on: one admin identity, no anonymous access).

The chain is the same as with versitygw:

    client --client keys--> ProxyServer --SeaweedFS admin keys--> SeaweedFS

and what was stored is checked with a boto3 client talking to SeaweedFS
directly. The first tests prove SeaweedFS itself checks signatures (a wrong
secret gets 403 from it directly) and takes the framing the proxy sends it
(STREAMING-UNSIGNED-PAYLOAD-TRAILER), so a pass further down means the proxy
re-signed the request for it. What SeaweedFS does differently from versitygw
is in docs/compatibility.md ("Second backend").
"""

from __future__ import annotations

import hashlib
import random
import socket
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import pytest
import requests
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

import awschunked as ac
from awschunked import (
    MODES,
    STREAMING_SIGNED,
    STREAMING_SIGNED_TRAILER,
    STREAMING_UNSIGNED_TRAILER,
    build_upload,
)
from clients import MIB, assert_stored_exactly, fetch, https_endpoint, part_count, run_boto3_latest, sent_for, write_random
from helpers import (
    CLIENT_ACCESS_KEY,
    CLIENT_KEYSTORE,
    CLIENT_SECRET_KEY,
    OTHER_SECRET_KEY,
    assert_client_error,
    assert_s3_error,
    make_client,
    object_exists,
    parse_s3_error,
    send_signed,
    sign_request,
    stored_body,
    stored_keys,
)
from object_storage_proxy import ProxyServer, ProxyServerConfig
from s3wire import sign_headers
from helpers import proxy_starter
from seaweed import SEAWEED_ACCESS_KEY, SEAWEED_SECRET_KEY, SeaweedFS

SHORT = {STREAMING_SIGNED: "signed", STREAMING_SIGNED_TRAILER: "signed-trailer",
         STREAMING_UNSIGNED_TRAILER: "unsigned-trailer"}
CHUNK = 8192


# --------------------------------------------------------------------------
# fixtures




@pytest.fixture(scope="module")
def sw_direct(seaweed: SeaweedFS) -> Any:
    """boto3 straight to SeaweedFS with its admin keys: the ground truth."""
    return seaweed.client()


@pytest.fixture
def sw_bucket(sw_direct: Any, new_bucket_name: Callable[..., str]) -> str:
    """A fresh bucket that exists at SeaweedFS."""
    name = new_bucket_name("osp-sw")
    sw_direct.create_bucket(Bucket=name)
    return name


@pytest.fixture
def start_sw_proxy(seaweed: SeaweedFS) -> Iterator[Callable[..., ProxyServer]]:
    """``start_sw_proxy("b1", ..., entry={...}, **options)``: ProxyServers
    mapping each named bucket to SeaweedFS, stopped after the test."""
    with proxy_starter(seaweed.entry) as start:
        yield start


@pytest.fixture
def sw_proxy(start_sw_proxy: Callable[..., ProxyServer], sw_bucket: str) -> ProxyServer:
    return start_sw_proxy(sw_bucket)


@pytest.fixture
def sw_client(sw_proxy: ProxyServer) -> Any:
    """boto3 (the venv's 1.26) through the proxy with the client's keys."""
    return make_client(sw_proxy.endpoint_url, CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY)


def payload(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


def assert_nothing_stored(sw_direct: Any, bucket: str, key: str) -> None:
    assert not object_exists(sw_direct, bucket, key), f"{key} was stored at SeaweedFS"
    assert stored_keys(sw_direct, bucket) == []


def cut_off(port: int, method: str, path: str, headers: Dict[str, str], body: bytes, sent: int) -> None:
    """Announces all of ``body``, sends ``sent`` bytes of it, and goes away
    as a dying client would."""
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{head}\r\n".encode())
        sock.sendall(body[:sent])
        time.sleep(0.3)
    finally:
        sock.close()
    time.sleep(1.0)  # let the proxy and the backend finish what they do with it


# --------------------------------------------------------------------------
# controls: SeaweedFS itself


def test_seaweedfs_refuses_a_wrong_secret_and_anonymous_requests(seaweed: SeaweedFS, sw_bucket: str) -> None:
    """SeaweedFS checks signatures: a wrong secret of its own key gets 403
    straight from it, so a request through the proxy only succeeds when the
    proxy re-signed it with the bucket's credentials."""
    wrong = seaweed.client(SEAWEED_ACCESS_KEY, "wrong-" + SEAWEED_SECRET_KEY)
    with pytest.raises(ClientError) as info:
        wrong.put_object(Bucket=sw_bucket, Key="k", Body=b"x")
    assert_client_error(info, 403, "SignatureDoesNotMatch", wrong)
    # The proxy's client keys mean nothing to SeaweedFS.
    stranger = seaweed.client(CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY)
    with pytest.raises(ClientError) as info:
        stranger.list_objects_v2(Bucket=sw_bucket)
    assert_client_error(info, 403, "InvalidAccessKeyId", stranger)
    anonymous = requests.get(f"{seaweed.endpoint_url}/{sw_bucket}", timeout=10)
    assert_s3_error(anonymous, 403, "AccessDenied")
    assert stored_keys(seaweed.client(), sw_bucket) == []


@pytest.mark.parametrize("mode", MODES, ids=[SHORT[m] for m in MODES])
def test_seaweedfs_takes_aws_chunked_directly(seaweed: SeaweedFS, sw_direct: Any, sw_bucket: str, mode: str) -> None:
    """The three aws-chunked modes straight to SeaweedFS, among them the
    proxy's own (STREAMING-UNSIGNED-PAYLOAD-TRAILER with a CRC32 trailer)."""
    data = payload(3 * CHUNK + 777)
    upload = build_upload("PUT", f"{seaweed.endpoint_url}/{sw_bucket}/control", data, mode,
                          access_key=SEAWEED_ACCESS_KEY, secret_key=SEAWEED_SECRET_KEY)
    response = ac.send(upload)
    assert response.status_code == 200, (response.status_code, response.content[:500])
    assert_stored_exactly(sw_direct, sw_bucket, "control", data)


def test_seaweedfs_refuses_a_bad_trailer_checksum_directly(seaweed: SeaweedFS, sw_direct: Any, sw_bucket: str) -> None:
    """The proxy relies on the backend checking the trailer checksum it
    forwards (a client's x-amz-checksum-* trailer): SeaweedFS does."""
    upload = build_upload("PUT", f"{seaweed.endpoint_url}/{sw_bucket}/bad-sum", payload(3 * CHUNK),
                          STREAMING_UNSIGNED_TRAILER, access_key=SEAWEED_ACCESS_KEY, secret_key=SEAWEED_SECRET_KEY)
    upload.trailers = [("x-amz-checksum-crc32", ac.checksum("crc32", b"other"))]
    response = ac.send(upload)
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:500])
    assert not object_exists(sw_direct, sw_bucket, "bad-sum")


def test_seaweedfs_refuses_unsigned_aws_chunked_without_a_trailer(seaweed: SeaweedFS, sw_direct: Any,
                                                                  sw_bucket: str) -> None:
    """Why SeaweedFS buckets need upload_framing = "plain": it reads past the
    final chunk of a STREAMING-UNSIGNED-PAYLOAD-TRAILER body that has no
    trailer and answers 400 IncompleteBody. That is the proxy's default
    framing of UNSIGNED-PAYLOAD bodies, presigned PUTs and signed chunks."""
    upload = build_upload("PUT", f"{seaweed.endpoint_url}/{sw_bucket}/no-trailer", payload(3 * CHUNK),
                          STREAMING_UNSIGNED_TRAILER, checksum_algorithm=None,
                          access_key=SEAWEED_ACCESS_KEY, secret_key=SEAWEED_SECRET_KEY)
    assert "x-amz-trailer" not in {k.lower() for k in upload.headers}
    assert_s3_error(ac.send(upload), 400, "IncompleteBody")
    assert not object_exists(sw_direct, sw_bucket, "no-trailer")


def test_seaweedfs_refuses_a_body_shorter_than_its_content_length(seaweed: SeaweedFS, sw_direct: Any,
                                                                   sw_bucket: str) -> None:
    """What upload_framing = "plain" relies on: a plain UNSIGNED-PAYLOAD PUT
    cut short leaves nothing at SeaweedFS (versitygw would store the part
    that arrived, hence its aws-chunked default)."""
    body = payload(4 * MIB)
    path = f"/{sw_bucket}/short"
    headers = sign_headers("PUT", seaweed.endpoint_url + path, access_key=SEAWEED_ACCESS_KEY,
                           secret_key=SEAWEED_SECRET_KEY, body=body, payload_hash="UNSIGNED-PAYLOAD")
    cut_off(seaweed.port, "PUT", path, {**headers, "Content-Length": str(len(body))}, body, len(body) - 1)
    assert_nothing_stored(sw_direct, sw_bucket, "short")


# --------------------------------------------------------------------------
# the core operations through the proxy


def test_create_bucket_through_proxy(start_sw_proxy: Callable[..., ProxyServer], sw_direct: Any,
                                     new_bucket_name: Callable[..., str]) -> None:
    name = new_bucket_name("osp-sw")
    client = make_client(start_sw_proxy(name).endpoint_url, CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY)
    client.create_bucket(Bucket=name)
    sw_direct.head_bucket(Bucket=name)
    client.head_bucket(Bucket=name)
    client.delete_bucket(Bucket=name)
    with pytest.raises(ClientError) as info:
        sw_direct.head_bucket(Bucket=name)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_put_get_head_delete_with_metadata(sw_client: Any, sw_direct: Any, sw_bucket: str) -> None:
    body = payload(100_003)
    put = sw_client.put_object(Bucket=sw_bucket, Key="dir/obj.bin", Body=body, ContentType="application/x-test",
                               Metadata={"origin": "osp", "note": "two words"})
    assert put["ETag"].strip('"') == hashlib.md5(body).hexdigest()

    got = sw_client.get_object(Bucket=sw_bucket, Key="dir/obj.bin")
    assert hashlib.sha256(got["Body"].read()).digest() == hashlib.sha256(body).digest()
    head = sw_client.head_object(Bucket=sw_bucket, Key="dir/obj.bin")
    assert head["ContentLength"] == len(body)
    assert head["ContentType"] == "application/x-test"
    assert head["Metadata"] == {"origin": "osp", "note": "two words"}
    assert sw_direct.head_object(Bucket=sw_bucket, Key="dir/obj.bin")["Metadata"] == head["Metadata"]
    assert_stored_exactly(sw_direct, sw_bucket, "dir/obj.bin", body)

    sw_client.delete_object(Bucket=sw_bucket, Key="dir/obj.bin")
    assert not object_exists(sw_direct, sw_bucket, "dir/obj.bin")
    with pytest.raises(ClientError) as info:
        sw_client.get_object(Bucket=sw_bucket, Key="dir/obj.bin")
    assert_client_error(info, 404, "NoSuchKey", sw_client)


def test_empty_object(sw_client: Any, sw_direct: Any, sw_bucket: str) -> None:
    sw_client.put_object(Bucket=sw_bucket, Key="empty", Body=b"")
    assert stored_body(sw_direct, sw_bucket, "empty") == b""
    assert sw_client.head_object(Bucket=sw_bucket, Key="empty")["ContentLength"] == 0


def test_list_with_paging_prefix_and_delimiter(sw_client: Any, sw_direct: Any, sw_bucket: str) -> None:
    keys = [f"a/{i:02d}" for i in range(5)] + ["b/x", "b/y", "top"]
    for key in keys:
        sw_direct.put_object(Bucket=sw_bucket, Key=key, Body=key.encode())

    seen: List[str] = []
    pages = 0
    for page in sw_client.get_paginator("list_objects_v2").paginate(Bucket=sw_bucket, PaginationConfig={"PageSize": 3}):
        pages += 1
        seen += [o["Key"] for o in page.get("Contents", [])]
    assert seen == sorted(keys) and pages == 3, (seen, pages)

    v1: List[str] = []
    for page in sw_client.get_paginator("list_objects").paginate(Bucket=sw_bucket, PaginationConfig={"PageSize": 3}):
        v1 += [o["Key"] for o in page.get("Contents", [])]
    assert v1 == sorted(keys)

    listed = sw_client.list_objects_v2(Bucket=sw_bucket, Delimiter="/")
    assert [p["Prefix"] for p in listed.get("CommonPrefixes", [])] == ["a/", "b/"]
    assert [o["Key"] for o in listed.get("Contents", [])] == ["top"]
    listed = sw_client.list_objects_v2(Bucket=sw_bucket, Prefix="b/")
    assert [o["Key"] for o in listed["Contents"]] == ["b/x", "b/y"]


@pytest.mark.parametrize("source, target", [
    ("plain", "copy of plain"),
    ("with space+plus", "dest/x+y z"),
    ("ünïcødé/ключ €", "copie/é ü"),
])
def test_copy_object(sw_client: Any, sw_direct: Any, sw_bucket: str, source: str, target: str) -> None:
    body = payload(40_000, seed=len(source))
    sw_client.put_object(Bucket=sw_bucket, Key=source, Body=body, Metadata={"m": "1"})
    sw_client.copy_object(Bucket=sw_bucket, Key=target, CopySource={"Bucket": sw_bucket, "Key": source})
    assert_stored_exactly(sw_direct, sw_bucket, target, body)
    assert sw_direct.head_object(Bucket=sw_bucket, Key=target)["Metadata"] == {"m": "1"}

    sw_client.copy_object(Bucket=sw_bucket, Key=target + "-replaced", CopySource={"Bucket": sw_bucket, "Key": source},
                          MetadataDirective="REPLACE", Metadata={"m": "2"})
    assert sw_direct.head_object(Bucket=sw_bucket, Key=target + "-replaced")["Metadata"] == {"m": "2"}
    assert sorted(stored_keys(sw_direct, sw_bucket)) == sorted([source, target, target + "-replaced"])


def test_delete_objects(sw_client: Any, sw_direct: Any, sw_bucket: str) -> None:
    for key in ("one", "two", "three", "keep"):
        sw_direct.put_object(Bucket=sw_bucket, Key=key, Body=b"x")
    result = sw_client.delete_objects(Bucket=sw_bucket, Delete={
        "Objects": [{"Key": "one"}, {"Key": "two"}, {"Key": "three"}, {"Key": "never-was"}]})
    assert sorted(d["Key"] for d in result.get("Deleted", [])) == ["never-was", "one", "three", "two"]
    assert not result.get("Errors")
    assert stored_keys(sw_direct, sw_bucket) == ["keep"]


def test_ranged_get(sw_client: Any, sw_direct: Any, sw_bucket: str) -> None:
    body = payload(10_000)
    sw_direct.put_object(Bucket=sw_bucket, Key="ranged", Body=body)
    for header, expected in (("bytes=10-19", body[10:20]), ("bytes=-5", body[-5:]), ("bytes=9990-", body[9990:])):
        got = sw_client.get_object(Bucket=sw_bucket, Key="ranged", Range=header)
        assert got["ResponseMetadata"]["HTTPStatusCode"] == 206, header
        assert got["Body"].read() == expected, header
        assert got["ContentRange"].endswith("/10000"), got["ContentRange"]


def test_conditional_get(sw_client: Any, sw_direct: Any, sw_bucket: str) -> None:
    etag = sw_direct.put_object(Bucket=sw_bucket, Key="cond", Body=b"conditional")["ETag"]
    with pytest.raises(ClientError) as info:
        sw_client.get_object(Bucket=sw_bucket, Key="cond", IfNoneMatch=etag)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    with pytest.raises(ClientError) as info:
        sw_client.get_object(Bucket=sw_bucket, Key="cond", IfMatch='"0123456789abcdef0123456789abcdef"')
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412


def test_multipart_upload(sw_client: Any, sw_direct: Any, sw_bucket: str) -> None:
    parts = [payload(5 * MIB, seed=1), payload(5 * MIB, seed=2), payload(123_457, seed=3)]
    upload_id = sw_client.create_multipart_upload(Bucket=sw_bucket, Key="mp", Metadata={"kind": "multipart"})["UploadId"]
    done = []
    for number, data in enumerate(parts, start=1):
        etag = sw_client.upload_part(Bucket=sw_bucket, Key="mp", UploadId=upload_id, PartNumber=number, Body=data)["ETag"]
        done.append({"PartNumber": number, "ETag": etag})
    listed = sw_client.list_parts(Bucket=sw_bucket, Key="mp", UploadId=upload_id)
    assert [p["PartNumber"] for p in listed["Parts"]] == [1, 2, 3]
    uploads = sw_client.list_multipart_uploads(Bucket=sw_bucket).get("Uploads", [])
    assert [u["UploadId"] for u in uploads] == [upload_id]
    sw_client.complete_multipart_upload(Bucket=sw_bucket, Key="mp", UploadId=upload_id, MultipartUpload={"Parts": done})
    assert_stored_exactly(sw_direct, sw_bucket, "mp", b"".join(parts))
    assert part_count(sw_direct, sw_bucket, "mp") == 3
    assert sw_direct.head_object(Bucket=sw_bucket, Key="mp")["Metadata"] == {"kind": "multipart"}


def test_abort_multipart_upload(sw_client: Any, sw_direct: Any, sw_bucket: str) -> None:
    upload_id = sw_client.create_multipart_upload(Bucket=sw_bucket, Key="aborted")["UploadId"]
    sw_client.upload_part(Bucket=sw_bucket, Key="aborted", UploadId=upload_id, PartNumber=1, Body=b"part")
    sw_client.abort_multipart_upload(Bucket=sw_bucket, Key="aborted", UploadId=upload_id)
    assert not sw_direct.list_multipart_uploads(Bucket=sw_bucket).get("Uploads")
    assert not object_exists(sw_direct, sw_bucket, "aborted")


def test_managed_transfer(sw_client: Any, sw_direct: Any, sw_bucket: str, tmp_path: Path) -> None:
    """boto3's transfer manager: a concurrent multipart upload and a ranged,
    concurrent download."""
    data = write_random(tmp_path / "big.bin", 11 * MIB + 17)
    config = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB, max_concurrency=3)
    sw_client.upload_file(str(tmp_path / "big.bin"), sw_bucket, "big.bin", Config=config)
    assert_stored_exactly(sw_direct, sw_bucket, "big.bin", data)
    assert part_count(sw_direct, sw_bucket, "big.bin") == 3
    sw_client.download_file(sw_bucket, "big.bin", str(tmp_path / "big.down"), Config=config)
    assert (tmp_path / "big.down").read_bytes() == data


def test_object_tagging(sw_client: Any, sw_bucket: str) -> None:
    sw_client.put_object(Bucket=sw_bucket, Key="tagged", Body=b"t")
    sw_client.put_object_tagging(Bucket=sw_bucket, Key="tagged", Tagging={"TagSet": [{"Key": "k", "Value": "v w"}]})
    tags = sw_client.get_object_tagging(Bucket=sw_bucket, Key="tagged")["TagSet"]
    assert [(t["Key"], t["Value"]) for t in tags] == [("k", "v w")]


@pytest.mark.parametrize("key", ["presigned.bin", "with space+plus/ü.bin"])
def test_presigned_get_head_put(sw_client: Any, sw_direct: Any, sw_bucket: str, key: str) -> None:
    data = payload(20_000)
    put_url = sw_client.generate_presigned_url("put_object", Params={"Bucket": sw_bucket, "Key": key}, ExpiresIn=300)
    status, body = fetch(put_url, method="PUT", data=data)
    assert status == 200, body[:500]
    assert_stored_exactly(sw_direct, sw_bucket, key, data)
    get_url = sw_client.generate_presigned_url("get_object", Params={"Bucket": sw_bucket, "Key": key}, ExpiresIn=300)
    assert fetch(get_url) == (200, data)
    ranged = requests.get(get_url, headers={"Range": "bytes=0-9"}, timeout=30)
    assert ranged.status_code == 206 and ranged.content == data[:10]
    head_url = sw_client.generate_presigned_url("head_object", Params={"Bucket": sw_bucket, "Key": key}, ExpiresIn=300)
    assert fetch(head_url, method="HEAD")[0] == 200
    tampered = get_url.replace("X-Amz-Signature=", "X-Amz-Signature=0")
    assert_s3_error(requests.get(tampered, timeout=30), 403, "SignatureDoesNotMatch")


# --------------------------------------------------------------------------
# bodies: what the proxy re-frames for SeaweedFS, and what must never be stored


@pytest.mark.parametrize("mode", MODES, ids=[SHORT[m] for m in MODES])
@pytest.mark.parametrize("size", [0, 3 * CHUNK + 1234, 200_003], ids=["empty", "ragged", "200k"])
def test_aws_chunked_put(sw_proxy: ProxyServer, sw_direct: Any, sw_bucket: str, mode: str, size: int) -> None:
    """aws-chunked uploads from a client (signed chunks, signed chunks with a
    trailer, unsigned chunks with a trailer): the proxy verifies them and
    sends its own STREAMING-UNSIGNED-PAYLOAD-TRAILER framing to SeaweedFS."""
    data = payload(size, seed=size)
    upload = build_upload("PUT", f"{sw_proxy.endpoint_url}/{sw_bucket}/streamed", data, mode,
                          chunk_size=65536 if size > 100_000 else CHUNK)
    response = ac.send(upload)
    assert response.status_code == 200, (response.status_code, response.content[:500])
    assert_stored_exactly(sw_direct, sw_bucket, "streamed", data)
    assert sw_direct.head_object(Bucket=sw_bucket, Key="streamed").get("ContentEncoding") in (None, "")


@pytest.mark.parametrize("mode", MODES, ids=[SHORT[m] for m in MODES])
def test_aws_chunked_upload_part(sw_proxy: ProxyServer, sw_direct: Any, sw_bucket: str, mode: str) -> None:
    client = make_client(sw_proxy.endpoint_url, CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY)
    upload_id = client.create_multipart_upload(Bucket=sw_bucket, Key="parts")["UploadId"]
    data = payload(5 * MIB + 3, seed=7)
    upload = build_upload("PUT", f"{sw_proxy.endpoint_url}/{sw_bucket}/parts?partNumber=1&uploadId={upload_id}",
                          data, mode, chunk_size=MIB)
    response = ac.send(upload)
    assert response.status_code == 200, (response.status_code, response.content[:500])
    etag = response.headers["ETag"]
    client.complete_multipart_upload(Bucket=sw_bucket, Key="parts", UploadId=upload_id,
                                     MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert_stored_exactly(sw_direct, sw_bucket, "parts", data)


def test_unsigned_payload_put(sw_proxy: ProxyServer, sw_direct: Any, sw_bucket: str) -> None:
    """UNSIGNED-PAYLOAD: the proxy frames it as aws-chunked for SeaweedFS."""
    body = payload(300_001)
    response = send_signed("PUT", f"{sw_proxy.endpoint_url}/{sw_bucket}/unsigned", body=body,
                           payload_hash="UNSIGNED-PAYLOAD")
    assert response.status_code == 200, response.content
    assert_stored_exactly(sw_direct, sw_bucket, "unsigned", body)


@pytest.mark.parametrize("payload_hash", ["UNSIGNED-PAYLOAD", "signed"])
def test_client_cut_off_mid_put_stores_nothing(sw_proxy: ProxyServer, sw_direct: Any, sw_bucket: str,
                                               payload_hash: str) -> None:
    """A PUT whose client goes away half-way leaves no object at SeaweedFS,
    with an unsigned body (the proxy's framing never gets its final chunk)
    and with a signed payload hash (SeaweedFS checks the hash)."""
    body = payload(4 * MIB)
    path = f"/{sw_bucket}/cut-off"
    url = sw_proxy.endpoint_url + path
    if payload_hash == "signed":
        headers = sign_request("PUT", url, body=body)
    else:
        headers = sign_request("PUT", url, body=body, payload_hash=payload_hash)
    cut_off(sw_proxy.http_port, "PUT", path, {**headers, "Content-Length": str(len(body))}, body, len(body) // 2)
    assert_nothing_stored(sw_direct, sw_bucket, "cut-off")


@pytest.mark.parametrize("mode", MODES, ids=[SHORT[m] for m in MODES])
def test_aws_chunked_cut_before_the_final_chunk_stores_nothing(sw_proxy: ProxyServer, sw_direct: Any,
                                                               sw_bucket: str, mode: str) -> None:
    data = payload(4 * CHUNK)
    upload = build_upload("PUT", f"{sw_proxy.endpoint_url}/{sw_bucket}/cut", data, mode)
    whole = upload.body()
    final = len(list(upload.pieces())[-1])
    ac.send_truncated(upload, len(whole) - final)
    time.sleep(1.0)
    assert_nothing_stored(sw_direct, sw_bucket, "cut")


@pytest.mark.parametrize("mode", [STREAMING_SIGNED, STREAMING_SIGNED_TRAILER], ids=["signed", "signed-trailer"])
def test_tampered_last_chunk_leaves_the_older_object(sw_proxy: ProxyServer, sw_direct: Any, sw_bucket: str,
                                                     mode: str) -> None:
    sw_direct.put_object(Bucket=sw_bucket, Key="victim", Body=b"the older object")
    upload = build_upload("PUT", f"{sw_proxy.endpoint_url}/{sw_bucket}/victim", payload(3 * CHUNK + 5), mode)
    last = upload.chunks[-2]
    last.data = bytes([last.data[0] ^ 1]) + last.data[1:]
    response = ac.send(upload)
    assert response.status_code == 403, (response.status_code, response.content[:500])
    assert parse_s3_error(response.content)["Code"] == "SignatureDoesNotMatch"
    assert stored_body(sw_direct, sw_bucket, "victim") == b"the older object"


def test_bad_trailer_checksum_through_proxy(sw_proxy: ProxyServer, sw_direct: Any, sw_bucket: str) -> None:
    upload = build_upload("PUT", f"{sw_proxy.endpoint_url}/{sw_bucket}/bad-sum", payload(3 * CHUNK),
                          STREAMING_UNSIGNED_TRAILER)
    upload.trailers = [("x-amz-checksum-crc32", ac.checksum("crc32", b"other"))]
    response = ac.send(upload)
    assert response.status_code == 400, (response.status_code, response.content[:500])
    assert parse_s3_error(response.content)["Code"] == "BadDigest"
    assert_nothing_stored(sw_direct, sw_bucket, "bad-sum")


def test_signed_hash_mismatch(sw_proxy: ProxyServer, sw_direct: Any, sw_bucket: str) -> None:
    """A body that is not the one whose hash was signed: refused (by
    SeaweedFS, which checks the hash the proxy forwards)."""
    url = f"{sw_proxy.endpoint_url}/{sw_bucket}/swapped"
    headers = sign_request("PUT", url, body=b"the signed body")
    response = requests.put(url, data=b"another body!!!", headers=headers, timeout=30)
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:500])
    assert parse_s3_error(response.content)["Code"] in ("XAmzContentSHA256Mismatch", "BadDigest")
    assert_nothing_stored(sw_direct, sw_bucket, "swapped")


@pytest.mark.parametrize("framing", ["aws-chunked", "plain"])
def test_upload_framing_setting(start_sw_proxy: Callable[..., ProxyServer], sw_direct: Any, sw_bucket: str,
                                framing: str) -> None:
    """An UNSIGNED-PAYLOAD PUT with each upload_framing: the default frames
    it without a trailer, which SeaweedFS refuses with 400 IncompleteBody
    (an S3 error, nothing stored); "plain" stores it."""
    proxy = start_sw_proxy(sw_bucket, entry={"upload_framing": framing})
    body = payload(100_000)
    response = send_signed("PUT", f"{proxy.endpoint_url}/{sw_bucket}/framed", body=body,
                           payload_hash="UNSIGNED-PAYLOAD")
    if framing == "plain":
        assert response.status_code == 200, response.content
        assert_stored_exactly(sw_direct, sw_bucket, "framed", body)
    else:
        assert_s3_error(response, 400, "IncompleteBody")
        assert_nothing_stored(sw_direct, sw_bucket, "framed")


def test_upload_framing_changes_on_reload(start_sw_proxy: Callable[..., ProxyServer], seaweed: SeaweedFS,
                                          sw_direct: Any, sw_bucket: str) -> None:
    proxy = start_sw_proxy(sw_bucket, entry={"upload_framing": "aws-chunked"})
    url = f"{proxy.endpoint_url}/{sw_bucket}/reloaded"
    assert send_signed("PUT", url, body=b"x" * 1000, payload_hash="UNSIGNED-PAYLOAD").status_code == 400
    proxy.reload(ProxyServerConfig({sw_bucket: seaweed.entry(upload_framing="plain")},
                                   hmac_keystore=dict(CLIENT_KEYSTORE), http_port=0, bind_address="127.0.0.1", admin_port=0))
    response = send_signed("PUT", url, body=b"y" * 1000, payload_hash="UNSIGNED-PAYLOAD")
    assert response.status_code == 200, response.content
    assert stored_body(sw_direct, sw_bucket, "reloaded") == b"y" * 1000


# --------------------------------------------------------------------------
# refusals: the proxy's checks in front of SeaweedFS


def test_wrong_client_secret(sw_proxy: ProxyServer, sw_direct: Any, sw_bucket: str) -> None:
    client = make_client(sw_proxy.endpoint_url, CLIENT_ACCESS_KEY, OTHER_SECRET_KEY)
    with pytest.raises(ClientError) as info:
        client.put_object(Bucket=sw_bucket, Key="k", Body=b"x")
    assert_client_error(info, 403, "SignatureDoesNotMatch", client)
    assert_nothing_stored(sw_direct, sw_bucket, "k")


def test_validator_denial(start_sw_proxy: Callable[..., ProxyServer], sw_direct: Any, sw_bucket: str) -> None:
    seen: List[Tuple[str, ...]] = []

    def validator(token: str, bucket: str, method: str, key: str, operation: str) -> bool:
        seen.append((bucket, method, key, operation))
        return operation != "PutObject"

    proxy = start_sw_proxy(sw_bucket, validator=validator)
    client = make_client(proxy.endpoint_url, CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY)
    with pytest.raises(ClientError) as info:
        client.put_object(Bucket=sw_bucket, Key="denied", Body=b"x")
    assert_client_error(info, 403, "AccessDenied", client)
    assert_nothing_stored(sw_direct, sw_bucket, "denied")
    client.list_objects_v2(Bucket=sw_bucket)
    assert (sw_bucket, "PUT", "denied", "PutObject") in seen
    assert (sw_bucket, "GET", "", "ListObjectsV2") in seen


def test_wrong_backend_secret_is_the_proxys_access_denied(start_sw_proxy: Callable[..., ProxyServer],
                                                          sw_direct: Any, sw_bucket: str) -> None:
    """SeaweedFS refuses the proxy's signature; the client sees the proxy's
    AccessDenied, without SeaweedFS's details."""
    sw_direct.put_object(Bucket=sw_bucket, Key="obj", Body=b"backend content")
    proxy = start_sw_proxy(sw_bucket, entry={"secret_key": "wrong-" + SEAWEED_SECRET_KEY})
    client = make_client(proxy.endpoint_url, CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY)
    with pytest.raises(ClientError) as info:
        client.put_object(Bucket=sw_bucket, Key="obj", Body=b"new content")
    assert_client_error(info, 403, "AccessDenied", client)
    error = info.value.response["Error"]
    assert "StringToSign" not in str(error) and SEAWEED_ACCESS_KEY not in str(error), error
    assert stored_body(sw_direct, sw_bucket, "obj") == b"backend content"


def test_unsigned_amz_header_is_refused(sw_proxy: ProxyServer, sw_direct: Any, sw_bucket: str) -> None:
    """The forwarding rule holds on this backend too: an x-amz-* header the
    client did not sign never reaches SeaweedFS."""
    response = send_signed("PUT", f"{sw_proxy.endpoint_url}/{sw_bucket}/k", body=b"x",
                           extra_headers={"x-amz-meta-injected": "1"})
    assert_s3_error(response, 403, "AccessDenied")
    assert_nothing_stored(sw_direct, sw_bucket, "k")


# --------------------------------------------------------------------------
# the newest boto3 with its default checksums (CRC32 trailers over HTTPS)


@pytest.fixture(params=["https", "http"])
def latest_endpoint(request: Any, start_sw_proxy: Callable[..., ProxyServer], sw_bucket: str,
                    tls_cert: Tuple[str, str]) -> Tuple[str, str, Optional[str]]:
    """(transport, endpoint URL, CA bundle or None) of a proxy for sw_bucket."""
    cert, key = tls_cert
    server = start_sw_proxy(sw_bucket, https_port=0, tls_cert_path=cert, tls_key_path=key)
    if request.param == "https":
        return "https", https_endpoint(server), cert
    return "http", server.endpoint_url, None


def test_boto3_latest_defaults(tmp_path: Path, latest_endpoint: Tuple[str, str, Optional[str]], sw_bucket: str,
                               sw_direct: Any) -> None:
    """boto3 1.4x: over HTTPS every upload is aws-chunked with a CRC32
    trailer; over HTTP a signed hash and a CRC32 header. Put, multipart,
    get, ranged get, copy and DeleteObjects, bytes compared at SeaweedFS."""
    transport, url, ca = latest_endpoint
    small = write_random(tmp_path / "small.bin", 70_000)
    big = write_random(tmp_path / "big.bin", 11 * MIB + 5)
    out = run_boto3_latest(
        tmp_path,
        """
        small = open("small.bin", "rb").read()
        s3.put_object(Bucket=bucket, Key="small.bin", Body=small, Metadata={"origin": "boto3-latest"})
        cfg = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024, max_concurrency=3)
        s3.upload_file("big.bin", bucket, "big.bin", Config=cfg)
        s3.download_file(bucket, "big.bin", "big.down", Config=cfg)
        ranged = s3.get_object(Bucket=bucket, Key="small.bin", Range="bytes=100-199")["Body"].read()
        s3.copy_object(Bucket=bucket, Key="copy é+.bin", CopySource={"Bucket": bucket, "Key": "small.bin"})
        s3.put_object(Bucket=bucket, Key="gone", Body=b"x")
        deleted = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "gone"}]})
        emit(
            big_same=(open("big.down", "rb").read() == open("big.bin", "rb").read()),
            ranged_same=(ranged == small[100:200]),
            metadata=s3.head_object(Bucket=bucket, Key="small.bin")["Metadata"],
            deleted=[d["Key"] for d in deleted.get("Deleted", [])],
        )
        """,
        endpoint=url, ca=ca, bucket=sw_bucket,
    )
    uploads = sent_for(out, "PUT", exclude_query=("uploadId",)) + sent_for(out, "PUT", query="partNumber=")
    uploads = [s for s in uploads if s["content_sha256"] != "UNSIGNED-PAYLOAD" and "copy" not in s["url"]]
    assert uploads, out["sent"]
    for s in uploads:
        if transport == "https":
            assert s["content_sha256"] == "STREAMING-UNSIGNED-PAYLOAD-TRAILER", s
            assert s["trailer"] == "x-amz-checksum-crc32", s
        else:
            assert len(s["content_sha256"] or "") == 64, s
    assert out["big_same"] and out["ranged_same"], out
    assert out["metadata"] == {"origin": "boto3-latest"}
    assert out["deleted"] == ["gone"]
    assert_stored_exactly(sw_direct, sw_bucket, "small.bin", small)
    assert_stored_exactly(sw_direct, sw_bucket, "copy é+.bin", small)
    assert_stored_exactly(sw_direct, sw_bucket, "big.bin", big)
    assert part_count(sw_direct, sw_bucket, "big.bin") == 3
    assert sorted(stored_keys(sw_direct, sw_bucket)) == ["big.bin", "copy é+.bin", "small.bin"]


# --------------------------------------------------------------------------
# the upload_framing setting in the Python API and the TOML file


def test_upload_framing_in_the_python_api() -> None:
    base = {"host": "h", "port": 1, "access_key": "AK", "secret_key": "SK"}
    assert "upload_framing" not in ProxyServerConfig({"b": base}, http_port=0).cos_map["b"], "the server's default applies"
    for framing in ("aws-chunked", "plain"):
        assert ProxyServerConfig({"b": {**base, "upload_framing": framing}}, http_port=0).cos_map["b"]["upload_framing"] == framing
    for bad, error in (("Plain", ValueError), ("", ValueError), ("chunked", ValueError), (1, TypeError)):
        with pytest.raises(error) as info:
            ProxyServerConfig({"b": {**base, "upload_framing": bad}}, http_port=0)
        assert "cos_map['b']['upload_framing']" in str(info.value)


def test_upload_framing_in_the_toml_file(tmp_path: Path) -> None:
    from object_storage_proxy.configfile import ConfigFileError, load_config

    path = tmp_path / "osp.toml"
    text = '[server]\nhttp_port = 0\n[keystore]\nAK = "SK"\n[buckets.sw]\nhost = "h"\nport = 1\n' \
           'access_key = "A"\nsecret_key = "S"\nupload_framing = "{}"\n'
    path.write_text(text.format("plain"))
    assert load_config(str(path)).cos_map["sw"]["upload_framing"] == "plain"
    path.write_text(text.format("chunky"))
    with pytest.raises(ConfigFileError) as info:
        load_config(str(path))
    assert "[buckets.sw]" in str(info.value) and "upload_framing" in str(info.value)
