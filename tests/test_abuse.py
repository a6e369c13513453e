"""Hostile and malformed input: every shape below goes through the proxy and
must be refused the way S3 refuses it -- the right status, an S3 XML error
with a Code and a RequestId -- with nothing stored at (or, where a recording
backend can tell, nothing forwarded to) the backend, and the proxy still
serving a normal boto3 request afterwards.

Most requests are sent on raw sockets (HTTP clients refuse to send these
shapes) and signed by ``sign_raw`` below, a SigV4 signer that canonicalises
exactly what goes on the wire, duplicated headers included. A control test
proves it right, so a refusal further down is about the shape, not the
signature.

Some shapes never reach the proxy's handler: Go's net/http answers them
itself, in plain text (see GO_ANSWERED). For those the tests assert the
status, a closed connection and nothing stored.

Covered elsewhere, not repeated here:
  test_auth.py       Credential=nonsense, wrong/unknown keys, skewed dates,
                     unsigned x-amz-* headers, anonymous requests
  test_presign.py    X-Amz-Expires 0, -1, 604801, "abc", ""; a missing
                     X-Amz-Signature (400 or 403); tampered queries
  test_streaming.py  non-hex chunk size, garbage instead of the CRLF after
                     chunk data, a body cut before/inside the final chunk,
                     chunk data beyond (or short of)
                     x-amz-decoded-content-length, a size overrunning its
                     data, missing chunk signatures
  test_addressing.py other domains stay path style, unknown virtual bucket
  test_timeouts.py   a client that never finishes its headers
"""

from __future__ import annotations

import functools
import hashlib
import posixpath
import socket
import urllib.parse
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import pytest

import awschunked as ac
import s3wire
from awschunked import STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER
from helpers import (
    CLIENT_ACCESS_KEY,
    CLIENT_SECRET_KEY,
    FROM_RECORDER,
    RAW_TIMEOUT,
    REGION,
    assert_xml_error,
    make_client,
    parse_s3_error,
    presign,
    raw_signed_headers,
    send_raw,
    stored_body,
    stored_keys,
    utcnow,
)
from s3wire import (
    Headers,
    LoopbackServer,
    RecordingBackend,
    Reply,
    amz_now,
    authorization,
    exchange,
    read_reply,
    render,
)

TIMEOUT = RAW_TIMEOUT  # every socket operation
DOMAIN = "s3.osp.test"

# --------------------------------------------------------------------------
# SigV4 over exactly the headers sent


# s3wire's signer with the first client key, over exactly the headers sent.
sign_raw = functools.partial(s3wire.sign_raw, access_key=CLIENT_ACCESS_KEY, secret_key=CLIENT_SECRET_KEY)


def replace(headers: Headers, name: str, *values: str) -> Headers:
    """``headers`` with every ``name`` header dropped and ``values`` appended."""
    return [(n, v) for n, v in headers if n.lower() != name.lower()] + [(name, v) for v in values]


def value(headers: Headers, name: str) -> str:
    return next(v for n, v in headers if n.lower() == name.lower())


# --------------------------------------------------------------------------
# assertions


def assert_any_xml_error(reply: Reply) -> Dict[str, str]:
    """Some S3 XML error (4xx or 5xx), whichever the code."""
    assert reply.status >= 400, (reply.status, reply.body[:300])
    assert "xml" in reply.headers.get("Content-Type", ""), (dict(reply.headers), reply.body[:300])
    return parse_s3_error(reply.body)


# The only answers a request may get that states its header is malformed
# (rather than, say, that the signature is wrong or the request was fine).
MALFORMED = {
    "AuthorizationHeaderMalformed": 400,
    "InvalidArgument": 400,
    "InvalidRequest": 400,
    "AccessDenied": 403,  # an x-amz-date that is not a date
}


def assert_refused_as_malformed(reply: Reply) -> None:
    assert reply.status in (400, 403), (reply.status, reply.body[:600])
    fields = assert_xml_error(reply, reply.status, tuple(MALFORMED))
    assert MALFORMED[fields["Code"]] == reply.status, fields


# Codes S3 uses for a body whose aws-chunked framing is broken.
FRAMING_CODES = ("InvalidRequest", "InvalidArgument", "IncompleteBody", "MalformedTrailerError")


def assert_go_answered(reply: Reply, status: int) -> None:
    """Refused by Go's HTTP server before the handler: the status, and the
    connection closed (the request is not processed any further)."""
    assert reply.status == status, (reply.status, reply.body[:300])
    assert reply.closed, "the connection was kept open after a request Go could not frame"


def assert_still_serving(proxy: Any, direct: Any, bucket: str) -> None:
    """A normal boto3 request through the same proxy still succeeds."""
    client = make_client(proxy.endpoint_url, CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY)
    client.put_object(Bucket=bucket, Key="still-serving", Body=b"alive")
    assert client.get_object(Bucket=bucket, Key="still-serving")["Body"].read() == b"alive"
    direct.delete_object(Bucket=bucket, Key="still-serving")


# --------------------------------------------------------------------------
# a port that must stay untouched


class Listener(LoopbackServer):
    """A TCP port that records whether anything connected to it."""

    def __init__(self) -> None:
        self.connections = 0
        super().__init__()

    def _connected(self, conn: socket.socket) -> None:
        self.connections += 1
        conn.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    other = Listener()
    yield other
    other.close()


# --------------------------------------------------------------------------
# control


def test_raw_signer_is_accepted(proxy: Any, direct: Any, bucket: str) -> None:
    """The control for everything below: sign_raw on a raw socket works."""
    target = f"/{bucket}/dir/with%20space+plus?x-id=PutObject"
    reply = send_raw(proxy, "PUT", target, raw_signed_headers(proxy, "PUT", target, b"raw"), b"raw")
    assert reply.status == 200, reply.body
    assert stored_body(direct, bucket, "dir/with space+plus") == b"raw"
    target = f"/{bucket}/dir/with%20space+plus"
    reply = send_raw(proxy, "GET", target, raw_signed_headers(proxy, "GET", target))
    assert (reply.status, reply.body) == (200, b"raw")
    # ... and so is a presigned PUT sent the same way (the presign tests' control).
    target = _presigned_target(proxy, "PUT", bucket, "presigned")
    reply = send_raw(proxy, "PUT", target, _host(proxy), b"presigned")
    assert reply.status == 200, reply.body
    assert stored_body(direct, bucket, "presigned") == b"presigned"


# --------------------------------------------------------------------------
# malformed Authorization headers


def _auth_parts(proxy: Any, target: str, body: bytes) -> Tuple[Headers, str, str, str]:
    headers = raw_signed_headers(proxy, "PUT", target, body)
    credential, signed_names, signature = (
        part.split("=", 1)[1] for part in value(headers, "Authorization").split(" ", 1)[1].split(", "))
    return headers, credential, signed_names, signature


A = "AWS4-HMAC-SHA256"
# (id, Authorization built from the valid credential c, signed headers h and
# signature s of the request, expected status, expected code)
AUTHORIZATION_CASES: List[Tuple[str, Callable[[str, str, str], str], int, str]] = [
    # No space, or another algorithm: S3's 400 InvalidArgument naming the header.
    ("garbage", lambda c, h, s: "garbage", 400, "InvalidArgument"),
    ("algorithm-only", lambda c, h, s: A, 400, "InvalidArgument"),
    # (the trailing space is gone when the header is read: no space left)
    ("algorithm-and-space", lambda c, h, s: A + " ", 400, "InvalidArgument"),
    ("no-signature", lambda c, h, s: f"{A} Credential={c}, SignedHeaders={h}", 400, "AuthorizationHeaderMalformed"),
    ("empty-signature", lambda c, h, s: f"{A} Credential={c}, SignedHeaders={h}, Signature=", 400,
     "AuthorizationHeaderMalformed"),
    ("no-signed-headers", lambda c, h, s: f"{A} Credential={c}, Signature={s}", 400, "AuthorizationHeaderMalformed"),
    ("no-credential", lambda c, h, s: f"{A} SignedHeaders={h}, Signature={s}", 400, "AuthorizationHeaderMalformed"),
    ("unknown-component", lambda c, h, s: f"{A} Credential={c}, SignedHeaders={h}, Signature={s}, Foo=bar", 400,
     "AuthorizationHeaderMalformed"),
    ("component-without-equals", lambda c, h, s: f"{A} Credential={c}, SignedHeaders={h}, Signature", 400,
     "AuthorizationHeaderMalformed"),
    # The same component twice is ambiguous: which one was meant? S3 refuses.
    ("repeated-credential-unknown-first",
     lambda c, h, s: f"{A} Credential=AKIANOBODY/{c.split('/', 1)[1]}, Credential={c}, SignedHeaders={h}, "
                     f"Signature={s}", 400, "AuthorizationHeaderMalformed"),
    ("repeated-credential-unknown-last",
     lambda c, h, s: f"{A} Credential={c}, Credential=AKIANOBODY/{c.split('/', 1)[1]}, SignedHeaders={h}, "
                     f"Signature={s}", 400, "AuthorizationHeaderMalformed"),
    ("repeated-signature",
     lambda c, h, s: f"{A} Credential={c}, SignedHeaders={h}, Signature={'0' * 64}, Signature={s}", 400,
     "AuthorizationHeaderMalformed"),
    ("repeated-signed-headers",
     lambda c, h, s: f"{A} Credential={c}, SignedHeaders=host, SignedHeaders={h}, Signature={s}", 400,
     "AuthorizationHeaderMalformed"),
    ("wrong-algorithm-sha512", lambda c, h, s: f"AWS4-HMAC-SHA512 Credential={c}, SignedHeaders={h}, Signature={s}",
     400, "InvalidArgument"),
    ("wrong-algorithm-sigv4a",
     lambda c, h, s: f"AWS4-ECDSA-P256-SHA256 Credential={c}, SignedHeaders={h}, Signature={s}", 400,
     "InvalidArgument"),
    ("lower-case-algorithm", lambda c, h, s: f"aws4-hmac-sha256 Credential={c}, SignedHeaders={h}, Signature={s}", 400,
     "InvalidArgument"),
    ("credential-missing-parts", lambda c, h, s: f"{A} Credential={c.rsplit('/', 2)[0]}, SignedHeaders={h}, "
                                                 f"Signature={s}", 400, "AuthorizationHeaderMalformed"),
    ("credential-extra-parts", lambda c, h, s: f"{A} Credential={c}/extra, SignedHeaders={h}, Signature={s}", 400,
     "AuthorizationHeaderMalformed"),
    ("credential-wrong-service", lambda c, h, s: f"{A} Credential={c.replace('/s3/', '/ec2/')}, SignedHeaders={h}, "
                                                 f"Signature={s}", 400, "AuthorizationHeaderMalformed"),
    ("credential-empty-region", lambda c, h, s: f"{A} Credential={c.replace('/' + REGION + '/', '//')}, "
                                                f"SignedHeaders={h}, Signature={s}", 400,
     "AuthorizationHeaderMalformed"),
    ("credential-bad-date", lambda c, h, s: f"{A} Credential={c.split('/')[0]}/2024-01-01/{REGION}/s3/aws4_request, "
                                            f"SignedHeaders={h}, Signature={s}", 400, "AuthorizationHeaderMalformed"),
    ("credential-impossible-date",
     lambda c, h, s: f"{A} Credential={c.split('/')[0]}/20241341/{REGION}/s3/aws4_request, SignedHeaders={h}, "
                     f"Signature={s}", 400, "AuthorizationHeaderMalformed"),
    ("credential-other-day", lambda c, h, s: f"{A} Credential={c.split('/')[0]}/20200101/{REGION}/s3/aws4_request, "
                                             f"SignedHeaders={h}, Signature={s}", 400, "AuthorizationHeaderMalformed"),
    ("signed-headers-without-host",
     lambda c, h, s: f"{A} Credential={c}, SignedHeaders={h.replace('host;', '')}, Signature={s}", 400,
     "AuthorizationHeaderMalformed"),
    ("signed-header-not-sent",
     lambda c, h, s: f"{A} Credential={c}, SignedHeaders={h};x-not-sent, Signature={s}", 400,
     "AuthorizationHeaderMalformed"),
    ("non-ascii-access-key", lambda c, h, s: f"{A} Credential=AKIAÉÜ€{c[4:]}, SignedHeaders={h}, Signature={s}",
     403, "InvalidAccessKeyId"),
    ("non-ascii-signature", lambda c, h, s: f"{A} Credential={c}, SignedHeaders={h}, Signature={s[:-2]}é", 400,
     "AuthorizationHeaderMalformed"),
    ("non-ascii-algorithm", lambda c, h, s: f"AWS4-HMAC-SHA256\u00a0Credential={c}, SignedHeaders={h}, Signature={s}",
     400, "InvalidArgument"),
    # Tens of KB: under Go's header limit, over S3's 8 KiB header section, so
    # the handler refuses them as S3 does (and does not echo them).
    ("huge-credential", lambda c, h, s: f"{A} Credential={'A' * 60000}, SignedHeaders={h}, Signature={s}", 400,
     "RequestHeaderSectionTooLarge"),
    ("huge-signed-headers", lambda c, h, s: f"{A} Credential={c}, SignedHeaders={h}{';x-not-sent' * 5000}, "
                                            f"Signature={s}", 400, "RequestHeaderSectionTooLarge"),
    ("many-components", lambda c, h, s: f"{A} Credential={c}, SignedHeaders={h}, Signature={s}" + ",x=y" * 15000, 400,
     "RequestHeaderSectionTooLarge"),
    # Just under the limit: still parsed, and refused as malformed.
    ("long-credential", lambda c, h, s: f"{A} Credential={'A' * 6000}, SignedHeaders={h}, Signature={s}", 400,
     "AuthorizationHeaderMalformed"),
    ("empty-value", lambda c, h, s: "", 403, "AccessDenied"),
]


@pytest.mark.parametrize("build, status, code", [pytest.param(b, st, co, id=i) for i, b, st, co in AUTHORIZATION_CASES])
def test_malformed_authorization(proxy: Any, direct: Any, bucket: str, build: Callable[[str, str, str], str],
                                 status: int, code: str) -> None:
    """Each broken Authorization is refused with S3's code; nothing is stored."""
    target = f"/{bucket}/auth"
    headers, credential, signed_names, signature = _auth_parts(proxy, target, b"x")
    reply = send_raw(proxy, "PUT", target, replace(headers, "Authorization", build(credential, signed_names, signature)),
                 b"x")
    assert_xml_error(reply, status, code)
    assert len(reply.body) < 2048, "the error echoes the client's header at length"
    assert stored_keys(direct, bucket) == []
    assert_still_serving(proxy, direct, bucket)


@pytest.mark.parametrize("amz_date, status, code", [
    pytest.param("garbage", 403, "AccessDenied", id="garbage"),
    pytest.param("NOW-WITHOUT-Z", 403, "AccessDenied", id="without-z"),
    pytest.param("NOW-ISO-EXTENDED", 403, "AccessDenied", id="iso-extended"),
    pytest.param("", 403, "AccessDenied", id="empty"),
])
def test_bad_x_amz_date(proxy: Any, direct: Any, bucket: str, amz_date: str, status: int, code: str) -> None:
    """An x-amz-date that is no date: S3's 403 AccessDenied ("requires a valid
    Date or x-amz-date header"), signed over exactly that text."""
    now = utcnow()
    amz_date = {"NOW-WITHOUT-Z": now.strftime("%Y%m%dT%H%M%S"),
                "NOW-ISO-EXTENDED": now.strftime("%Y-%m-%dT%H:%M:%SZ")}.get(amz_date, amz_date)
    target = f"/{bucket}/dated"
    payload = hashlib.sha256(b"x").hexdigest()
    headers: Headers = [("Host", f"127.0.0.1:{proxy.http_port}"), ("X-Amz-Date", amz_date),
                        ("X-Amz-Content-Sha256", payload)]
    credential, names, signature = sign_raw("PUT", target, headers, payload, now.strftime("%Y%m%dT%H%M%SZ"))
    reply = send_raw(proxy, "PUT", target, headers + [("Authorization", authorization(credential, names, signature))],
                 b"x")
    assert_xml_error(reply, status, code)
    assert stored_keys(direct, bucket) == []
    assert_still_serving(proxy, direct, bucket)


def test_authorization_larger_than_any_header_limit(proxy: Any, direct: Any, bucket: str) -> None:
    """200 KB of Authorization: answered by Go's server (431), connection closed."""
    target = f"/{bucket}/huge"
    headers = replace(raw_signed_headers(proxy, "PUT", target, b"x"), "Authorization", f"{A} Credential={'A' * 200_000}")
    reply = send_raw(proxy, "PUT", target, headers, b"x", check_closed=True)
    assert_go_answered(reply, 431)
    assert stored_keys(direct, bucket) == []
    assert_still_serving(proxy, direct, bucket)


# --------------------------------------------------------------------------
# duplicated authentication headers


def test_duplicate_authorization_headers(proxy: Any, direct: Any, bucket: str) -> None:
    """Two Authorization headers are one malformed header to S3 (their values
    joined); whichever order, even twice the same valid value, it is refused."""
    for key, order in (("valid-garbage", ("valid", "garbage")), ("garbage-valid", ("garbage", "valid")),
                       ("valid-twice", ("valid", "valid"))):
        target = f"/{bucket}/{key}"
        headers = raw_signed_headers(proxy, "PUT", target, b"x")
        values = {"valid": value(headers, "Authorization"), "garbage": "garbage"}
        reply = send_raw(proxy, "PUT", target, replace(headers, "Authorization", *(values[o] for o in order)), b"x")
        assert reply.status == 400, (key, reply.status, reply.body[:300])
        assert_xml_error(reply, 400, "AuthorizationHeaderMalformed")
    assert stored_keys(direct, bucket) == []
    assert_still_serving(proxy, direct, bucket)


@pytest.mark.parametrize("name, payload, second", [
    pytest.param("X-Amz-Date", None, "20200101T000000Z", id="x-amz-date"),
    pytest.param("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD", hashlib.sha256(b"another body").hexdigest(),
                 id="x-amz-content-sha256"),
])
def test_duplicate_header_appended_after_signing(proxy: Any, direct: Any, bucket: str, name: str,
                                                 payload: Optional[str], second: str) -> None:
    """A second copy added on the way (the signature covers one): refused --
    as malformed or as a signature mismatch -- and nothing stored."""
    target = f"/{bucket}/dup"
    headers = raw_signed_headers(proxy, "PUT", target, b"x", payload=payload)
    reply = send_raw(proxy, "PUT", target, headers + [(name, second)], b"x")
    assert 400 <= reply.status < 500, (reply.status, reply.body[:300])
    assert_xml_error(reply, reply.status, tuple(MALFORMED) + ("SignatureDoesNotMatch",))
    assert stored_keys(direct, bucket) == []
    assert_still_serving(proxy, direct, bucket)


@pytest.mark.parametrize("duplicated", ["X-Amz-Date", "X-Amz-Content-Sha256"])
def test_duplicate_header_signed_joined(proxy: Any, direct: Any, bucket: str, duplicated: str) -> None:
    """Two copies, signed as SigV4 canonicalises them (joined with ','), so
    the signature matches and only the duplication is wrong. S3 reads the
    joined value -- not a date, not a payload hash -- and refuses; a proxy
    that checks the first copy but verifies the signature over both reads
    one header two ways."""
    target = f"/{bucket}/dup"
    now, body_hash = amz_now(), hashlib.sha256(b"x").hexdigest()
    dates = [now, "20200101T000000Z"] if duplicated == "X-Amz-Date" else [now]
    hashes = ["UNSIGNED-PAYLOAD", body_hash] if duplicated == "X-Amz-Content-Sha256" else [body_hash]
    headers: Headers = [("Host", f"127.0.0.1:{proxy.http_port}")]
    headers += [("X-Amz-Date", d) for d in dates] + [("X-Amz-Content-Sha256", h) for h in hashes]
    # The payload line and the signing date a first-copy reader would use.
    credential, names, signature = sign_raw("PUT", target, headers, hashes[0], dates[0])
    reply = send_raw(proxy, "PUT", target, headers + [("Authorization", authorization(credential, names, signature))],
                 b"x")
    assert_refused_as_malformed(reply)
    assert stored_keys(direct, bucket) == []
    assert_still_serving(proxy, direct, bucket)


# --------------------------------------------------------------------------
# presigned queries


def _presigned_target(proxy: Any, method: str, bucket: str, key: str, **options: Any) -> str:
    url = presign(method, proxy.endpoint_url, bucket, key, **options)
    parts = urllib.parse.urlsplit(url)
    return f"{parts.path}?{parts.query}"


def _without(target: str, name: str) -> str:
    path, _, query = target.partition("?")
    return path + "?" + "&".join(p for p in query.split("&") if p.split("=", 1)[0] != name)


def _param(target: str, name: str) -> str:
    return next(p for p in target.split("?", 1)[1].split("&") if p.split("=", 1)[0] == name)


def _host(proxy: Any) -> Headers:
    return [("Host", f"127.0.0.1:{proxy.http_port}")]


@pytest.mark.parametrize("expires", ["99999999999999999999", "-99999999999999999999", "9223372036854775808",
                                     "3600.5", "0x100", "1e3", " 60"])
def test_presigned_bad_expires(proxy: Any, direct: Any, bucket: str, expires: str) -> None:
    """X-Amz-Expires beyond int64, fractional or not decimal: 400 (test_presign
    covers 0, -1, 604801, "abc", "")."""
    target = _presigned_target(proxy, "PUT", bucket, "presigned", expires=expires)
    reply = send_raw(proxy, "PUT", target, _host(proxy), b"x")
    assert_xml_error(reply, 400, "AuthorizationQueryParametersError")
    assert stored_keys(direct, bucket) == []
    assert_still_serving(proxy, direct, bucket)


PRESIGN_PARAMS = ["X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders",
                  "X-Amz-Signature"]


@pytest.mark.parametrize("name", PRESIGN_PARAMS)
def test_presigned_missing_parameter(proxy: Any, direct: Any, bucket: str, name: str) -> None:
    """Each required parameter left out: S3's 400 AuthorizationQueryParametersError
    (test_presign.test_missing_signature accepts 400 or 403 for one of them)."""
    target = _without(_presigned_target(proxy, "PUT", bucket, "presigned"), name)
    reply = send_raw(proxy, "PUT", target, _host(proxy), b"x")
    assert_xml_error(reply, 400, "AuthorizationQueryParametersError")
    assert stored_keys(direct, bucket) == []
    assert_still_serving(proxy, direct, bucket)


@pytest.mark.parametrize("first", [True, False], ids=["copy-first", "copy-last"])
@pytest.mark.parametrize("name", PRESIGN_PARAMS)
def test_presigned_duplicate_parameter(proxy: Any, direct: Any, bucket: str, name: str, first: bool) -> None:
    """A presign parameter given twice (the valid one and another): ambiguous, 400."""
    target = _presigned_target(proxy, "PUT", bucket, "presigned")
    other = {"X-Amz-Algorithm": "AWS4-HMAC-SHA256", "X-Amz-Credential": "AKIANOBODY%2F20200101%2Fus-east-1%2Fs3"
             "%2Faws4_request", "X-Amz-Date": "20200101T000000Z", "X-Amz-Expires": "604800",
             "X-Amz-SignedHeaders": "host", "X-Amz-Signature": "0" * 64}[name]
    path, _, query = target.partition("?")
    extra = f"{name}={other}"
    target = f"{path}?{extra}&{query}" if first else f"{target}&{extra}"
    reply = send_raw(proxy, "PUT", target, _host(proxy), b"x")
    assert_xml_error(reply, 400, "AuthorizationQueryParametersError")
    assert stored_keys(direct, bucket) == []
    assert_still_serving(proxy, direct, bucket)


@pytest.mark.parametrize("name, bad", [
    pytest.param("X-Amz-Algorithm", "AWS4-HMAC-SHA512", id="algorithm"),
    pytest.param("X-Amz-Credential", "garbage", id="credential"),
    pytest.param("X-Amz-Date", "20200101", id="date"),
])
def test_presigned_malformed_parameter(proxy: Any, direct: Any, bucket: str, name: str, bad: str) -> None:
    """A presign parameter of the wrong form: 400, nothing stored. (An
    X-Amz-Signature of the wrong form is 403 SignatureDoesNotMatch, as S3
    and versitygw answer: test_forwarding.py.)"""
    target = _presigned_target(proxy, "PUT", bucket, "presigned")
    target = target.replace(_param(target, name), f"{name}={bad}")
    reply = send_raw(proxy, "PUT", target, _host(proxy), b"x")
    assert_xml_error(reply, 400, "AuthorizationQueryParametersError")
    assert stored_keys(direct, bucket) == []
    assert_still_serving(proxy, direct, bucket)


def test_presigned_and_authorization_header(proxy: Any, direct: Any, bucket: str) -> None:
    """Both auth mechanisms at once: S3's 400 InvalidArgument ("Only one auth
    mechanism allowed"), even when each one alone is valid."""
    target = _presigned_target(proxy, "PUT", bucket, "presigned")
    headers = raw_signed_headers(proxy, "PUT", target, b"x")
    reply = send_raw(proxy, "PUT", target, headers, b"x")
    assert_xml_error(reply, 400, "InvalidArgument")
    assert stored_keys(direct, bucket) == []
    assert_still_serving(proxy, direct, bucket)


def test_presigned_streaming_payload(proxy: Any, direct: Any, bucket: str) -> None:
    """A presigned PUT that claims an aws-chunked body: refused, not decoded."""
    target = _presigned_target(proxy, "PUT", bucket, "presigned",
                               query={"X-Amz-Content-Sha256": STREAMING_SIGNED})
    reply = send_raw(proxy, "PUT", target, _host(proxy) + [("Content-Encoding", "aws-chunked")],
                 b"5;chunk-signature=" + b"0" * 64 + b"\r\nhello\r\n")
    assert_xml_error(reply, 400, "InvalidRequest")
    assert stored_keys(direct, bucket) == []
    assert_still_serving(proxy, direct, bucket)


# --------------------------------------------------------------------------
# aws-chunked framing (valid headers and signatures; only the framing is bad)

CHUNK = 8192
SHORT = {STREAMING_SIGNED: "signed", STREAMING_SIGNED_TRAILER: "signed-trailer",
         STREAMING_UNSIGNED_TRAILER: "unsigned-trailer"}


def _upload(proxy: Any, bucket: str, mode: str) -> ac.Upload:
    # Content-Length not signed: the tests send other bodies.
    data = bytes(range(256)) * ((3 * CHUNK + 500) // 256 + 1)
    return ac.build_upload("PUT", f"{proxy.endpoint_url}/{bucket}/framed", data[:3 * CHUNK + 500], mode,
                           content_length=False)


def _first_size(text: bytes) -> Callable[[bytes], bytes]:
    """Replaces the first chunk's size (2000, hex) with ``text``."""

    def change(body: bytes) -> bytes:
        assert body.startswith(b"2000"), body[:40]
        return text + body[4:]

    return change


def _first_line_end(body: bytes) -> int:
    return body.index(b"\r\n")


FRAMINGS: Dict[str, Callable[[bytes], bytes]] = {
    "size-ffffffffffffffff": _first_size(b"ffffffffffffffff"),
    "size-7fffffffffffffff": _first_size(b"7fffffffffffffff"),
    "size-17-digits": _first_size(b"00000000000002000"),
    "size-negative": _first_size(b"-2000"),
    "size-empty": _first_size(b""),
    "size-line-bare-lf": lambda body: body[:_first_line_end(body)] + b"\n" + body[_first_line_end(body) + 2:],
    "size-line-5000-bytes": lambda body: (body[:_first_line_end(body)] + b" " * 5000
                                          + body[_first_line_end(body):]),
    "crlf-after-data-missing": lambda body: (body[:_first_line_end(body) + 2 + CHUNK]
                                             + body[_first_line_end(body) + 4 + CHUNK:]),
}


@pytest.mark.parametrize("mode", [STREAMING_SIGNED, STREAMING_UNSIGNED_TRAILER],
                         ids=[SHORT[STREAMING_SIGNED], SHORT[STREAMING_UNSIGNED_TRAILER]])
@pytest.mark.parametrize("framing", list(FRAMINGS))
def test_broken_chunk_framing(proxy: Any, direct: Any, bucket: str, mode: str, framing: str) -> None:
    """A chunk size that overflows, is negative or missing, a size line that
    ends with a bare LF or runs on, chunk data not followed by CRLF: 400,
    nothing stored."""
    upload = _upload(proxy, bucket, mode)
    assert_xml_error((ac.send(upload, body=FRAMINGS[framing](upload.body()), timeout=TIMEOUT)), 400,
                     FRAMING_CODES)
    assert stored_keys(direct, bucket) == []
    assert_still_serving(proxy, direct, bucket)


def _trailer_lines(upload: ac.Upload, extra: bytes) -> bytes:
    """The body with ``extra`` trailer lines right after the final chunk's line."""
    body = upload.body()
    final = upload.chunks[-1].size_line()
    at = body.rindex(final) + len(final)
    return body[:at] + extra + body[at:]


TRAILERS: Dict[str, Callable[[ac.Upload], bytes]] = {
    # 200 lines of 88 bytes: over any sane limit for the whole trailer section.
    "section-17kib": lambda u: _trailer_lines(u, b"".join(b"x-amz-trailer-signature:" + b"0" * 64 + b"\r\n"
                                                          for _ in range(200))),
    "one-line-5000-bytes": lambda u: _trailer_lines(u, b"x-amz-meta-pad:" + b"p" * 5000 + b"\r\n"),
    "line-without-colon": lambda u: _trailer_lines(u, b"not a trailer line\r\n"),
    "second-checksum": lambda u: _trailer_lines(u, b"x-amz-checksum-sha256:" + b"A" * 44 + b"\r\n"),
}


@pytest.mark.parametrize("mode", [STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER],
                         ids=[SHORT[STREAMING_SIGNED_TRAILER], SHORT[STREAMING_UNSIGNED_TRAILER]])
@pytest.mark.parametrize("trailer", list(TRAILERS))
def test_broken_trailer(proxy: Any, direct: Any, bucket: str, mode: str, trailer: str) -> None:
    """A trailer section too large, an overlong or malformed trailer line, a
    second checksum: 400, nothing stored."""
    upload = _upload(proxy, bucket, mode)
    assert_xml_error((ac.send(upload, body=TRAILERS[trailer](upload), timeout=TIMEOUT)), 400, FRAMING_CODES)
    assert stored_keys(direct, bucket) == []
    assert_still_serving(proxy, direct, bucket)


HTTP_CHUNKINGS: Dict[str, Callable[[bytes], bytes]] = {
    "size-not-hex": lambda b: b"zz\r\n" + b + b"\r\n0\r\n\r\n",
    "size-overflows": lambda b: b"f" * 20 + b"\r\n" + b + b"\r\n0\r\n\r\n",
    "data-longer-than-size": lambda b: f"{len(b) - 7:x}\r\n".encode() + b + b"\r\n0\r\n\r\n",
    "cut-inside-the-data": lambda b: f"{len(b):x}\r\n".encode() + b[:len(b) // 2],
}


@pytest.mark.parametrize("chunking", list(HTTP_CHUNKINGS))
def test_broken_http_chunking_around_aws_chunked(proxy: Any, direct: Any, bucket: str, chunking: str) -> None:
    """A valid aws-chunked body inside broken HTTP Transfer-Encoding: chunked
    framing (Go decodes that layer): 400 S3 XML, nothing stored."""
    upload = _upload(proxy, bucket, STREAMING_SIGNED)
    headers = list({**upload.headers, "Host": f"127.0.0.1:{proxy.http_port}",
                    "Transfer-Encoding": "chunked"}.items())
    raw = render("PUT", upload.path, headers) + HTTP_CHUNKINGS[chunking](upload.body())
    # half-closed: with "cut-inside-the-data" the body just ends
    reply = exchange(proxy.http_port, raw, method="PUT", half_close=True, timeout=TIMEOUT)
    assert_xml_error(reply, 400, FRAMING_CODES)
    assert stored_keys(direct, bucket) == []
    assert_still_serving(proxy, direct, bucket)


# --------------------------------------------------------------------------
# CR, LF, NUL and size limits in the header section


def test_crlf_injected_amz_header(proxy: Any, direct: Any, bucket: str) -> None:
    """A value carrying CRLF (or a bare LF) smuggles a second x-amz-* header
    in: it is not signed, so the request is refused."""
    for key, eol in (("crlf", "\r\n"), ("lf", "\n")):
        target = f"/{bucket}/{key}"
        headers = raw_signed_headers(proxy, "PUT", target, b"x", extra=[("X-Amz-Meta-A", "1")])
        headers = [(n, v + f"{eol}X-Amz-Meta-Injected: 1" if n == "X-Amz-Meta-A" else v) for n, v in headers]
        reply = send_raw(proxy, "PUT", target, headers, b"x")
        assert_xml_error(reply, 403, "AccessDenied")
    assert stored_keys(direct, bucket) == []
    assert_still_serving(proxy, direct, bucket)


def test_obs_fold_of_a_signed_header(proxy: Any, direct: Any, bucket: str) -> None:
    """An obsolete line folding of a signed header (RFC 9112: reject, or read
    as a space): either way not the signed value, so refused."""
    target = f"/{bucket}/fold"
    headers = raw_signed_headers(proxy, "PUT", target, b"x", extra=[("X-Amz-Meta-A", "1")])
    headers = [(n, v + "\r\n folded" if n == "X-Amz-Meta-A" else v) for n, v in headers]
    reply = send_raw(proxy, "PUT", target, headers, b"x", check_closed=True)
    if reply.headers.get("Content-Type", "").startswith("text/plain"):
        assert_go_answered(reply, 400)
    else:
        assert_xml_error(reply, 403, ("SignatureDoesNotMatch", "AccessDenied"))
    assert stored_keys(direct, bucket) == []
    assert_still_serving(proxy, direct, bucket)


# Shapes Go's HTTP server answers itself, in plain text, before the handler
# runs: (id, how to break a valid signed PUT, Go's status).
GO_ANSWERED: List[Tuple[str, Callable[[Headers], Headers], int]] = [
    ("bare-cr-in-value", lambda h: h + [("X-Amz-Meta-A", "a\rb")], 400),
    ("nul-in-value", lambda h: h + [("X-Amz-Meta-A", "a\0b")], 400),
    ("space-before-colon", lambda h: h + [("X-Amz-Meta-A ", "1")], 400),
    ("two-host-headers", lambda h: h + [("Host", "other.example")], 400),
    ("no-host-header", lambda h: replace(h, "Host"), 400),
    ("one-mib-of-headers", lambda h: h + [(f"X-Pad-{i}", "v" * 500) for i in range(2100)], 431),
]


@pytest.mark.parametrize("mangle, status", [pytest.param(m, s, id=i) for i, m, s in GO_ANSWERED])
def test_answered_by_go(proxy: Any, direct: Any, bucket: str, mangle: Callable[[Headers], Headers],
                        status: int) -> None:
    """Go's server refuses these (plain text, not S3 XML): the status, the
    connection closed, nothing stored."""
    target = f"/{bucket}/go"
    reply = send_raw(proxy, "PUT", target, mangle(raw_signed_headers(proxy, "PUT", target, b"x")), b"x", check_closed=True)
    assert_go_answered(reply, status)
    assert stored_keys(direct, bucket) == []
    assert_still_serving(proxy, direct, bucket)


HEADER_SETS = [pytest.param(2000, 1, id="2000-headers-20kb"), pytest.param(2000, 12, id="2000-headers-45kb")]


@pytest.mark.parametrize("count, size", HEADER_SETS)
def test_huge_header_set_is_refused_by_the_proxy(start_proxy: Callable[..., Any], backend: Any, recorder: RecordingBackend,
                                                 count: int, size: int) -> None:
    """Thousands of headers, under Go's 64 KiB limit but far over S3's 8 KiB:
    the proxy answers S3's 400 RequestHeaderSectionTooLarge itself (or Go a
    plain 431, if its limit is lowered) instead of handing them to the
    backend -- versitygw then refuses and closes while the proxy is still
    writing, which comes back as a 502 or its 400, by chance."""
    proxy = start_proxy(cos_map={"allowed": backend.entry(port=recorder.port)})
    target = "/allowed/many"
    headers = raw_signed_headers(proxy, "PUT", target, b"x") + [(f"X-Pad-{i:05d}", "v" * size) for i in range(count)]
    reply = send_raw(proxy, "PUT", target, headers, b"x", check_closed=True)
    if reply.status == 431:
        assert_go_answered(reply, 431)
    else:
        assert_xml_error(reply, 400, "RequestHeaderSectionTooLarge")
    assert recorder.requests == []


@pytest.mark.parametrize("count, size", HEADER_SETS)
def test_huge_header_set_stores_nothing(proxy: Any, direct: Any, bucket: str, count: int, size: int) -> None:
    """The same against versitygw: refused (never a 2xx), nothing stored, the
    proxy still serving."""
    target = f"/{bucket}/many"
    headers = raw_signed_headers(proxy, "PUT", target, b"x") + [(f"X-Pad-{i:05d}", "v" * size) for i in range(count)]
    reply = send_raw(proxy, "PUT", target, headers, b"x")
    assert reply.status >= 400, (reply.status, reply.body[:300])
    assert stored_keys(direct, bucket) == []
    assert_still_serving(proxy, direct, bucket)


# --------------------------------------------------------------------------
# paths: bucket names, dot segments, double encoding


@pytest.mark.parametrize("name", [
    pytest.param("bad%20name", id="space"),
    pytest.param("bad%00name", id="nul"),
    pytest.param("bad%0Aname", id="newline"),
    pytest.param("bad%3Fname", id="question-mark"),
    pytest.param("a%2Fb", id="encoded-slash"),
    pytest.param("..", id="dot-dot"),
    pytest.param("%2e%2e", id="encoded-dot-dot"),
    pytest.param(".", id="dot"),
    pytest.param("b" * 256, id="256-chars"),
])
def test_invalid_bucket_name(proxy: Any, direct: Any, bucket: str, name: str) -> None:
    """A name no bucket can have, under any rules: S3's (and versitygw's) 400
    InvalidBucketName, never an echo of control bytes, nothing created."""
    target = f"/{name}/k"
    reply = send_raw(proxy, "PUT", target, raw_signed_headers(proxy, "PUT", target, b"x"), b"x")
    assert_xml_error(reply, 400, "InvalidBucketName")
    assert b"\0" not in reply.body
    assert stored_keys(direct, bucket) == []
    assert_still_serving(proxy, direct, bucket)


TRAVERSALS = [
    pytest.param("{b}/../{o}/secret", id="dot-dot"),
    pytest.param("{b}/%2e%2e/{o}/secret", id="encoded-dot-dot"),
    pytest.param("{b}/%2E%2E/{o}/secret", id="encoded-upper-dot-dot"),
    pytest.param("{b}/.%2e/{o}/secret", id="half-encoded-dot-dot"),
    pytest.param("{b}/..%2F{o}%2Fsecret", id="dot-dot-encoded-slashes"),
    pytest.param("{b}/%2e%2e%2f{o}%2fsecret", id="all-encoded"),
    pytest.param("{b}/x/../../{o}/secret", id="deeper"),
    pytest.param("{b}/./../{o}/secret", id="dot-then-dot-dot"),
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_dot_segments_do_not_reach_another_bucket(proxy: Any, direct: Any, bucket: str,
                                                  make_bucket: Callable[..., str], path: str) -> None:
    """/<allowed>/../<other>/secret: the proxy authorised <allowed> only.
    A GET must not read <other>'s object, a PUT must not write there."""
    other = make_bucket("other")
    direct.put_object(Bucket=other, Key="secret", Body=b"TOP-SECRET")
    target = "/" + path.format(b=bucket, o=other)

    got = send_raw(proxy, "GET", target, raw_signed_headers(proxy, "GET", target))
    assert b"TOP-SECRET" not in got.body
    assert_any_xml_error(got)

    put = send_raw(proxy, "PUT", target, raw_signed_headers(proxy, "PUT", target, b"overwrite"), b"overwrite")
    assert stored_body(direct, other, "secret") == b"TOP-SECRET"
    assert stored_keys(direct, other) == ["secret"]
    if put.status != 200:  # a literal key inside <allowed> would be S3's reading
        assert_any_xml_error(put)
        assert stored_keys(direct, bucket) == []
    assert_still_serving(proxy, direct, bucket)


def _resolved(raw_target: str) -> str:
    """Where a backend that decodes and removes dot segments (RFC 3986
    section 6.2.2) would take a request target."""
    path = urllib.parse.unquote(raw_target.split("?", 1)[0])
    return posixpath.normpath(path)


@pytest.mark.parametrize("path", TRAVERSALS)
def test_dot_segments_are_not_forwarded(start_proxy: Callable[..., Any], backend: Any, recorder: RecordingBackend,
                                        path: str) -> None:
    """Whatever the proxy forwards for /<allowed>/../<other>/... must stay
    inside <allowed> on any backend, not only one (like versitygw) that
    refuses dot segments itself: refused by the proxy, or sent so that it
    cannot resolve elsewhere."""
    proxy = start_proxy(cos_map={"allowed": backend.entry(port=recorder.port)})
    target = "/" + path.format(b="allowed", o="other")
    for method, body in (("GET", b""), ("PUT", b"x")):
        reply = send_raw(proxy, method, target, raw_signed_headers(proxy, method, target, body), body)
        if reply.status != 200:
            assert_any_xml_error(reply)
    escaped = [(r.method, r.target) for r in recorder.requests if not (_resolved(r.target) + "/").startswith("/allowed/")]
    assert escaped == [], f"forwarded outside the authorised bucket: {escaped}"


def test_double_encoded_key_is_kept_literally(proxy: Any, direct: Any, bucket: str,
                                              make_bucket: Callable[..., str]) -> None:
    """%252F is a literal "%2F" in the key: stored as such, never decoded twice
    into a '/' (or a '../' into another bucket)."""
    other = make_bucket("other")
    for target, key in ((f"/{bucket}/a%252Fb", "a%2Fb"),
                        (f"/{bucket}/..%252F{other}%252Fsecret", f"..%2F{other}%2Fsecret"),
                        (f"/{bucket}/%252e%252e%252F{other}", f"%2e%2e%2F{other}")):
        reply = send_raw(proxy, "PUT", target, raw_signed_headers(proxy, "PUT", target, key.encode()), key.encode())
        assert reply.status == 200, (target, reply.status, reply.body[:300])
        assert stored_body(direct, bucket, key) == key.encode()
    assert sorted(stored_keys(direct, bucket)) == sorted(["a%2Fb", f"..%2F{other}%2Fsecret", f"%2e%2e%2F{other}"])
    assert stored_keys(direct, other) == []
    assert_still_serving(proxy, direct, bucket)


# --------------------------------------------------------------------------
# request targets and hosts: absolute form, CONNECT, unknown domains


def test_absolute_form_never_reaches_the_named_host(proxy: Any, direct: Any, bucket: str, listener: Listener) -> None:
    """GET http://<other host>/<bucket>/key: the proxy is no forward proxy. A
    signed request is served from the bucket's backend (as boto3 sends
    through an HTTP proxy); an unsigned one is refused; the named host is
    never contacted."""
    direct.put_object(Bucket=bucket, Key="k", Body=b"from the backend")
    other = f"127.0.0.1:{listener.port}"
    target = f"http://{other}/{bucket}/k"
    reply = send_raw(proxy, "GET", target, raw_signed_headers(proxy, "GET", f"/{bucket}/k", host=other))
    assert (reply.status, reply.body) == (200, b"from the backend")

    reply = send_raw(proxy, "GET", target, [("Host", other)])
    assert_xml_error(reply, 403, "AccessDenied")
    reply = send_raw(proxy, "PUT", f"http://{other}/elsewhere/k", raw_signed_headers(proxy, "PUT", "/elsewhere/k", b"x", host=other),
                 b"x")
    assert_xml_error(reply, 404, "NoSuchBucket")
    assert listener.connections == 0
    assert stored_keys(direct, bucket) == ["k"]
    assert_still_serving(proxy, direct, bucket)


def test_connect_is_no_tunnel(proxy: Any, direct: Any, bucket: str, listener: Listener) -> None:
    """CONNECT host:port is refused with an S3 error, the connection is not
    turned into a tunnel and the host is never contacted."""
    other = f"127.0.0.1:{listener.port}"
    sock = socket.create_connection(("127.0.0.1", proxy.http_port), timeout=TIMEOUT)
    try:
        sock.sendall(render("CONNECT", other, [("Host", other)]))
        reply = read_reply(sock, "CONNECT")
        assert_xml_error(reply, reply.status, ("AccessDenied", "MethodNotAllowed", "InvalidRequest"))
        assert reply.status in (400, 403, 405)
        # Bytes sent after the answer go nowhere near the host.
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    finally:
        sock.close()
    assert listener.connections == 0
    assert_still_serving(proxy, direct, bucket)


def test_signed_connect_is_not_forwarded(start_proxy: Callable[..., Any], backend: Any, recorder: RecordingBackend) -> None:
    """Go parses ``CONNECT /bucket/key`` as a path; even signed, it is no S3
    request: the proxy answers 405 MethodNotAllowed itself instead of
    sending a CONNECT to the backend."""
    proxy = start_proxy(cos_map={"allowed": backend.entry(port=recorder.port)})
    target = "/allowed/k"
    reply = send_raw(proxy, "CONNECT", target, raw_signed_headers(proxy, "CONNECT", target))
    assert FROM_RECORDER not in reply.body
    assert_xml_error(reply, 405, "MethodNotAllowed")
    assert recorder.requests == []


@pytest.mark.parametrize("host", [
    pytest.param("{b}.evil.test", id="other-domain"),
    pytest.param("{b}.{d}.evil.test", id="proxy-domain-inside-another"),
    pytest.param("{b}{d}", id="no-dot-before-domain"),
    pytest.param("{b}.x{d}", id="domain-suffix-without-dot"),
])
def test_host_of_an_unconfigured_domain(start_proxy: Callable[..., Any], direct: Any, bucket: str,
                                        host: str) -> None:
    """virtual_host_domains set, Host under some other domain: path style, so
    ``PUT /key`` names the bucket "key" -- NoSuchBucket; the bucket in the
    Host is untouched."""
    proxy = start_proxy(bucket, virtual_host_domains=[DOMAIN])
    full = f"{host.format(b=bucket, d=DOMAIN)}:{proxy.http_port}"
    reply = send_raw(proxy, "PUT", "/key", raw_signed_headers(proxy, "PUT", "/key", b"x", host=full), b"x")
    fields = assert_xml_error(reply, 404, "NoSuchBucket")
    assert fields.get("Resource", "key") == "key"
    assert stored_keys(direct, bucket) == []
    assert_still_serving(proxy, direct, bucket)


# --------------------------------------------------------------------------
# request smuggling


def test_content_length_and_transfer_encoding(proxy: Any, direct: Any, bucket: str) -> None:
    """Content-Length and Transfer-Encoding: chunked together (RFC 9112 section
    6.1: "ought to be handled as an error"). A front end framing by
    Content-Length sees one request; a server framing by chunked sees the
    request hidden in the body as a second one. Refused as S3 refuses any
    HTTP-chunked body (501 NotImplemented), connection closed, neither
    request executed."""
    hidden_target = f"/{bucket}/smuggled"
    hidden = render("PUT", hidden_target, raw_signed_headers(proxy, "PUT", hidden_target, b"hello")
                    + [("Content-Length", "5")]) + b"hello"
    body = b"5\r\nhello\r\n0\r\n\r\n" + hidden
    target = f"/{bucket}/front"
    headers = raw_signed_headers(proxy, "PUT", target, b"hello") + [("Content-Length", str(len(body))),
                                                       ("Transfer-Encoding", "chunked")]
    reply = send_raw(proxy, "PUT", target, headers, body, content_length=False, check_closed=True)
    assert stored_keys(direct, bucket) == [], "the request hidden in the body was executed"
    assert_xml_error(reply, 501, "NotImplemented")
    assert reply.closed, "the connection stayed open: the hidden request can follow"
    assert_still_serving(proxy, direct, bucket)


def test_two_different_content_lengths(proxy: Any, direct: Any, bucket: str) -> None:
    """Answered by Go's server: 400, connection closed, nothing stored."""
    target = f"/{bucket}/two-lengths"
    headers = raw_signed_headers(proxy, "PUT", target, b"hello") + [("Content-Length", "5"), ("Content-Length", "6")]
    reply = send_raw(proxy, "PUT", target, headers, b"hello!", content_length=False, check_closed=True)
    assert_go_answered(reply, 400)
    assert stored_keys(direct, bucket) == []
    assert_still_serving(proxy, direct, bucket)


def test_chunked_not_the_final_transfer_coding(proxy: Any, direct: Any, bucket: str) -> None:
    """Transfer-Encoding: chunked, identity -- chunked is not last, so the body
    length cannot be known. RFC 9112 section 6.3 says 400 and close; Go's
    server answers 501 and closes (plain text), which is also what S3 says to
    any Transfer-Encoding."""
    target = f"/{bucket}/te"
    headers = raw_signed_headers(proxy, "PUT", target, b"hello") + [("Transfer-Encoding", "chunked, identity")]
    reply = send_raw(proxy, "PUT", target, headers, b"5\r\nhello\r\n0\r\n\r\n", content_length=False,
                 check_closed=True)
    assert_go_answered(reply, 501)
    assert stored_keys(direct, bucket) == []
    assert_still_serving(proxy, direct, bucket)
