"""aws-chunked uploads, built and forged by hand (tests/awschunked.py), sent
raw through the proxy to versitygw.

Every accepted upload must store exactly the client's bytes (never the
framing); every forgery must be refused with the right S3 error and leave
nothing at versitygw, also when the forged chunk is the last one, and an
older object under the same key unchanged. The first tests send the same
uploads straight to versitygw: they prove the encoder right and the forgeries
real, so a failure further down is the proxy's.
"""

from __future__ import annotations

import base64
import hashlib
import random
import urllib.parse
from typing import Any, Optional

import pytest

import awschunked as ac
from awschunked import (
    CHECKSUM_ALGORITHMS,
    MODES,
    SIGNED_MODES,
    STREAMING_SIGNED,
    STREAMING_SIGNED_TRAILER,
    STREAMING_UNSIGNED_TRAILER,
    TRAILER_MODES,
    build_upload,
    flip,
    send,
)
from helpers import (
    BACKEND_ACCESS_KEY,
    BACKEND_SECRET_KEY,
    CLIENT_SECRET_KEY,
    OTHER_SECRET_KEY,
    assert_s3_error,
    object_exists,
    parse_s3_error,
    stored_body,
    stored_keys,
)

CHUNK = 8192  # S3's smallest chunk (but the last)

SHORT = {STREAMING_SIGNED: "signed", STREAMING_SIGNED_TRAILER: "signed-trailer",
         STREAMING_UNSIGNED_TRAILER: "unsigned-trailer"}


def mode_param(modes: Any = MODES) -> Any:
    return pytest.mark.parametrize("mode", modes, ids=[SHORT[m] for m in modes])


def payload(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


def object_url(proxy: Any, bucket: str, key: str, query: str = "") -> str:
    return f"{proxy.endpoint_url}/{bucket}/{key}" + (f"?{query}" if query else "")


def assert_stored(direct: Any, bucket: str, key: str, data: bytes) -> None:
    stored = stored_body(direct, bucket, key)
    assert len(stored) == len(data), (len(stored), len(data))
    assert hashlib.sha256(stored).hexdigest() == hashlib.sha256(data).hexdigest(), "stored bytes differ"


def assert_nothing_stored(direct: Any, bucket: str, key: str) -> None:
    assert not object_exists(direct, bucket, key), f"{key} was stored"
    assert stored_keys(direct, bucket) == []


def signed_headers(upload: ac.Upload) -> list:
    authorization = upload.headers["Authorization"]
    return authorization.split("SignedHeaders=", 1)[1].split(",", 1)[0].split(";")


def assert_ok(response: ac.Response) -> None:
    assert response.status_code == 200, (response.status_code, response.content[:600])


def assert_client_error_xml(response: Optional[ac.Response]) -> str:
    """A 4xx S3 XML error; returns its Code."""
    assert response is not None, "no response at all"
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:600])
    assert "xml" in response.headers.get("Content-Type", ""), dict(response.headers)
    return parse_s3_error(response.content)["Code"]


# --------------------------------------------------------------------------
# controls: the encoder against versitygw itself


@mode_param()
def test_encoder_is_right_for_versitygw(backend: Any, direct: Any, bucket: str, mode: str) -> None:
    data = payload(3 * CHUNK + 777)
    upload = build_upload("PUT", f"{backend.endpoint_url}/{bucket}/control", data, mode,
                          access_key=BACKEND_ACCESS_KEY, secret_key=BACKEND_SECRET_KEY)
    assert len(upload.chunks) == 5
    assert_ok(send(upload))
    assert_stored(direct, bucket, "control", data)


def test_forgeries_are_real_for_versitygw(backend: Any, direct: Any, bucket: str) -> None:
    def upload(mode: str) -> ac.Upload:
        return build_upload("PUT", f"{backend.endpoint_url}/{bucket}/forged", payload(3 * CHUNK), mode,
                            access_key=BACKEND_ACCESS_KEY, secret_key=BACKEND_SECRET_KEY)

    tampered = upload(STREAMING_SIGNED)
    tampered.chunks[1].signature = flip(tampered.chunks[1].signature or "")
    assert_s3_error(send(tampered), 403, "SignatureDoesNotMatch")
    bad_sum = upload(STREAMING_UNSIGNED_TRAILER)
    bad_sum.trailers = [("x-amz-checksum-crc32", ac.checksum("crc32", b"other"))]
    assert_s3_error(send(bad_sum), 400, "BadDigest")
    bad_trailer_sig = upload(STREAMING_SIGNED_TRAILER)
    bad_trailer_sig.trailer_signature = flip(bad_trailer_sig.trailer_signature or "")
    assert_s3_error(send(bad_trailer_sig), 403, "SignatureDoesNotMatch")
    assert_nothing_stored(direct, bucket, "forged")


# --------------------------------------------------------------------------
# accepted: exactly the client's bytes are stored

SIZES = [
    pytest.param(0, CHUNK, id="empty"),
    pytest.param(1, CHUNK, id="1-byte"),
    pytest.param(2 * CHUNK, CHUNK, id="2-exact-chunks"),
    pytest.param(3 * CHUNK + 1234, CHUNK, id="4-chunks-ragged"),
    pytest.param(200_003, 65536, id="4-big-chunks"),
]


@mode_param()
@pytest.mark.parametrize("size, chunk_size", SIZES)
def test_put_object(proxy: Any, direct: Any, bucket: str, mode: str, size: int, chunk_size: int) -> None:
    data = payload(size, seed=size)
    upload = build_upload("PUT", object_url(proxy, bucket, "streamed"), data, mode, chunk_size=chunk_size)
    assert_ok(send(upload))
    assert_stored(direct, bucket, "streamed", data)


@mode_param()
def test_put_object_2mib(proxy: Any, direct: Any, bucket: str, mode: str) -> None:
    data = payload(2 * 1024 * 1024 + 17, seed=2)
    upload = build_upload("PUT", object_url(proxy, bucket, "big"), data, mode, chunk_size=65536,
                          checksum_algorithm="sha256")
    assert_ok(send(upload))
    assert_stored(direct, bucket, "big", data)


ODD_KEY = "dir/with space/ünï+cöde&=;,()'!*~$@.bin"


@mode_param()
def test_odd_key(proxy: Any, direct: Any, bucket: str, mode: str) -> None:
    # The seed signature covers the canonical URI: each segment encoded once.
    data = payload(CHUNK + 5)
    url = object_url(proxy, bucket, urllib.parse.quote(ODD_KEY, safe="/-_.~"))
    assert_ok(send(build_upload("PUT", url, data, mode)))
    assert_stored(direct, bucket, ODD_KEY, data)


@pytest.mark.parametrize("algorithm", CHECKSUM_ALGORITHMS)
@mode_param(TRAILER_MODES)
def test_trailer_checksum_algorithms(proxy: Any, direct: Any, bucket: str, mode: str, algorithm: str) -> None:
    data = payload(2 * CHUNK + 100, seed=7)
    upload = build_upload("PUT", object_url(proxy, bucket, f"sum-{algorithm}"), data, mode,
                          checksum_algorithm=algorithm,
                          headers={"x-amz-sdk-checksum-algorithm": algorithm.upper()})
    assert_ok(send(upload))
    assert_stored(direct, bucket, f"sum-{algorithm}", data)


@mode_param()
def test_upload_part(proxy: Any, direct: Any, bucket: str, mode: str) -> None:
    upload_id = direct.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    data = payload(3 * CHUNK + 5, seed=3)
    upload = build_upload("PUT", object_url(proxy, bucket, "mp", f"partNumber=1&uploadId={upload_id}"), data, mode)
    response = send(upload)
    assert_ok(response)
    parts = direct.list_parts(Bucket=bucket, Key="mp", UploadId=upload_id)["Parts"]
    assert [(p["PartNumber"], p["Size"]) for p in parts] == [(1, len(data))]
    direct.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload_id, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": parts[0]["ETag"]}]})
    assert_stored(direct, bucket, "mp", data)


@mode_param()
def test_metadata_and_content_type_pass(proxy: Any, direct: Any, bucket: str, mode: str) -> None:
    data = payload(CHUNK + 1)
    upload = build_upload("PUT", object_url(proxy, bucket, "meta"), data, mode,
                          headers={"Content-Type": "text/x-streamed", "x-amz-meta-colour": "blue"})
    assert_ok(send(upload))
    head = direct.head_object(Bucket=bucket, Key="meta")
    assert head["ContentType"] == "text/x-streamed"
    assert head["Metadata"] == {"colour": "blue"}
    assert head["ContentLength"] == len(data)


@mode_param()
@pytest.mark.parametrize("encoding, stored", [("aws-chunked", None), ("aws-chunked,gzip", "gzip")])
def test_aws_chunked_is_not_stored_as_content_encoding(proxy: Any, direct: Any, bucket: str, mode: str,
                                                       encoding: str, stored: Optional[str]) -> None:
    # aws-chunked describes the request body only; S3 stores the rest of
    # Content-Encoding. (versitygw itself keeps "aws-chunked" when sent it,
    # and accepts streaming bodies without it: the proxy must drop it.)
    data = payload(CHUNK + 1)
    upload = build_upload("PUT", object_url(proxy, bucket, "enc"), data, mode, content_encoding=False,
                          headers={"Content-Encoding": encoding})
    assert_ok(send(upload))
    assert direct.head_object(Bucket=bucket, Key="enc").get("ContentEncoding") == stored
    assert_stored(direct, bucket, "enc", data)


# --------------------------------------------------------------------------
# accepted: legal variants


@mode_param()
def test_without_content_encoding(proxy: Any, direct: Any, bucket: str, mode: str) -> None:
    data = payload(2 * CHUNK + 9)
    upload = build_upload("PUT", object_url(proxy, bucket, "no-ce"), data, mode, content_encoding=False)
    assert "content-encoding" not in {k.lower() for k in upload.headers}
    assert_ok(send(upload))
    assert_stored(direct, bucket, "no-ce", data)


@mode_param(TRAILER_MODES)
def test_trailer_mode_without_a_trailer(proxy: Any, direct: Any, bucket: str, mode: str) -> None:
    data = payload(2 * CHUNK + 9)
    upload = build_upload("PUT", object_url(proxy, bucket, "no-trailer"), data, mode, checksum_algorithm=None)
    assert "x-amz-trailer" not in {k.lower() for k in upload.headers}
    final = upload.chunks[-1].size_line() + b"\r\n"
    assert final in (b"0\r\n\r\n", f"0;chunk-signature={upload.chunks[-1].signature}\r\n\r\n".encode())
    assert upload.body().endswith(final)
    assert_ok(send(upload))
    assert_stored(direct, bucket, "no-trailer", data)


@mode_param()
def test_content_md5_of_the_decoded_body(proxy: Any, direct: Any, bucket: str, mode: str) -> None:
    # Some SDKs send Content-MD5 of the decoded content with a streaming body.
    data = payload(2 * CHUNK + 9)
    md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
    upload = build_upload("PUT", object_url(proxy, bucket, "md5"), data, mode, headers={"Content-MD5": md5})
    assert_ok(send(upload))
    assert_stored(direct, bucket, "md5", data)

    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    upload = build_upload("PUT", object_url(proxy, bucket, "md5-bad"), data, mode, headers={"Content-MD5": wrong})
    assert_s3_error(send(upload), 400, "BadDigest")
    assert not object_exists(direct, bucket, "md5-bad")


def test_checksum_header_with_signed_chunks(proxy: Any, direct: Any, bucket: str) -> None:
    # x-amz-checksum-* as a (signed) header instead of a trailer.
    data = payload(2 * CHUNK + 9)
    upload = build_upload("PUT", object_url(proxy, bucket, "sum"), data, STREAMING_SIGNED,
                          headers={"x-amz-checksum-crc32c": ac.checksum("crc32c", data)})
    assert_ok(send(upload))
    assert_stored(direct, bucket, "sum", data)

    upload = build_upload("PUT", object_url(proxy, bucket, "sum-bad"), data, STREAMING_SIGNED,
                          headers={"x-amz-checksum-crc32c": ac.checksum("crc32c", b"other")})
    assert_s3_error(send(upload), 400, "BadDigest")
    assert not object_exists(direct, bucket, "sum-bad")


@mode_param()
def test_transfer_encoding_chunked_without_content_length(proxy: Any, direct: Any, bucket: str, mode: str) -> None:
    data = payload(3 * CHUNK + 99)
    upload = build_upload("PUT", object_url(proxy, bucket, "te"), data, mode, content_length=False)
    assert_ok(send(upload, transfer_chunked=True))
    assert_stored(direct, bucket, "te", data)


@mode_param()
def test_upload_part_with_transfer_encoding_chunked(proxy: Any, direct: Any, bucket: str, mode: str) -> None:
    upload_id = direct.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    data = payload(2 * CHUNK + 5, seed=4)
    upload = build_upload("PUT", object_url(proxy, bucket, "mp", f"partNumber=1&uploadId={upload_id}"), data, mode,
                          content_length=False)
    assert_ok(send(upload, transfer_chunked=True))
    parts = direct.list_parts(Bucket=bucket, Key="mp", UploadId=upload_id)["Parts"]
    assert [(p["PartNumber"], p["Size"]) for p in parts] == [(1, len(data))]


@mode_param()
def test_content_length_not_signed(proxy: Any, direct: Any, bucket: str, mode: str) -> None:
    # Content-Length sent (http.client adds it) but not among the signed headers.
    data = payload(CHUNK + 3)
    upload = build_upload("PUT", object_url(proxy, bucket, "cl"), data, mode, content_length=False)
    assert "content-length" not in signed_headers(upload)
    assert_ok(send(upload))
    assert_stored(direct, bucket, "cl", data)


@mode_param()
def test_expect_100_continue(proxy: Any, direct: Any, bucket: str, mode: str) -> None:
    data = payload(3 * CHUNK + 1)
    upload = build_upload("PUT", object_url(proxy, bucket, "expect"), data, mode)
    got_continue, response = ac.send_expect_continue(upload)
    assert_ok(response)
    assert got_continue, "no 100 Continue before the body"
    assert_stored(direct, bucket, "expect", data)


# --------------------------------------------------------------------------
# forgeries: 403, nothing stored


def _signed_upload(proxy: Any, bucket: str, mode: str, key: str = "forged", **options: Any) -> ac.Upload:
    return build_upload("PUT", object_url(proxy, bucket, key), payload(3 * CHUNK + 500), mode, **options)


CHUNK_POSITIONS = [pytest.param(0, id="first"), pytest.param(2, id="middle"),
                   pytest.param(3, id="last-data"), pytest.param(4, id="final-empty")]


@mode_param(SIGNED_MODES)
@pytest.mark.parametrize("index", CHUNK_POSITIONS)
def test_tampered_chunk_signature(proxy: Any, direct: Any, bucket: str, mode: str, index: int) -> None:
    upload = _signed_upload(proxy, bucket, mode)
    assert len(upload.chunks) == 5
    upload.chunks[index].signature = flip(upload.chunks[index].signature or "")
    assert_s3_error(send(upload), 403, "SignatureDoesNotMatch")
    assert_nothing_stored(direct, bucket, "forged")


@mode_param(SIGNED_MODES)
@pytest.mark.parametrize("index", [pytest.param(0, id="first"), pytest.param(3, id="last-data")])
def test_tampered_chunk_byte(proxy: Any, direct: Any, bucket: str, mode: str, index: int) -> None:
    upload = _signed_upload(proxy, bucket, mode)
    data = bytearray(upload.chunks[index].data)
    data[len(data) // 2] ^= 0x01
    upload.chunks[index].data = bytes(data)  # signatures unchanged
    assert_s3_error(send(upload), 403, "SignatureDoesNotMatch")
    assert_nothing_stored(direct, bucket, "forged")


@mode_param(SIGNED_MODES)
@pytest.mark.parametrize("index", [pytest.param(1, id="middle"), pytest.param(4, id="final-empty")])
def test_missing_chunk_signature(proxy: Any, direct: Any, bucket: str, mode: str, index: int) -> None:
    upload = _signed_upload(proxy, bucket, mode, content_length=False)
    upload.chunks[index].signature = None
    # S3 (and versitygw's suite) answer a chunk header without its
    # chunk-signature as a broken body: 400 IncompleteBody.
    assert_s3_error(send(upload), 400, "IncompleteBody")
    assert_nothing_stored(direct, bucket, "forged")


@mode_param()
@pytest.mark.parametrize("secret", [pytest.param("not-the-secret", id="unknown-secret"),
                                    pytest.param(OTHER_SECRET_KEY, id="other-clients-secret")])
def test_wrong_secret(proxy: Any, direct: Any, bucket: str, mode: str, secret: str) -> None:
    upload = _signed_upload(proxy, bucket, mode, secret_key=secret)
    assert_s3_error(send(upload), 403, "SignatureDoesNotMatch")
    assert_nothing_stored(direct, bucket, "forged")


@mode_param(SIGNED_MODES)
def test_chunks_signed_with_a_wrong_secret(proxy: Any, direct: Any, bucket: str, mode: str) -> None:
    # The seed (headers) is right; only the chunk chain uses another key.
    upload = _signed_upload(proxy, bucket, mode)
    right = ac.chain_from_headers(upload.headers, "unused")
    ac.sign_chunks(upload, ac.Chain("not-the-secret", right.amz_date, right.scope, right.seed_signature))
    assert_s3_error(send(upload), 403, "SignatureDoesNotMatch")
    assert_nothing_stored(direct, bucket, "forged")


@mode_param(SIGNED_MODES)
def test_chunks_swapped(proxy: Any, direct: Any, bucket: str, mode: str) -> None:
    # Each chunk with its own valid signature, but out of order: the chain breaks.
    upload = _signed_upload(proxy, bucket, mode)
    upload.chunks[0], upload.chunks[1] = upload.chunks[1], upload.chunks[0]
    assert_s3_error(send(upload), 403, "SignatureDoesNotMatch")
    assert_nothing_stored(direct, bucket, "forged")


@mode_param(SIGNED_MODES)
def test_forged_last_chunk_leaves_the_older_object(proxy: Any, direct: Any, bucket: str, mode: str) -> None:
    direct.put_object(Bucket=bucket, Key="kept", Body=b"the older version")
    upload = _signed_upload(proxy, bucket, mode, key="kept")
    last = upload.chunks[3]
    last.data = last.data[:-1] + bytes([last.data[-1] ^ 0xFF])
    assert_s3_error(send(upload), 403, "SignatureDoesNotMatch")
    assert stored_body(direct, bucket, "kept") == b"the older version"
    assert stored_keys(direct, bucket) == ["kept"]


@mode_param(TRAILER_MODES)
@pytest.mark.parametrize("algorithm", CHECKSUM_ALGORITHMS)
def test_bad_trailer_checksum(proxy: Any, direct: Any, bucket: str, mode: str, algorithm: str) -> None:
    direct.put_object(Bucket=bucket, Key="kept", Body=b"the older version")
    upload = _signed_upload(proxy, bucket, mode, key="kept", checksum_algorithm=algorithm)
    upload.trailers = [(f"x-amz-checksum-{algorithm}", ac.checksum(algorithm, upload.data + b"!"))]
    if mode == STREAMING_SIGNED_TRAILER:  # a valid signature over the wrong checksum
        ac.sign_chunks(upload, ac.chain_from_headers(upload.headers, CLIENT_SECRET_KEY))
    assert_s3_error(send(upload), 400, "BadDigest")
    assert stored_body(direct, bucket, "kept") == b"the older version"
    assert stored_keys(direct, bucket) == ["kept"]


def test_bad_trailer_signature(proxy: Any, direct: Any, bucket: str) -> None:
    upload = _signed_upload(proxy, bucket, STREAMING_SIGNED_TRAILER)
    upload.trailer_signature = flip(upload.trailer_signature or "")
    assert_s3_error(send(upload), 403, "SignatureDoesNotMatch")
    assert_nothing_stored(direct, bucket, "forged")


def test_trailer_changed_after_signing(proxy: Any, direct: Any, bucket: str) -> None:
    # The checksum is right for the data, but not the one that was signed.
    upload = _signed_upload(proxy, bucket, STREAMING_SIGNED_TRAILER)
    upload.trailers = [("x-amz-checksum-crc32", ac.checksum("crc32", upload.data + b"x"))]
    ac.sign_chunks(upload, ac.chain_from_headers(upload.headers, CLIENT_SECRET_KEY))
    upload.trailers = [("x-amz-checksum-crc32", ac.checksum("crc32", upload.data))]
    assert_s3_error(send(upload), 403, "SignatureDoesNotMatch")
    assert_nothing_stored(direct, bucket, "forged")


@mode_param(TRAILER_MODES)
def test_trailer_other_than_announced(proxy: Any, direct: Any, bucket: str, mode: str) -> None:
    # x-amz-trailer says crc32; a (right) crc32c arrives instead.
    upload = _signed_upload(proxy, bucket, mode, content_length=False, checksum_algorithm="crc32")
    upload.trailers = [("x-amz-checksum-crc32c", ac.checksum("crc32c", upload.data))]
    if mode == STREAMING_SIGNED_TRAILER:
        ac.sign_chunks(upload, ac.chain_from_headers(upload.headers, CLIENT_SECRET_KEY))
    assert_client_error_xml(send(upload))
    assert_nothing_stored(direct, bucket, "forged")


def test_missing_trailer_signature(proxy: Any, direct: Any, bucket: str) -> None:
    upload = _signed_upload(proxy, bucket, STREAMING_SIGNED_TRAILER, content_length=False)
    upload.trailer_signature = None
    assert_client_error_xml(send(upload))
    assert_nothing_stored(direct, bucket, "forged")


@mode_param(SIGNED_MODES)
def test_tampered_upload_part(proxy: Any, direct: Any, bucket: str, mode: str) -> None:
    upload_id = direct.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    upload = build_upload("PUT", object_url(proxy, bucket, "mp", f"partNumber=1&uploadId={upload_id}"),
                          payload(3 * CHUNK + 5), mode)
    upload.chunks[3].signature = flip(upload.chunks[3].signature or "")
    assert_s3_error(send(upload), 403, "SignatureDoesNotMatch")
    assert direct.list_parts(Bucket=bucket, Key="mp", UploadId=upload_id).get("Parts", []) == []


@mode_param(TRAILER_MODES)
def test_bad_checksum_upload_part(proxy: Any, direct: Any, bucket: str, mode: str) -> None:
    upload_id = direct.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    upload = build_upload("PUT", object_url(proxy, bucket, "mp", f"partNumber=1&uploadId={upload_id}"),
                          payload(3 * CHUNK + 5), mode, checksum_algorithm="crc32c")
    upload.trailers = [("x-amz-checksum-crc32c", ac.checksum("crc32c", b"not the data"))]
    if mode == STREAMING_SIGNED_TRAILER:
        ac.sign_chunks(upload, ac.chain_from_headers(upload.headers, CLIENT_SECRET_KEY))
    assert_s3_error(send(upload), 400, "BadDigest")
    assert direct.list_parts(Bucket=bucket, Key="mp", UploadId=upload_id).get("Parts", []) == []


@mode_param(SIGNED_MODES)
def test_tampered_chunk_with_expect_100_continue(proxy: Any, direct: Any, bucket: str, mode: str) -> None:
    upload = _signed_upload(proxy, bucket, mode)
    upload.chunks[2].signature = flip(upload.chunks[2].signature or "")
    _, response = ac.send_expect_continue(upload)
    assert_s3_error(response, 403, "SignatureDoesNotMatch")
    assert_nothing_stored(direct, bucket, "forged")


@mode_param(SIGNED_MODES)
def test_tampered_chunk_with_transfer_encoding_chunked(proxy: Any, direct: Any, bucket: str, mode: str) -> None:
    upload = _signed_upload(proxy, bucket, mode, content_length=False)
    upload.chunks[3].signature = flip(upload.chunks[3].signature or "")
    assert_s3_error(send(upload, transfer_chunked=True), 403, "SignatureDoesNotMatch")
    assert_nothing_stored(direct, bucket, "forged")


# --------------------------------------------------------------------------
# broken framing: a 4xx S3 error, nothing stored


def _framed(proxy: Any, bucket: str, mode: str, **options: Any) -> ac.Upload:
    # Content-Length is not signed: the tests send other bodies.
    return _signed_upload(proxy, bucket, mode, content_length=False, **options)


@mode_param()
def test_body_ends_mid_chunk(proxy: Any, direct: Any, bucket: str, mode: str) -> None:
    upload = _framed(proxy, bucket, mode)
    body = upload.body()
    cut = body.index(upload.chunks[2].data) + 100  # inside the third chunk's data
    assert_client_error_xml(send(upload, body=body[:cut]))
    assert_nothing_stored(direct, bucket, "forged")


@mode_param()
def test_body_ends_before_the_final_chunk(proxy: Any, direct: Any, bucket: str, mode: str) -> None:
    upload = _framed(proxy, bucket, mode)
    pieces = list(upload.pieces())
    assert_client_error_xml(send(upload, body=b"".join(pieces[:-1])))
    assert_nothing_stored(direct, bucket, "forged")


@mode_param()
def test_client_dies_mid_chunk(proxy: Any, direct: Any, bucket: str, mode: str) -> None:
    # Content-Length announces the whole body; the client half-closes after
    # part of it. Either an error answer or a closed connection; never an object.
    upload = _signed_upload(proxy, bucket, mode)
    response = ac.send_truncated(upload, len(upload.body()) // 2)
    if response is not None:
        assert_client_error_xml(response)
    assert_nothing_stored(direct, bucket, "forged")


@mode_param()
@pytest.mark.parametrize("delta", [pytest.param(-1, id="decoded-length-too-small"),
                                   pytest.param(+1, id="decoded-length-too-large")])
def test_decoded_length_disagrees_with_chunks(proxy: Any, direct: Any, bucket: str, mode: str, delta: int) -> None:
    upload = _framed(proxy, bucket, mode, decoded_length=3 * CHUNK + 500 + delta)
    assert_client_error_xml(send(upload))
    assert_nothing_stored(direct, bucket, "forged")


@mode_param()
def test_chunk_size_overruns_its_data(proxy: Any, direct: Any, bucket: str, mode: str) -> None:
    # The first size line claims more bytes than the chunk has: the framing
    # then reads into the next size line.
    upload = _framed(proxy, bucket, mode)
    upload.chunks[0].declared_size = CHUNK + 16
    assert_client_error_xml(send(upload))
    assert_nothing_stored(direct, bucket, "forged")


@mode_param()
def test_non_hex_chunk_size(proxy: Any, direct: Any, bucket: str, mode: str) -> None:
    upload = _framed(proxy, bucket, mode)
    body = upload.body()
    assert body.startswith(b"2000")
    assert_client_error_xml(send(upload, body=b"zz00" + body[4:]))
    assert_nothing_stored(direct, bucket, "forged")


@mode_param()
def test_garbage_instead_of_chunk_crlf(proxy: Any, direct: Any, bucket: str, mode: str) -> None:
    upload = _framed(proxy, bucket, mode)
    body = upload.body()
    end_of_first = body.index(upload.chunks[0].data) + CHUNK
    assert body[end_of_first:end_of_first + 2] == b"\r\n"
    forged = body[:end_of_first] + b"XY" + body[end_of_first + 2:]
    assert_client_error_xml(send(upload, body=forged))
    assert_nothing_stored(direct, bucket, "forged")
