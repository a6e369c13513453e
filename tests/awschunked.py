"""Hand-built aws-chunked uploads, for tests that need to control (and
forge) every byte a streaming client sends.

Three framings, named by the ``x-amz-content-sha256`` value that announces
them:

``STREAMING-AWS4-HMAC-SHA256-PAYLOAD``
    ``hex(size);chunk-signature=<sig>\\r\\n<data>\\r\\n`` ... then
    ``0;chunk-signature=<sig>\\r\\n\\r\\n``. Each signature signs
    ``AWS4-HMAC-SHA256-PAYLOAD\\n<amz date>\\n<scope>\\n<previous
    signature>\\n<sha256('')>\\n<sha256(data)>``; the first "previous" is the
    seed signature of the headers (Authorization).
``STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER``
    as above, but the final chunk is ``0;chunk-signature=<sig>\\r\\n``,
    followed by the trailer lines ``x-amz-checksum-<alg>:<b64>\\r\\n``,
    ``x-amz-trailer-signature:<sig>\\r\\n`` and ``\\r\\n``. The trailer
    signature signs ``AWS4-HMAC-SHA256-TRAILER\\n<amz date>\\n<scope>\\n<final
    chunk signature>\\n<sha256('x-amz-checksum-<alg>:<b64>\\n')>``.
``STREAMING-UNSIGNED-PAYLOAD-TRAILER``
    ``hex(size)\\r\\n<data>\\r\\n`` ... then ``0\\r\\n``, the trailer lines and
    ``\\r\\n``.

``build_upload`` signs the headers with botocore (helpers.sign_request, with
the mode as the payload hash), then computes the chunk signature chain. The
result is a mutable :class:`Upload`: a test may change a chunk's data,
signature or declared size, the trailer or the headers, then render and send
it. :func:`send` and friends send raw HTTP and return a :class:`Response`.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import urllib.parse
import zlib
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple

from requests.structures import CaseInsensitiveDict

import s3wire
from helpers import CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY, sign_request
from s3wire import Reply, hmac_hex, render, send_then_shut, signing_key

STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
MODES = (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER)
SIGNED_MODES = (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER)
TRAILER_MODES = (STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER)

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
SIGNATURE_PLACEHOLDER = "0" * 64  # every signature is 64 hex digits

# --------------------------------------------------------------------------
# checksums: base64 of the big-endian digest, as x-amz-checksum-* carry them


def _reflected_table(poly: int) -> List[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC32C_TABLE = _reflected_table(0x82F63B78)
_CRC64NVME_TABLE = _reflected_table(0x9A6C9329AC4BC9B5)


def _reflected_crc(table: List[int], ones: int, data: bytes) -> int:
    crc = ones
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ ones


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), reflected, init and xorout 0xffffffff."""
    return _reflected_crc(_CRC32C_TABLE, 0xFFFFFFFF, data)


def crc64nvme(data: bytes) -> int:
    """CRC-64/NVME, reflected poly 0x9a6c9329ac4bc9b5, init and xorout all ones."""
    return _reflected_crc(_CRC64NVME_TABLE, 0xFFFFFFFFFFFFFFFF, data)


assert crc32c(b"123456789") == 0xE3069283
assert crc64nvme(b"123456789") == 0xAE8B14860A799888
assert zlib.crc32(b"123456789") == 0xCBF43926

CHECKSUM_ALGORITHMS = ("crc32", "crc32c", "crc64nvme", "sha1", "sha256")


def checksum_digest(algorithm: str, data: bytes) -> bytes:
    if algorithm == "crc32":
        return zlib.crc32(data).to_bytes(4, "big")
    if algorithm == "crc32c":
        return crc32c(data).to_bytes(4, "big")
    if algorithm == "crc64nvme":
        return crc64nvme(data).to_bytes(8, "big")
    if algorithm in ("sha1", "sha256"):
        return hashlib.new(algorithm, data).digest()
    raise ValueError(f"unknown checksum algorithm {algorithm!r}")


def checksum(algorithm: str, data: bytes) -> str:
    """The x-amz-checksum-<algorithm> value of data."""
    return base64.b64encode(checksum_digest(algorithm, data)).decode()


# --------------------------------------------------------------------------
# the signature chain


@dataclass
class Chain:
    """What chunk and trailer signatures are computed from."""

    secret_key: str
    amz_date: str  # 20240101T000000Z
    scope: str  # 20240101/us-east-1/s3/aws4_request
    seed_signature: str

    def signing_key(self) -> bytes:
        date, region, service, _ = self.scope.split("/")
        return signing_key(self.secret_key, date, region, service)

    def chunk_signature(self, previous: str, data: bytes) -> str:
        string_to_sign = "\n".join([
            "AWS4-HMAC-SHA256-PAYLOAD", self.amz_date, self.scope, previous,
            EMPTY_SHA256, hashlib.sha256(data).hexdigest(),
        ])
        return hmac_hex(self.signing_key(), string_to_sign)

    def trailer_signature(self, previous: str, trailers: Iterable[Tuple[str, str]]) -> str:
        canonical = "".join(f"{name}:{value}\n" for name, value in trailers)
        string_to_sign = "\n".join([
            "AWS4-HMAC-SHA256-TRAILER", self.amz_date, self.scope, previous,
            hashlib.sha256(canonical.encode()).hexdigest(),
        ])
        return hmac_hex(self.signing_key(), string_to_sign)


def chain_from_headers(headers: Mapping[str, str], secret_key: str) -> Chain:
    """The chain of a request whose headers botocore signed."""
    lower = {k.lower(): v for k, v in headers.items()}
    authorization = lower["authorization"]
    fields = dict(part.strip().split("=", 1) for part in authorization.split(" ", 1)[1].split(","))
    scope = fields["Credential"].split("/", 1)[1]
    return Chain(secret_key, lower["x-amz-date"], scope, fields["Signature"])


# --------------------------------------------------------------------------
# the framing


@dataclass
class Chunk:
    data: bytes
    signature: Optional[str] = None  # None: no ";chunk-signature=" at all
    declared_size: Optional[int] = None  # the size line says this instead of len(data)

    def size_line(self) -> bytes:
        size = len(self.data) if self.declared_size is None else self.declared_size
        line = f"{size:x}"
        if self.signature is not None:
            line += f";chunk-signature={self.signature}"
        return line.encode() + b"\r\n"


@dataclass
class Upload:
    """One aws-chunked request. ``chunks`` ends with the final, empty chunk."""

    method: str
    url: str
    mode: str
    data: bytes  # what the client means to store
    headers: Dict[str, str]
    chunks: List[Chunk]
    trailers: List[Tuple[str, str]] = field(default_factory=list)
    trailer_signature: Optional[str] = None

    @property
    def path(self) -> str:
        parts = urllib.parse.urlsplit(self.url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def body(self) -> bytes:
        return b"".join(self.pieces())

    def pieces(self) -> Iterator[bytes]:
        """The body in pieces: one per chunk, then the trailer section."""
        *data_chunks, final = self.chunks
        for chunk in data_chunks:
            yield chunk.size_line() + chunk.data + b"\r\n"
        tail = final.size_line() + final.data
        for name, value in self.trailers:
            tail += f"{name}:{value}\r\n".encode()
        if self.trailer_signature is not None:
            tail += f"x-amz-trailer-signature:{self.trailer_signature}\r\n".encode()
        yield tail + b"\r\n"


def split(data: bytes, chunk_size: int) -> List[bytes]:
    return [data[i:i + chunk_size] for i in range(0, len(data), chunk_size)]


def build_upload(
    method: str,
    url: str,
    data: bytes,
    mode: str,
    *,
    chunk_size: int = 8192,
    checksum_algorithm: Optional[str] = "crc32",
    access_key: str = CLIENT_ACCESS_KEY,
    secret_key: str = CLIENT_SECRET_KEY,
    headers: Optional[Mapping[str, str]] = None,
    content_encoding: bool = True,
    content_length: bool = True,
    decoded_length: Optional[int] = None,
    at: Any = None,
) -> Upload:
    """A correctly signed aws-chunked upload of ``data``.

    ``checksum_algorithm`` is the trailer of the trailer modes (None: no
    trailer, no x-amz-trailer header; ignored by STREAMING_SIGNED).
    ``content_encoding``: send ``Content-Encoding: aws-chunked``.
    ``content_length``: sign and send Content-Length (the framed length);
    without it the caller sends Transfer-Encoding: chunked or fixes the
    length itself. ``decoded_length`` overrides x-amz-decoded-content-length.
    """
    signed = mode in SIGNED_MODES
    chunks = [Chunk(piece) for piece in split(data, chunk_size)] + [Chunk(b"")]
    trailers: List[Tuple[str, str]] = []
    if mode in TRAILER_MODES and checksum_algorithm is not None:
        trailers = [(f"x-amz-checksum-{checksum_algorithm}", checksum(checksum_algorithm, data))]
    upload = Upload(method, url, mode, data, {}, chunks, trailers)
    if signed:  # placeholders of the right length, to measure the body
        for chunk in chunks:
            chunk.signature = SIGNATURE_PLACEHOLDER
        if mode == STREAMING_SIGNED_TRAILER and trailers:
            upload.trailer_signature = SIGNATURE_PLACEHOLDER

    to_sign: Dict[str, str] = dict(headers or {})
    to_sign["x-amz-decoded-content-length"] = str(len(data) if decoded_length is None else decoded_length)
    if content_encoding:
        to_sign["Content-Encoding"] = "aws-chunked"
    if trailers:
        to_sign["x-amz-trailer"] = trailers[0][0]
    if content_length:
        to_sign["Content-Length"] = str(len(upload.body()))
    upload.headers = sign_request(method, url, access_key=access_key, secret_key=secret_key,
                                  headers=to_sign, payload_hash=mode, at=at)

    if signed:
        sign_chunks(upload, chain_from_headers(upload.headers, secret_key))
    return upload


def sign_chunks(upload: Upload, chain: Chain) -> None:
    """(Re)computes every chunk signature and the trailer signature."""
    previous = chain.seed_signature
    for chunk in upload.chunks:
        chunk.signature = chain.chunk_signature(previous, chunk.data)
        previous = chunk.signature
    if upload.mode == STREAMING_SIGNED_TRAILER and upload.trailers:
        upload.trailer_signature = chain.trailer_signature(previous, upload.trailers)


def flip(signature: str) -> str:
    """A signature with its last hex digit changed."""
    return signature[:-1] + ("0" if signature[-1] != "0" else "1")


# --------------------------------------------------------------------------
# sending


# What the senders below return (status_code and content as in
# requests.Response, for helpers.assert_s3_error).
Response = Reply


def _target(url: str, connect: Optional[Tuple[str, int]]) -> Tuple[str, int]:
    if connect is not None:
        return connect
    parts = urllib.parse.urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def _response(raw: http.client.HTTPResponse) -> Response:
    body = raw.read()
    return Reply(raw.status, CaseInsensitiveDict(raw.getheaders()), body)


def send(
    upload: Upload,
    *,
    body: Optional[bytes] = None,
    connect: Optional[Tuple[str, int]] = None,
    transfer_chunked: bool = False,
    extra_headers: Optional[Mapping[str, str]] = None,
    timeout: float = 20,
) -> Response:
    """Sends the upload with http.client (one connection, closed after).
    ``body`` replaces the rendered body (Content-Length is then whatever the
    headers say); ``transfer_chunked`` sends the pieces with HTTP
    Transfer-Encoding: chunked (build the upload with content_length=False)."""
    host, port = _target(upload.url, connect)
    headers = {**upload.headers, **dict(extra_headers or {})}
    if "host" not in {k.lower() for k in headers}:
        headers["Host"] = urllib.parse.urlsplit(upload.url).netloc
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        if transfer_chunked:
            assert "content-length" not in {k.lower() for k in headers}, "build with content_length=False"
            conn.request(upload.method, upload.path, body=iter(list(upload.pieces())), headers=headers,
                         encode_chunked=True)
        else:
            conn.request(upload.method, upload.path, body=upload.body() if body is None else body,
                         headers=headers)
        return _response(conn.getresponse())
    finally:
        conn.close()


def raw_request(host: str, port: int, method: str, path: str, headers: Mapping[str, str],
                body: Optional[bytes] = None, *, timeout: float = 20) -> Response:
    """One request with http.client, exactly these headers (give Host), one
    connection closed after."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=dict(headers))
        return _response(conn.getresponse())
    finally:
        conn.close()


def _head(method: str, path: str, headers: Mapping[str, str]) -> bytes:
    return render(method, path, list(headers.items()))


def send_expect_continue(upload: Upload, *, connect: Optional[Tuple[str, int]] = None,
                         wait: float = 5) -> Tuple[bool, Response]:
    """Sends the headers with ``Expect: 100-continue``, waits up to ``wait``
    seconds for ``100 Continue``, then sends the body (unless a final answer
    came first). Returns (whether 100 Continue came, the final response)."""
    host, port = _target(upload.url, connect)
    headers = {"Host": urllib.parse.urlsplit(upload.url).netloc, **upload.headers, "Expect": "100-continue"}
    return s3wire.send_expect_continue(host, port, _head(upload.method, upload.path, headers), upload.body(),
                                       method=upload.method, wait=wait)


def send_truncated(upload: Upload, cut: int, *, connect: Optional[Tuple[str, int]] = None) -> Optional[Response]:
    """Announces the full Content-Length, sends only the first ``cut`` bytes
    of the body, then half-closes the connection as a dying client would.
    Returns the response, or None if the server closed without one."""
    host, port = _target(upload.url, connect)
    headers = {"Host": urllib.parse.urlsplit(upload.url).netloc, **upload.headers}
    raw = _head(upload.method, upload.path, headers) + upload.body()[:cut]
    return send_then_shut(port, raw, method=upload.method, timeout=20, host=host)

