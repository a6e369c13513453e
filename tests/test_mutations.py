"""The forwarding rule, tested by mutation: nothing a client did not sign
reaches the backend.

Real signed requests are captured from boto3 and from the aws cli (each
client pointed at a capturing :class:`s3wire.RecordingBackend`, its bytes
kept as sent), plus presigned GET and PUT URLs. Each one is replayed, first
unchanged, to a proxy whose backend is another recording backend: that is
the baseline, what the backend receives for the request the client signed.
Then every header and every query parameter of it is mutated in turn
(duplicated with the same and with another value, also under a case-folded
name, its name case-folded or ``_``-mangled, named in ``Connection:``,
emptied, overflowed, double-encoded), the signed body is changed, and
dangerous unsigned headers and parameters are added.
Each mutated request must be

* refused by the proxy: a 4xx S3 XML error (or, for the few shapes Go's HTTP
  server refuses before the proxy sees them, Go's own plain 4xx or 501; see
  GO_REFUSALS), with nothing reaching the backend; or
* without effect: the backend receives exactly what it received for the
  baseline (method, path, query, headers, body), ignoring what changes from
  one send to the next (the proxy's own Authorization and X-Amz-Date).

and most of them (at least half) must be refused, not silently dropped.

The rule the proxy enforces: a header reaches the backend only if the client
signed it, or it is on the short list of headers S3 clients legitimately
leave unsigned (ALLOWED_UNSIGNED), or the proxy sets it; every other unsigned
header is dropped. A forwarded header that appears twice, a header name with
``_``, and a ``Connection`` header naming a header the backend would receive
are refused with 400. Hence one documented exception to "no effect": a
mutation of a header on ALLOWED_UNSIGNED that the client did not sign may
reach the backend as exactly that header with exactly the (one) value the
client sent. Case-folding a header name has no effect by HTTP: names are
compared case-insensitively. A second one: a changed body may reach an HMAC
backend with the client's signed payload hash, which the backend checks; a
bearer backend checks none, so a third test makes sure no tampered body
reaches one whole.

A second test lets the attacker sign the mutation too (a valid key signs
anything): a duplicated header, a ``_`` name or a ``Connection`` header
naming a forwarded one must then be refused, whatever was signed.

A failure counts the offenders by request and by kind of mutation and lists
the first ones (``OSP_MUTATIONS_SHOW=n`` lists more): request, mutation, what
the proxy answered, and how what the backend saw differs from the baseline.
"""

from __future__ import annotations

import http.client
import os
import urllib.parse
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import pytest
from botocore.exceptions import BotoCoreError, ClientError
from requests.structures import CaseInsensitiveDict

from clients import AWS_CLI_V1, AWS_CLI_V2, isolated_env, run
from helpers import CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY, REGION, make_client
from iam_server import IamServer
from object_storage_proxy import ProxyServer
from s3wire import (
    Answer,
    Headers,
    RecordedRequest,
    RecordingBackend,
    Reply,
    authorization,
    exchange,
    render,
    sign_raw,
)

BUCKET = "bkt"  # the bucket every captured request names
SOURCE = "src"  # the copy source's bucket (also mapped)
OTHER = "other"  # a bucket the proxy does not serve
SHOW = int(os.environ.get("OSP_MUTATIONS_SHOW", "25"))  # offenders shown in a failure message

# Headers S3 clients legitimately leave unsigned, which the proxy forwards
# as sent (lower case). Anything else the client did not sign is dropped.
# Each is safe unsigned: Content-Length frames the body (whose hash is
# signed or checked), Content-Type, Cache-Control and Content-MD5 describe that body,
# User-Agent informs, Range and the If-* preconditions only narrow a read.
ALLOWED_UNSIGNED = frozenset({
    "content-length", "content-type", "cache-control", "content-md5", "user-agent", "range",
    "if-match", "if-none-match", "if-modified-since", "if-unmodified-since",
})

# What the backend sees that changes from one send of the same request to the
# next: the proxy's own signature and its date. Never compared.
VARYING_HEADERS = frozenset({"authorization", "x-amz-date"})

# Plain-text answers of Go's net/http, given before the proxy's handler runs
# (a request Go cannot frame: two different Content-Lengths, two Hosts, an
# unknown Expect, ...). They refuse as surely as the proxy does: 4xx, and
# 501 for a transfer coding other than chunked (RFC 9112 section 6.1).
GO_REFUSALS = (b"400 Bad Request", b"417 Expectation Failed", b"431 Request Header Fields Too Large")
GO_UNSUPPORTED_CODING = (501, b"Unsupported transfer encoding")

# Unsigned headers an attacker adds after signing: each would change what
# the backend does if it were forwarded.
DANGEROUS_HEADERS: Headers = [
    ("x-amz-copy-source", f"{OTHER}/secret"),
    ("X-Amz-Copy-Source", f"/{SOURCE}/secret"),
    ("X_Amz_Copy_Source", f"{OTHER}/secret"),
    ("x-amz-copy-source-range", "bytes=0-1"),
    ("x-amz-metadata-directive", "REPLACE"),
    ("x-amz-acl", "public-read-write"),
    ("x-amz-grant-full-control", 'id="attacker"'),
    ("x-amz-server-side-encryption", "AES256"),
    ("x-amz-server-side-encryption-customer-algorithm", "AES256"),
    ("x-amz-tagging", "owner=attacker"),
    ("x-amz-storage-class", "GLACIER"),
    ("x-amz-website-redirect-location", "https://attacker.example/"),
    ("x-amz-meta-extra", "injected"),
    ("X_Amz_Meta_Extra", "injected"),
    ("x-amz-object-lock-mode", "COMPLIANCE"),
    ("x-amz-bypass-governance-retention", "true"),
    ("x-amz-request-payer", "requester"),
    ("x-amz-expected-bucket-owner", "123456789012"),
    ("x-amz-checksum-sha256", "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="),
    ("x-amz-security-token", "injected"),
    ("Cache-Control", "no-store"),
    ("Content-Disposition", "attachment; filename=evil.html"),
    ("Content-Encoding", "gzip"),
    ("Content-Language", "xx"),
    ("Expires", "Thu, 01 Jan 2099 00:00:00 GMT"),
    ("X-Forwarded-Host", f"{OTHER}.s3.amazonaws.com"),
    ("Forwarded", "host=attacker.example"),
    # On ALLOWED_UNSIGNED: forwarded as sent is the documented exception.
    ("Range", "bytes=0-1"),
    ("If-Match", '"etag"'),
    ("If-None-Match", "*"),
    ("Content-Type", "text/html"),
    ("Content-MD5", "1B2M2Y8AsgTpgAmY7PhCfg=="),
    # Framing and payload: each would make the backend read another body.
    ("Content-Encoding", "aws-chunked"),
    ("X-Amz-Decoded-Content-Length", "1"),
    ("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD"),
    ("Transfer-Encoding", "identity"),
]

# Unsigned query parameters an attacker adds after signing.
DANGEROUS_PARAMS: List[Tuple[str, str]] = [
    ("x-amz-copy-source", f"{OTHER}/secret"),
    ("x-amz-copy-source", f"{SOURCE}/secret"),
    ("prefix", "other/"),
    ("x-id", "CopyObject"),
    ("acl", ""),
    ("uploads", ""),
    ("versionId", "1"),
    ("X-Amz-Security-Token", "injected"),
    ("response-content-type", "text/html"),
]


# --------------------------------------------------------------------------
# captured requests


@dataclass
class Captured:
    """A request a real client signed, as it went on the wire."""

    name: str
    request: RecordedRequest
    presigned: bool = False

    def signed_headers(self) -> List[str]:
        """The names the client signed (lower case)."""
        if self.presigned:
            return _query_value(self.request.query, "X-Amz-SignedHeaders").split(";")
        auth = self.request.header("Authorization")[0]
        return auth.split("SignedHeaders=", 1)[1].split(",", 1)[0].strip().split(";")


def _query_value(query: str, name: str) -> str:
    for part in query.split("&"):
        key, _, value = part.partition("=")
        if key == name:
            return urllib.parse.unquote(value)
    raise KeyError(name)


def _capture_answer(request: RecordedRequest) -> Answer:
    """Plausible answers, so that a capturing client finishes quietly."""
    xml = [("Content-Type", "application/xml")]
    if "uploads" in request.query.split("&") or "uploads=" in request.query:
        return Answer(200, xml, b"<InitiateMultipartUploadResult><Bucket>bkt</Bucket><Key>k</Key>"
                                b"<UploadId>UPLOAD</UploadId></InitiateMultipartUploadResult>")
    if request.header("x-amz-copy-source"):
        return Answer(200, xml, b"<CopyObjectResult><ETag>\"e\"</ETag></CopyObjectResult>")
    if request.method == "GET" and request.path.count("/") >= 2:
        return Answer(206, [("Content-Type", "text/plain"), ("Content-Range", "bytes 0-9/10"), ("ETag", '"e"')],
                      b"0123456789")
    if request.method == "GET":
        return Answer(200, xml, b"<ListBucketResult><Name>bkt</Name><KeyCount>0</KeyCount>"
                                b"<IsTruncated>false</IsTruncated></ListBucketResult>")
    return Answer(200, [("ETag", '"e"')], b"")


def _boto3_calls() -> List[Tuple[str, Callable[[Any], Any]]]:
    return [
        ("boto3 GetObject Range", lambda c: c.get_object(Bucket=BUCKET, Key="dir/obj", Range="bytes=0-9")),
        ("boto3 GetObject If-None-Match", lambda c: c.get_object(
            Bucket=BUCKET, Key="dir/obj 1", Range="bytes=0-1", IfNoneMatch='"e"')),
        ("boto3 PutObject metadata", lambda c: c.put_object(
            Bucket=BUCKET, Key="dir/obj", Body=b"hello mutations", ContentType="text/plain",
            Metadata={"team": "blue", "owner": "me"})),
        ("boto3 PutObject Cache-Control, spaced metadata", lambda c: c.put_object(
            Bucket=BUCKET, Key="dir/k 1", Body=b"body", ContentType="text/plain", CacheControl="no-store",
            Metadata={"team": "a  b"})),
        ("boto3 CopyObject", lambda c: c.copy_object(
            Bucket=BUCKET, Key="dir/copy", CopySource={"Bucket": SOURCE, "Key": "dir/obj"})),
        ("boto3 CopyObject '+' key, REPLACE", lambda c: c.copy_object(
            Bucket=BUCKET, Key="dst", CopySource={"Bucket": SOURCE, "Key": "s+rc"}, MetadataDirective="REPLACE")),
        ("boto3 ListObjectsV2 prefix", lambda c: c.list_objects_v2(Bucket=BUCKET, Prefix="dir/", MaxKeys=5)),
        ("boto3 CreateMultipartUpload", lambda c: c.create_multipart_upload(
            Bucket=BUCKET, Key="dir/mp", ContentType="application/octet-stream")),
    ]


def _aws_cli_calls(tmp: Path) -> List[Tuple[str, str, List[str]]]:
    body = tmp / "body.txt"
    body.write_bytes(b"hello from the aws cli")
    out = str(tmp / "out")
    return [
        ("aws-cli-v2 get-object range", AWS_CLI_V2,
         ["s3api", "get-object", "--bucket", BUCKET, "--key", "dir/obj", "--range", "bytes=0-9", out]),
        ("aws-cli-v2 put-object metadata", AWS_CLI_V2,
         ["s3api", "put-object", "--bucket", BUCKET, "--key", "dir/obj", "--body", str(body),
          "--content-type", "text/plain", "--metadata", "team=blue"]),
        ("aws-cli-v2 copy-object", AWS_CLI_V2,
         ["s3api", "copy-object", "--bucket", BUCKET, "--key", "dir/copy", "--copy-source", f"{SOURCE}/dir/obj"]),
        ("aws-cli-v1 list-objects-v2 prefix", AWS_CLI_V1,
         ["s3api", "list-objects-v2", "--bucket", BUCKET, "--prefix", "dir/"]),
        ("aws-cli-v1 put-object", AWS_CLI_V1,
         ["s3api", "put-object", "--bucket", BUCKET, "--key", "dir/obj1", "--body", str(body)]),
    ]


def _aws_env(binary_home: Path) -> Dict[str, str]:
    binary_home.mkdir(parents=True, exist_ok=True)
    config = binary_home / "config"
    config.write_text(f"[default]\nregion = {REGION}\noutput = json\nmax_attempts = 1\n"
                      "s3 =\n    addressing_style = path\n")
    credentials = binary_home / "credentials"
    credentials.write_text(f"[default]\naws_access_key_id = {CLIENT_ACCESS_KEY}\n"
                           f"aws_secret_access_key = {CLIENT_SECRET_KEY}\n")
    return isolated_env(binary_home / "home", {
        "AWS_CONFIG_FILE": str(config), "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
        "AWS_EC2_METADATA_DISABLED": "true", "AWS_PAGER": ""})


def capture_requests(tmp: Path) -> List[Captured]:
    """Real signed requests from boto3, the aws cli (v1 and v2, those
    installed) and presigned URLs, all signed for the capturing server's
    Host (the proxy verifies the Host as sent)."""
    captured: List[Captured] = []
    capture = RecordingBackend(_capture_answer)
    try:
        endpoint = f"http://127.0.0.1:{capture.port}"
        client = make_client(endpoint, CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY)
        for name, call in _boto3_calls():
            capture.take()
            try:
                call(client)
            except (ClientError, BotoCoreError):
                pass  # the capture is what counts, not the client's reading of the answer
            got = capture.take()
            assert len(got) == 1, (name, got)
            captured.append(Captured(name, got[0]))
        env = _aws_env(tmp / "aws")
        for name, binary, args in _aws_cli_calls(tmp):
            if not Path(binary).exists():
                continue  # (test_clients_awscli fails loudly for a missing cli)
            capture.take()
            run([binary, "--endpoint-url", endpoint, *args], env, cwd=tmp, timeout=60)
            got = capture.take()
            assert len(got) == 1, (name, [(r.method, r.target) for r in got])
            captured.append(Captured(name, got[0]))
        if Path(AWS_CLI_V2).exists():
            url = run([AWS_CLI_V2, "--endpoint-url", endpoint, "s3", "presign", f"s3://{BUCKET}/dir/cli",
                       "--expires-in", "600"], env, cwd=tmp, timeout=60).output.strip()
            parts = urllib.parse.urlsplit(url)
            assert parts.query and "X-Amz-Signature=" in parts.query, url
            request = RecordedRequest("GET", f"{parts.path}?{parts.query}", [("Host", parts.netloc)])
            captured.append(Captured("aws-cli-v2 presign GET", request, presigned=True))
        for method, body in (("GET", b""), ("PUT", b"presigned body")):
            operation = "get_object" if method == "GET" else "put_object"
            url = client.generate_presigned_url(operation, Params={"Bucket": BUCKET, "Key": "dir/pre"},
                                                ExpiresIn=600)
            parts = urllib.parse.urlsplit(url)
            headers: Headers = [("Host", parts.netloc)]
            if method == "PUT":
                headers.append(("Content-Length", str(len(body))))
            request = RecordedRequest(method, f"{parts.path}?{parts.query}", headers, body)
            captured.append(Captured(f"presigned {method}", request, presigned=True))
    finally:
        capture.close()
    return captured


# --------------------------------------------------------------------------
# mutations


@dataclass
class Variant:
    """One mutated request. ``touched`` is the header (lower case) the
    mutation is about, if any: the documented exception is decided on it."""

    mutation: str
    method: str
    target: str
    headers: Headers
    body: bytes
    touched: Optional[str] = None


def _other(name: str, value: str) -> str:
    """Another plausible value for a header or parameter."""
    lower = name.lower().replace("_", "-")
    if "copy-source" in lower:
        # A bucket the proxy serves: a proxy that took this unsigned value
        # would forward it (a difference), not refuse an unknown bucket.
        return f"{SOURCE}/secret"
    if lower == "content-type":
        return "text/html"
    if lower == "range":
        return "bytes=0-99999"
    if lower == "host":
        return "attacker.example"
    if lower == "prefix":
        return "other/"
    return value + "2" if value else "2"


def _overflow(value: str) -> str:
    """A value past sane bounds: a number beyond 64 bits, or 2 KiB longer
    (the whole head stays under S3's 8 KiB, which the proxy enforces)."""
    return "9" * 30 if value.isdigit() else value + "A" * 2048


def _encode_all(text: str) -> str:
    return "".join(f"%{b:02X}" for b in text.encode())


def header_mutations(name: str, value: str, index: int, headers: Headers) -> Iterator[Tuple[str, Headers]]:
    """(mutation, headers) for each way of mutating headers[index]."""
    before, after = headers[:index], headers[index + 1:]
    this = (name, value)
    yield "duplicated, same value", before + [this, this] + after
    yield "duplicated, other value after", before + [this, (name, _other(name, value))] + after
    yield "duplicated, other value before", before + [(name, _other(name, value)), this] + after
    if name.upper() != name:
        yield "name upper-cased", before + [(name.upper(), value)] + after
    if name.lower() != name:
        yield "name lower-cased", before + [(name.lower(), value)] + after
    # One header twice under two spellings of its name (names are compared
    # case-insensitively: x-amz-meta-a and X-AMZ-META-A are one header).
    if name.upper() != name:
        yield "duplicated, other value, name upper-cased", before + [this, (name.upper(), _other(name, value))] + after
    if name.lower() != name:
        yield "duplicated, other value, name lower-cased", before + [this, (name.lower(), _other(name, value))] + after
    if "-" in name:
        mangled = name.replace("-", "_")
        yield "name _-mangled", before + [(mangled, value)] + after
        yield "_-mangled copy added, other value", before + [this, (mangled, _other(name, value))] + after
    yield "named in Connection", headers + [("Connection", name)]
    yield "named in Connection with keep-alive", headers + [("Connection", f"keep-alive, {name.lower()}")]
    yield "named in Connection with close", headers + [("Connection", f"close, {name.lower()}")]
    if value:
        yield "value emptied", before + [(name, "")] + after
        yield "value with surrounding spaces", before + [(name, f"  {value}  ")] + after
    yield "value overflowed", before + [(name, _overflow(value))] + after
    yield "space before the colon", before + [(name + " ", value)] + after


def query_mutations(query: str) -> Iterator[Tuple[str, str]]:
    """(mutation, query) for each way of mutating each parameter of query."""
    params = [p for p in query.split("&") if p] if query else []
    for index, param in enumerate(params):
        key, eq, value = param.partition("=")
        before, after = params[:index], params[index + 1:]
        decoded = urllib.parse.unquote(value)
        other = f"{key}={urllib.parse.quote(_other(key, decoded), safe='')}"

        def joined(middle: List[str]) -> str:
            return "&".join(before + middle + after)

        yield f"param {key}: duplicated, same value", joined([param, param])
        yield f"param {key}: duplicated, other value after", joined([param, other])
        yield f"param {key}: duplicated, other value before", joined([other, param])
        if key.upper() != key:
            yield f"param {key}: name upper-cased", joined([f"{key.upper()}{eq}{value}"])
        if key.lower() != key:
            yield f"param {key}: name lower-cased", joined([f"{key.lower()}{eq}{value}"])
        if "-" in key:
            yield f"param {key}: name _-mangled", joined([f"{key.replace('-', '_')}{eq}{value}"])
        if value:
            yield f"param {key}: value emptied", joined([f"{key}="])
            yield f"param {key}: value dropped (bare name)", joined([key])
            once = _encode_all(decoded)
            yield f"param {key}: value double-encoded", joined([f"{key}={once.replace('%', '%25')}"])
        elif eq:
            yield f"param {key}: '=' dropped", joined([key])
        else:
            yield f"param {key}: '=' added", joined([f"{key}="])
        yield f"param {key}: value overflowed", joined([f"{key}={urllib.parse.quote(_overflow(decoded), safe='')}"])
        yield f"param {key}: name double-encoded", joined([f"{_encode_all(key).replace('%', '%25')}{eq}{value}"])
        yield f"param {key}: removed", "&".join(before + after)


def body_mutations(body: bytes) -> Iterator[Tuple[str, bytes]]:
    """(mutation, body) for each way of changing a signed body."""
    if body:
        yield "body: one byte flipped", bytes([body[0] ^ 1]) + body[1:]
        yield "body: emptied", b""
        yield "body: last byte cut", body[:-1]
        yield "body: one byte more", body + b"!"
    else:
        yield "body: added", b"unsigned body"


def with_body(headers: Headers, body: bytes) -> Headers:
    """``headers`` with a Content-Length for ``body`` (in the place of the
    old one, or last)."""
    if any(n.lower() == "content-length" for n, _ in headers):
        return [(n, str(len(body)) if n.lower() == "content-length" else v) for n, v in headers]
    return headers + [("Content-Length", str(len(body)))]


def variants(captured: Captured) -> Iterator[Variant]:
    """Every mutation of one captured request."""
    base = captured.request
    for index, (name, value) in enumerate(base.headers):
        for mutation, headers in header_mutations(name, value, index, base.headers):
            yield Variant(f"header {name}: {mutation}", base.method, base.target, headers, base.body, name.lower())
    for mutation, query in query_mutations(base.query):
        target = base.path + ("?" + query if query else "")
        yield Variant(mutation, base.method, target, base.headers, base.body)
    for name, value in DANGEROUS_HEADERS:
        yield Variant(f"unsigned header added: {name}: {value}", base.method, base.target,
                      base.headers + [(name, value)], base.body, name.lower())
    if not captured.presigned:  # (a presigned body is not signed)
        for mutation, body in body_mutations(base.body):
            yield Variant(mutation, base.method, base.target, with_body(base.headers, body), body)
    separator = "&" if base.query else "?"
    for key, value in DANGEROUS_PARAMS:
        param = f"{key}={urllib.parse.quote(value, safe='')}" if value else key
        yield Variant(f"unsigned param added: {param}", base.method, base.target + separator + param,
                      base.headers, base.body)


# --------------------------------------------------------------------------
# what the backend sees


@dataclass
class Seen:
    """What the backend received, in the terms it is compared in: header
    names lower case, the varying ones left out."""

    method: str
    path: str
    query: Tuple[str, ...]
    headers: Tuple[Tuple[str, str], ...]
    body: bytes

    @classmethod
    def of(cls, request: RecordedRequest, ignore: frozenset = frozenset()) -> "Seen":
        headers = sorted((n.lower(), v) for n, v in request.headers
                         if n.lower() not in VARYING_HEADERS and n.lower() not in ignore)
        query = tuple(p for p in request.query.split("&") if p)
        return cls(request.method, request.path, query, tuple(headers), request.body)

    def with_header(self, name: str, values: Sequence[str]) -> "Seen":
        """This, with every ``name`` header replaced by ``values``."""
        kept = [(n, v) for n, v in self.headers if n != name]
        return Seen(self.method, self.path, self.query, tuple(sorted(kept + [(name, v) for v in values])), self.body)

    def diff(self, other: "Seen") -> str:
        """How ``other`` differs from this, briefly (a header received twice
        counts twice)."""
        parts = []
        for what in ("method", "path", "query"):
            if getattr(self, what) != getattr(other, what):
                parts.append(f"{what} {getattr(self, what)!r} -> {getattr(other, what)!r}")
        mine, theirs = Counter(self.headers), Counter(other.headers)
        if theirs - mine:
            parts.append(f"headers added {_brief(sorted((theirs - mine).elements()))}")
        if mine - theirs:
            parts.append(f"headers missing {_brief(sorted((mine - theirs).elements()))}")
        if self.body != other.body:
            parts.append(f"body {self.body[:40]!r} -> {other.body[:40]!r}")
        return "; ".join(parts) or "(equal)"


def _brief(headers: List[Tuple[str, str]]) -> str:
    return ", ".join(f"{n}: {v[:40]!r}" for n, v in headers)


def expected_seen(baseline: Seen, captured: Captured, variant: Variant) -> Seen:
    """What the backend may receive for ``variant`` without breaking the
    rule: the baseline, except (the documented exception) a header on
    ALLOWED_UNSIGNED that the client did not sign, which may arrive as the
    one value the client sent (without the surrounding white space HTTP
    does not count as part of it), or be absent if the client sent none or
    an empty one. Content-Length is never excepted: it must follow the
    body, which must be the baseline's."""
    name = variant.touched
    if (name is None or name == "content-length" or name not in ALLOWED_UNSIGNED
            or name in captured.signed_headers()):
        return baseline
    sent = [v.strip() for n, v in variant.headers if n.lower() == name]
    if len(sent) > 1:
        return baseline  # a forwarded header given twice must be refused
    return baseline.with_header(name, [v for v in sent if v])


def checked_by_the_backend(baseline: Seen, seen: Seen, variant: Variant) -> bool:
    """The second documented exception: a changed body may reach an HMAC
    backend as long as the client's signed payload hash goes with it (the
    proxy signs it into its own request, and S3 refuses a body that does not
    match it); only its Content-Length may follow. A bearer backend checks
    no hash: test_tampered_bodies_never_reach_a_bearer_backend_whole."""
    if not variant.mutation.startswith("body:"):
        return False
    def rest(s: Seen) -> Tuple[Any, ...]:
        return (s.method, s.path, s.query, tuple(h for h in s.headers if h[0] != "content-length"))
    signed_hash = [v for n, v in baseline.headers if n == "x-amz-content-sha256"]
    return rest(seen) == rest(baseline) and bool(signed_hash) and signed_hash[0] not in (
        "UNSIGNED-PAYLOAD", "STREAMING-UNSIGNED-PAYLOAD-TRAILER")


def matches(baseline: Seen, expected: Seen, seen: Seen, variant: Variant) -> bool:
    """``seen`` is the baseline (no effect), or ``expected`` (the documented
    exception), an empty value of the excepted header counting as none
    (the proxy may drop what carries nothing), or a changed body the
    backend will check (checked_by_the_backend)."""
    if seen in (baseline, expected) or checked_by_the_backend(baseline, seen, variant):
        return True
    name = variant.touched
    if name is None or name not in ALLOWED_UNSIGNED or name == "content-length":
        return False
    return seen.with_header(name, [v for n, v in seen.headers if n == name and v]) == expected


def is_refusal(reply: Reply) -> bool:
    """A 4xx S3 XML error with Code and RequestId, or one of Go's own."""
    if (reply.status, reply.body) == GO_UNSUPPORTED_CODING:
        return True
    if not 400 <= reply.status < 500:
        return False
    if "xml" in reply.headers.get("Content-Type", ""):
        return b"<Code>" in reply.body and b"<RequestId>" in reply.body
    return reply.body.startswith(GO_REFUSALS)


def reply_summary(reply: Reply) -> str:
    code = ""
    if b"<Code>" in reply.body:
        code = " " + reply.body.split(b"<Code>", 1)[1].split(b"</Code>", 1)[0].decode(errors="replace")
    elif reply.body:
        code = f" {reply.body[:40]!r}"
    return f"{reply.status}{code}"


# --------------------------------------------------------------------------
# the test


def _kind(mutation: str) -> str:
    """A mutation's kind, without the header or parameter it was applied
    to ("header Range: named in Connection" -> "header: named in
    Connection")."""
    if mutation.startswith(("header ", "param ")):
        return mutation.split(" ", 1)[0] + ":" + mutation.split(":", 1)[1]
    return mutation


def send(proxy: ProxyServer, variant: Variant) -> Reply:
    """One variant on its own connection, byte for byte."""
    raw = render(variant.method, variant.target, variant.headers) + variant.body
    try:
        return exchange(int(proxy.http_port or 0), raw, method=variant.method, timeout=10)
    except (OSError, http.client.HTTPException) as exc:  # a dropped connection is an offence, reported
        return Reply(0, CaseInsensitiveDict(), f"no answer: {type(exc).__name__}: {exc}".encode())


@pytest.fixture(scope="module")
def captured_requests(tmp_path_factory: Any) -> List[Captured]:
    return capture_requests(tmp_path_factory.mktemp("capture"))


@pytest.fixture
def recorder() -> Iterator[RecordingBackend]:
    rec = RecordingBackend(_capture_answer)
    yield rec
    rec.close()


def _proxy_to(start_proxy: Callable[..., ProxyServer], backend: Any, recorder: RecordingBackend) -> ProxyServer:
    entry = backend.entry(port=recorder.port)
    return start_proxy(cos_map={BUCKET: entry, SOURCE: entry})


def test_mutated_signed_requests_change_nothing_at_the_backend(
        captured_requests: List[Captured], start_proxy: Callable[..., ProxyServer], backend: Any,
        recorder: RecordingBackend) -> None:
    """Every mutation of every captured request is refused, or reaches the
    backend exactly as the unmutated request does (see the module doc)."""
    proxy = _proxy_to(start_proxy, backend, recorder)
    offenders: List[str] = []
    total = refused = 0
    for captured in captured_requests:
        base = captured.request
        original = Variant("none", base.method, base.target, base.headers, base.body)
        reply = send(proxy, original)
        first = recorder.take()
        assert reply.status in (200, 206) and len(first) == 1, \
            (captured.name, reply_summary(reply), [(r.method, r.target) for r in first])
        send(proxy, original)
        second = recorder.take()
        # Nothing else may differ between two sends of the same request, or
        # the comparisons below would blame mutations for it.
        assert len(second) == 1 and Seen.of(second[0]) == Seen.of(first[0]), \
            (captured.name, Seen.of(first[0]).diff(Seen.of(second[0])) if second else "not forwarded again")
        baseline = Seen.of(first[0])
        for variant in variants(captured):
            total += 1
            reply = send(proxy, variant)
            received = recorder.take()
            where = f"{captured.name} | {variant.mutation} | proxy {reply_summary(reply)}"
            if not received:
                if not is_refusal(reply):
                    offenders.append(f"{where} | nothing forwarded, but not a 4xx S3 error")
                refused += 1
                continue
            if len(received) > 1:
                offenders.append(f"{where} | backend got {len(received)} requests")
                continue
            seen = Seen.of(received[0])
            expected = expected_seen(baseline, captured, variant)
            if not matches(baseline, expected, seen, variant):
                offenders.append(f"{where} | backend: {expected.diff(seen)}")
            elif reply.status >= 400:
                offenders.append(f"{where} | forwarded unchanged, yet the client got an error")
    per_request = Counter(o.split(" | ", 1)[0] for o in offenders)
    per_kind = Counter(_kind(o.split(" | ")[1]) for o in offenders)
    assert not offenders, (
        f"{len(offenders)} of {total} mutations got through.\nBy request: {dict(per_request)}\n"
        f"By mutation: {dict(per_kind.most_common())}\n"
        f"the first {SHOW} (OSP_MUTATIONS_SHOW=n shows more):\n  " + "\n  ".join(offenders[:SHOW]))
    # Most mutations touch what was signed, or add what may not pass: they
    # are refused, not silently dropped (a proxy that forwarded a fixed
    # request whatever it got would otherwise pass as "without effect").
    assert refused >= total // 2, f"only {refused} of {total} mutations were refused"


# --------------------------------------------------------------------------
# the attacker signs the mutation too

# The mutations the forwarding rule refuses even when the client signed them
# (a holder of a valid key signs whatever it likes): a header given twice,
# a header name with '_', a Connection header naming a header that would be
# forwarded.
RESIGNED_KINDS = ("duplicated, same value", "duplicated, other value after", "duplicated, other value before",
                  "duplicated, other value, name upper-cased", "duplicated, other value, name lower-cased",
                  "name _-mangled", "_-mangled copy added, other value", "named in Connection",
                  "named in Connection with keep-alive", "named in Connection with close")

# Headers whose duplicates Go's HTTP server refuses, or merges, before the
# proxy sees them; and hop-by-hop headers a Connection header may name.
GO_FRAMED = frozenset({"host", "content-length", "expect"})
CONNECTION_MAY_NAME = frozenset({"connection", "keep-alive", "expect"})


def resign(captured: Captured, headers: Headers) -> Headers:
    """``headers`` (without the captured Authorization) signed again over
    every header, as sent, with the captured date and payload hash: what a
    client holding the key would send."""
    base = captured.request
    unsigned = [(n, v) for n, v in headers if n.lower() != "authorization"]
    amz_date = base.header("X-Amz-Date")[0]
    payload = base.header("X-Amz-Content-Sha256")[0]
    parts = sign_raw(base.method, base.target, unsigned, payload, amz_date, access_key=CLIENT_ACCESS_KEY,
                     secret_key=CLIENT_SECRET_KEY)
    return unsigned + [("Authorization", authorization(*parts))]


def resigned_variants(captured: Captured) -> Iterator[Variant]:
    """The header mutations of RESIGNED_KINDS, each signed by the client."""
    base = captured.request
    for index, (name, value) in enumerate(base.headers):
        lower = name.lower()
        if lower == "authorization":
            continue
        for mutation, headers in header_mutations(name, value, index, base.headers):
            if mutation not in RESIGNED_KINDS:
                continue
            if mutation.startswith("duplicated") and lower in GO_FRAMED:
                continue  # Go's own business (test_abuse_* cover it)
            if mutation.startswith("named in Connection") and lower in CONNECTION_MAY_NAME:
                continue
            yield Variant(f"header {name}: {mutation}, signed", base.method, base.target,
                          resign(captured, headers), base.body, lower)


def test_signed_duplicates_underscores_and_connection_names_are_refused(
        captured_requests: List[Captured], start_proxy: Callable[..., ProxyServer], backend: Any,
        recorder: RecordingBackend) -> None:
    """An attacker with a valid key signs the mutation too: a duplicated
    header (e.g. a second X-Amz-Copy-Source), a '_' name (X_Amz_Copy_Source)
    or a Connection header naming a forwarded header (X-Amz-Copy-Source,
    Range, User-Agent, ...). Each is refused with a 4xx S3 error (400 by
    the rule, or whatever check comes first: a missing X-Amz-Date, an
    unknown copy-source bucket; never SignatureDoesNotMatch, which would
    mean the test signed it wrong, as the control shows it does not) and
    nothing reaches the backend. Presigned requests are left out: their
    headers other than Host are not signed."""
    proxy = _proxy_to(start_proxy, backend, recorder)
    offenders: List[str] = []
    total = 0
    for captured in captured_requests:
        if captured.presigned:
            continue
        base = captured.request
        control = send(proxy, Variant("re-signed", base.method, base.target, resign(captured, base.headers),
                                      base.body))
        assert control.status in (200, 206) and len(recorder.take()) == 1, \
            (captured.name, "the re-signed request itself", reply_summary(control))
        for variant in resigned_variants(captured):
            total += 1
            reply = send(proxy, variant)
            received = recorder.take()
            where = f"{captured.name} | {variant.mutation} | proxy {reply_summary(reply)}"
            if received:
                seen = Seen.of(received[0])
                touched = sorted({(n, v[:40]) for n, v in seen.headers
                                  if n.replace("_", "-") == variant.touched or n == "connection"})
                offenders.append(f"{where} | forwarded; backend saw {touched or 'none of it'}")
            elif not is_refusal(reply):
                offenders.append(f"{where} | nothing forwarded, but not a 4xx S3 error")
            elif b"<Code>SignatureDoesNotMatch</Code>" in reply.body:
                offenders.append(f"{where} | SignatureDoesNotMatch: the test signed it wrong")
    per_kind = Counter(_kind(o.split(" | ")[1]) for o in offenders)
    assert not offenders, (
        f"{len(offenders)} of {total} signed mutations were not refused.\nBy mutation: {dict(per_kind.most_common())}\n"
        f"the first {SHOW} (OSP_MUTATIONS_SHOW=n shows more):\n  " + "\n  ".join(offenders[:SHOW]))


# --------------------------------------------------------------------------
# tampered bodies and a backend that checks no payload hash

API_KEY = "mutations-api-key"


def test_tampered_bodies_never_reach_a_bearer_backend_whole(
        captured_requests: List[Captured], start_proxy: Callable[..., ProxyServer],
        recorder: RecordingBackend) -> None:
    """A bearer (IBM API key) backend checks no payload hash, so the proxy
    checks the signed one itself: a signed request whose body was changed
    (a byte flipped, emptied, cut, lengthened, or added where none was
    signed) is refused, and the backend never receives it whole (the
    recording backend records only whole requests)."""
    with IamServer({API_KEY}) as iam:
        entry = {"host": "127.0.0.1", "port": recorder.port, "scheme": "http", "addressing_style": "path",
                 "apikey": API_KEY}
        proxy = start_proxy(cos_map={BUCKET: entry, SOURCE: entry}, iam_url=iam.url)
        offenders: List[str] = []
        total = 0
        for captured in captured_requests:
            if captured.presigned:
                continue  # a presigned body is not signed
            base = captured.request
            reply = send(proxy, Variant("none", base.method, base.target, base.headers, base.body))
            got = recorder.take()
            assert reply.status in (200, 206) and len(got) == 1 and got[0].body == base.body, \
                (captured.name, reply_summary(reply), [(r.method, r.target, r.body[:40]) for r in got])
            assert got[0].header("Authorization")[0].startswith("Bearer "), got[0].headers
            for mutation, body in body_mutations(base.body):
                total += 1
                reply = send(proxy, Variant(mutation, base.method, base.target, with_body(base.headers, body), body))
                received = recorder.take()
                where = f"{captured.name} | {mutation} | proxy {reply_summary(reply)}"
                if received:
                    offenders.append(f"{where} | the backend got it whole: {received[0].body[:40]!r}")
                elif not is_refusal(reply):
                    offenders.append(f"{where} | nothing forwarded, but not a 4xx S3 error")
    assert not offenders, f"{len(offenders)} of {total} tampered bodies:\n  " + "\n  ".join(offenders[:SHOW])
