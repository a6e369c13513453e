"""Hostile authentication material (see abuse_checks.py for the suite):
malformed and duplicated Authorization headers, x-amz-date that is no date,
broken presigned queries; and the control that proves the raw signer right.
"""

from __future__ import annotations

import hashlib
import urllib.parse
from typing import Any, Callable, List, Optional, Tuple

import pytest

from abuse_checks import (
    MALFORMED,
    assert_go_answered,
    assert_refused_as_malformed,
    assert_still_serving,
    replace,
    sign_raw,
    value,
)
from awschunked import STREAMING_SIGNED
from helpers import (
    REGION,
    assert_xml_error,
    presign,
    raw_signed_headers,
    send_raw,
    stored_body,
    stored_keys,
    utcnow,
)
from s3wire import Headers, amz_now, authorization


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
