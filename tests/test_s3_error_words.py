"""The proxy's own refusals in S3's codes, words and elements (issue 13,
WP-Z): the differences versitygw's suite found through the proxy
(tests/conformance.py), each refused as before, now answered as S3 answers
them. Every refusal also leaves nothing at versitygw.
"""

from __future__ import annotations

import random
from typing import Any, Dict, List

import pytest
import requests

import awschunked as ac
from awschunked import MODES, STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER, build_upload, send
from helpers import assert_s3_error, object_exists, presign, send_signed, stored_body

SHORT = {STREAMING_SIGNED: "signed", STREAMING_SIGNED_TRAILER: "signed-trailer",
         STREAMING_UNSIGNED_TRAILER: "unsigned-trailer"}

INCOMPLETE = "The request body terminated unexpectedly"
LENGTH_MISMATCH = "You did not provide the number of bytes specified by the Content-Length HTTP header"
MALFORMED_TRAILER = ("The request contained trailing data that was not well-formed or did not conform to our "
                     "published schema.")


def url_of(proxy: Any, bucket: str, key: str) -> str:
    return f"{proxy.endpoint_url}/{bucket}/{key}"


def assert_refused(response: requests.Response, status: int, code: str, message: str, direct: Any, bucket: str,
                   key: str) -> Dict[str, str]:
    fields = assert_s3_error(response, status, code)
    assert fields["Message"] == message, fields
    assert not object_exists(direct, bucket, key)
    return fields


def put_unsigned_chunked(proxy: Any, bucket: str, key: str, body: bytes, headers: Dict[str, str]) -> requests.Response:
    """An unsigned aws-chunked PUT of exactly ``body`` (its framing is the
    test's), with ``headers`` signed."""
    signed = {"Content-Encoding": "aws-chunked", "Content-Length": str(len(body)), **headers}
    return send_signed("PUT", url_of(proxy, bucket, key), body=body, headers=signed,
                       payload_hash=STREAMING_UNSIGNED_TRAILER)


# --------------------------------------------------------------------------
# chunk sizes: only the last may be under 8 KiB


@pytest.mark.parametrize("mode", MODES, ids=[SHORT[m] for m in MODES])
def test_small_chunk_before_the_last_is_refused(proxy: Any, direct: Any, bucket: str, mode: str) -> None:
    data = random.Random(5).randbytes(10_000)
    upload = build_upload("PUT", url_of(proxy, bucket, "small"), data, mode, chunk_size=4096)
    fields = assert_refused(send(upload), 400, "InvalidChunkSizeError",
                            "Only the last chunk is allowed to have a size less than 8192 bytes", direct, bucket, "small")
    # As S3 words it (versitygw#1683): the chunk that showed it, the small one's size.
    assert (fields.get("Chunk"), fields.get("BadChunkSize")) == ("2", "4096"), fields
    # 8 KiB chunks and a short last one are S3's smallest and pass.
    upload = build_upload("PUT", url_of(proxy, bucket, "ok"), data, mode, chunk_size=8192)
    assert send(upload).status_code == 200
    assert stored_body(direct, bucket, "ok") == data


# --------------------------------------------------------------------------
# framing, lengths and trailers (the bodies of versitygw's suite)

CRC64 = "x-amz-checksum-crc64nvme"
HELLO_CRC64 = "M3eFcAZSQlc="  # crc64nvme of b"hello"

TRAILER_CASES: List[Any] = [
    pytest.param(b"5\r\nhello\r\n0\r\n\r\n", CRC64, "5", 400, "MalformedTrailerError", MALFORMED_TRAILER,
                 id="declared-trailer-not-sent"),
    pytest.param(f"5\r\nhello\r\n0\r\n:{HELLO_CRC64}\r\n\r\n".encode(), CRC64, "5", 400, "MalformedTrailerError",
                 MALFORMED_TRAILER, id="empty-trailer-name"),
    pytest.param(f"5\r\nhello\r\n0\r\n{CRC64}:{HELLO_CRC64}\r\n\r\n".encode(), "", "5", 400, "MalformedTrailerError",
                 MALFORMED_TRAILER, id="undeclared-trailer"),
    pytest.param(f"5\r\nhello\r\n0\r\ninvalid_trailer:{HELLO_CRC64}\r\n\r\n".encode(), CRC64, "5", 400,
                 "MalformedTrailerError", MALFORMED_TRAILER, id="other-trailer"),
    pytest.param(f"5\r\nhello\r\n0\r\n{CRC64}:invalid_checksum\r\n\r\n".encode(), CRC64, "5", 400, "InvalidRequest",
                 f"Value for {CRC64} trailing header is invalid.", id="checksum-of-the-wrong-form"),
    pytest.param(f"5\r\nhello\r\n0\r\n{CRC64}:AAAAAAAAAAA=\r\n\r\n".encode(), CRC64, "5", 400, "BadDigest",
                 "The CRC64NVME you specified did not match the calculated checksum.", id="wrong-checksum"),
    pytest.param(b"5\r\nhello\r\n0\r\n", CRC64, "5", 400, "IncompleteBody", INCOMPLETE, id="cut-before-trailer"),
    pytest.param(f"5\r\nhello\r\n0\r\n{CRC64}:{HELLO_CRC64}\r\n".encode(), CRC64, "5", 400, "IncompleteBody",
                 INCOMPLETE, id="cut-before-blank-line"),
    pytest.param(b"5\nhello\r\n0\r\n\r\n", "", "5", 400, "IncompleteBody", INCOMPLETE, id="bare-LF"),
    pytest.param(b"zz\r\nhello\r\n0\r\n\r\n", "", "5", 400, "IncompleteBody", INCOMPLETE, id="non-hex-size"),
    pytest.param(b"6\r\nhello\r\n0\r\n\r\n", "", "5", 400, "IncompleteBody", INCOMPLETE, id="size-past-CRLF"),
    pytest.param(b"5\r\nhello\r\n0\r\n\r\n", "", "3", 400, "IncompleteBody", LENGTH_MISMATCH, id="longer-than-declared"),
    pytest.param(b"5\r\nhello\r\n0\r\n\r\n", "", "9", 400, "IncompleteBody", LENGTH_MISMATCH, id="shorter-than-declared"),
    pytest.param(b"5\r\nhello\r\n0\r\n\r\n", "", None, 411, "MissingContentLength",
                 "You must provide the Content-Length HTTP header.", id="no-decoded-length"),
    pytest.param(b"5\r\nhello\r\n0\r\n\r\n", "", "abc", 411, "MissingContentLength",
                 "You must provide the Content-Length HTTP header.", id="decoded-length-not-a-number"),
]


@pytest.mark.parametrize("body, trailer, decoded, status, code, message", TRAILER_CASES)
def test_unsigned_chunked_refusals_in_s3_words(proxy: Any, direct: Any, bucket: str, body: bytes, trailer: str,
                                               decoded: Any, status: int, code: str, message: str) -> None:
    headers = {}
    if trailer:
        headers["x-amz-trailer"] = trailer
    if decoded is not None:
        headers["x-amz-decoded-content-length"] = decoded
    assert_refused(put_unsigned_chunked(proxy, bucket, "framed", body, headers), status, code, message,
                   direct, bucket, "framed")


@pytest.mark.parametrize("mode", [STREAMING_SIGNED, STREAMING_SIGNED_TRAILER], ids=["signed", "signed-trailer"])
def test_signed_chunk_without_signature_is_a_broken_body(proxy: Any, direct: Any, bucket: str, mode: str) -> None:
    upload = build_upload("PUT", url_of(proxy, bucket, "nosig"), b"x" * 20_000, mode, chunk_size=8192)
    upload.chunks[1].signature = None
    assert_refused(send(upload), 400, "IncompleteBody", INCOMPLETE, direct, bucket, "nosig")


def test_signed_trailer_with_a_bare_cr_is_a_broken_body(proxy: Any, direct: Any, bucket: str) -> None:
    """versitygw's suite: a trailer line's LF replaced by other bytes runs
    it into the signature line; S3 calls that a broken body."""
    upload = build_upload("PUT", url_of(proxy, bucket, "cr"), b"abcdefg", STREAMING_SIGNED_TRAILER,
                          checksum_algorithm="crc64nvme")
    body = upload.body()
    cut = body.index(b"\r\nx-amz-trailer-signature")
    forged = body[:cut + 1] + b"b" + body[cut + 2:]  # the length, which is signed, stays
    response = requests.put(upload.url, data=forged, headers=upload.headers, timeout=30)
    assert_refused(response, 400, "IncompleteBody", INCOMPLETE, direct, bucket, "cr")


# --------------------------------------------------------------------------
# x-amz-copy-source and the header section


@pytest.mark.parametrize("source, message, value", [
    pytest.param("bucket/%ZZ", "Invalid copy source encoding", "bucket/%ZZ", id="bad-hex"),
    pytest.param("100%/foo", "Invalid copy source encoding", "100%/foo", id="percent-in-bucket"),
    pytest.param("bucket/%C3%", "Invalid copy source encoding", "bucket/%C3%", id="cut-escape"),
    pytest.param("my-buc@k&()t/obj", "Invalid copy source bucket name", "my-buc@k&()t/obj", id="bad-bucket-name"),
    pytest.param("bucket", "Invalid copy source object key", "", id="no-key"),
    pytest.param("bucket/../x", "Invalid copy source object key", "../x", id="dot-segment"),
])
def test_bad_copy_source_in_s3_words(proxy: Any, direct: Any, bucket: str, source: str, message: str,
                                     value: str) -> None:
    response = send_signed("PUT", url_of(proxy, bucket, "copy"), headers={"x-amz-copy-source": source})
    fields = assert_refused(response, 400, "InvalidArgument", message, direct, bucket, "copy")
    assert fields.get("ArgumentName") == "x-amz-copy-source", fields
    assert fields.get("ArgumentValue", "") == value, fields


def test_large_header_section_names_the_limit(proxy: Any, direct: Any, bucket: str) -> None:
    response = send_signed("PUT", url_of(proxy, bucket, "big-header"), body=b"x",
                           headers={"x-amz-meta-big": "d" * 8192})
    fields = assert_refused(response, 400, "RequestHeaderSectionTooLarge",
                            "Your request header section exceeds the maximum allowed size.", direct, bucket, "big-header")
    assert fields.get("MaxSizeAllowed") == "8192", fields


# --------------------------------------------------------------------------
# a session token with a keystore key


def test_presigned_token_with_a_keystore_key_is_invalid(proxy: Any, direct: Any, bucket: str) -> None:
    """A keystore key is permanent: a token with it is S3's 400
    InvalidToken, as versitygw's suite expects (the token added after
    signing, and one signed into the URL), and the bucket stays."""
    for url in (presign("DELETE", proxy.endpoint_url, bucket, "") + "&X-Amz-Security-Token=my_token",
                presign("DELETE", proxy.endpoint_url, bucket, "", query={"X-Amz-Security-Token": "my_token"})):
        response = requests.delete(url, timeout=30)
        fields = assert_s3_error(response, 400, "InvalidToken")
        assert fields["Message"] == "The provided token is malformed or otherwise invalid.", fields
    assert direct.head_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_header_token_with_a_keystore_key_is_invalid(proxy: Any, direct: Any, bucket: str) -> None:
    response = send_signed("PUT", url_of(proxy, bucket, "token"), body=b"x",
                           headers={"X-Amz-Security-Token": "my_token"})
    assert_refused(response, 400, "InvalidToken", "The provided token is malformed or otherwise invalid.",
                   direct, bucket, "token")
