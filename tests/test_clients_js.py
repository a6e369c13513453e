"""The AWS SDK for JavaScript v3 (@aws-sdk/client-s3, lib-storage and
s3-request-presigner, pinned in tests/js/package.json) through the proxy,
with the SDK's defaults: CRC32 request checksums "when supported" (a header
for buffers, an aws-chunked `STREAMING-UNSIGNED-PAYLOAD-TRAILER` body with an
`x-amz-checksum-crc32` trailer for streams), response checksum validation,
lib-storage's 5 MiB parts with 4 in flight, presigned URLs fetched with
Node's fetch. Over plain HTTP and over the proxy's HTTPS listener.

Each test runs one scenario of tests/js/s3client.mjs in a Node child process
and checks what it reports and what versitygw stored (by sha256, with the
``direct`` client). `make js-deps` installs the packages (`npm ci`); these
tests fail, never skip, when Node or the packages are missing.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple
from urllib.parse import unquote

import pytest

from clients import (
    MIB,
    assert_stored_exactly,
    https_endpoint,
    isolated_env,
    part_count,
    run,
    sha256,
    write_random,
)
from helpers import (
    BACKEND_ACCESS_KEY,
    BACKEND_SECRET_KEY,
    CLIENT_ACCESS_KEY,
    CLIENT_SECRET_KEY,
    object_exists,
    parse_s3_error,
    stored_body,
    stored_keys,
)
from s3wire import RecordedRequest, RecordingBackend
from two_backends import ON_BOTH, ON_BOTH_HTTP, direct, start_proxy, store  # noqa: F401  (fixtures)

JS_DIR = Path(__file__).resolve().parent / "js"
SCRIPT = JS_DIR / "s3client.mjs"
PINNED_VERSION = json.loads((JS_DIR / "package.json").read_text())["dependencies"]["@aws-sdk/client-s3"]

# Headers the SDK leaves out of SignedHeaders, and what the proxy does with
# them (docs/security.md): user-agent and content-length are on the
# allowlist; expect and transfer-encoding belong to the connection.
UNSIGNED_BY_THE_SDK = {"user-agent", "content-length", "expect", "transfer-encoding"}


def node_binary() -> str:
    """The node binary; fails (never skips) when there is none. (Its version
    is `make js-deps`'s concern: the SDK wants Node 20 or newer.)"""
    for candidate in ("/usr/bin/node", "/usr/local/bin/node"):
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("node")
    if found is None:
        pytest.fail("Node.js is not installed (no `node`; `make js-deps` needs Node 20 or newer)")
    return found


def require_packages() -> None:
    installed = JS_DIR / "node_modules" / "@aws-sdk" / "client-s3" / "package.json"
    if not installed.is_file():
        pytest.fail(f"the AWS SDK for JavaScript is not installed ({installed} is missing; run `make js-deps`)")
    version = json.loads(installed.read_text())["version"]
    assert version == PINNED_VERSION, f"installed @aws-sdk/client-s3 {version}, package.json pins {PINNED_VERSION}: run `make js-deps`"


def run_js(tmp_path: Path, scenario: str, *, ca: Optional[str] = None, **params: Any) -> Dict[str, Any]:
    """Runs ``scenario`` of s3client.mjs in ``tmp_path`` and returns what it
    reported; fails with the child's output when it fails."""
    node = node_binary()
    require_packages()
    params.setdefault("access_key", CLIENT_ACCESS_KEY)
    params.setdefault("secret_key", CLIENT_SECRET_KEY)
    extra = {"OSP_PARAMS": json.dumps(params)}
    if ca:
        extra["NODE_EXTRA_CA_CERTS"] = ca
    env = isolated_env(tmp_path / "home", extra)
    for inherited in ("NODE_OPTIONS", "NODE_PATH"):
        env.pop(inherited, None)
    result = run([node, str(SCRIPT), scenario], env, cwd=tmp_path, timeout=180)
    lines = [line for line in result.stdout.splitlines() if line.startswith("OSP-RESULT ")]
    assert result.returncode == 0 and lines, f"the JavaScript SDK scenario {scenario} failed:\n" + result.describe()
    out: Dict[str, Any] = json.loads(lines[-1][len("OSP-RESULT "):])
    assert out["versions"]["client-s3"] == PINNED_VERSION, out["versions"]
    return out


def sent(out: Dict[str, Any], op: str) -> List[Dict[str, Any]]:
    return [s for s in out["sent"] if s["op"] == op]


def check_unsigned(out: Dict[str, Any]) -> None:
    """Every header the SDK left unsigned is one the proxy's forwarding rule
    passes (allowlist) or drops as the connection's: nothing that changes
    what the backend does goes unsigned."""
    for s in out["sent"]:
        assert set(s["unsigned"]) <= UNSIGNED_BY_THE_SDK, s


# --------------------------------------------------------------------------
# fixtures: each test over plain HTTP and over HTTPS


@pytest.fixture(params=["http", "https"])
def transport(request: Any) -> str:
    return str(request.param)


@pytest.fixture
def endpoint_for(
    transport: str, start_proxy: Callable[..., Any], bucket: str, tls_cert: Tuple[str, str]  # noqa: F811
) -> Callable[..., Tuple[str, Optional[str]]]:
    """``endpoint_for(**options)``: (endpoint URL, CA bundle or None) of a
    proxy for ``bucket`` started with ``options``, over the test's
    transport."""
    cert, key = tls_cert

    def start(**options: Any) -> Tuple[str, Optional[str]]:
        server = start_proxy(bucket, https_port=0, tls_cert_path=cert, tls_key_path=key, **options)
        if transport == "https":
            return https_endpoint(server), cert
        return str(server.endpoint_url), None

    return start


@pytest.fixture
def endpoint(endpoint_for: Callable[..., Tuple[str, Optional[str]]]) -> Tuple[str, Optional[str]]:
    """(endpoint URL, CA bundle or None) of a proxy for ``bucket``."""
    return endpoint_for()


# --------------------------------------------------------------------------
# tests


@ON_BOTH_HTTP
def test_put_get_ranged_head_list_paged(tmp_path: Path, endpoint: Tuple[str, Optional[str]], bucket: str, direct: Any) -> None:
    url, ca = endpoint
    data = write_random(tmp_path / "small.bin", 70_000)
    out = run_js(tmp_path, "basic", endpoint=url, ca=ca, bucket=bucket)
    check_unsigned(out)
    (put,) = [s for s in sent(out, "PutObjectCommand") if s["path"].endswith("/dir/small.bin")]
    assert put["headers"].get("x-amz-checksum-crc32"), put  # the SDK's default checksum
    assert out["put_crc32"] == put["headers"]["x-amz-checksum-crc32"], out
    assert out["get_crc32"] == out["put_crc32"], out  # validated by the SDK on the way back
    assert (out["whole_len"], out["whole_sha256"]) == (len(data), sha256(data))
    assert (out["ranged_len"], out["ranged_sha256"]) == (2000, sha256(data[1000:3000]))
    assert out["content_range"] == f"bytes 1000-2999/{len(data)}"
    assert out["head_len"] == len(data)
    assert out["metadata"] == {"origin": "js-sdk-v3", "two-words": "a  b"}
    assert out["pages"] == [
        ["dir/page-0.txt", "dir/page-1.txt"],
        ["dir/page-2.txt", "dir/page-3.txt"],
        ["dir/small.bin"],
    ]
    assert_stored_exactly(direct, bucket, "dir/small.bin", data)
    assert direct.head_object(Bucket=bucket, Key="dir/small.bin")["Metadata"] == {"origin": "js-sdk-v3", "two-words": "a  b"}


@ON_BOTH_HTTP
def test_put_file_stream(tmp_path: Path, endpoint: Tuple[str, Optional[str]], bucket: str, direct: Any) -> None:
    """A PutObject of a file stream goes as aws-chunked with a CRC32
    trailer (the SDK's default for streams)."""
    url, ca = endpoint
    data = write_random(tmp_path / "streamed.bin", 3 * MIB + 4321)
    out = run_js(tmp_path, "put_file_stream", endpoint=url, ca=ca, bucket=bucket)
    check_unsigned(out)
    (put,) = sent(out, "PutObjectCommand")
    assert put["headers"]["x-amz-content-sha256"] == "STREAMING-UNSIGNED-PAYLOAD-TRAILER", put
    assert put["headers"]["x-amz-trailer"] == "x-amz-checksum-crc32", put
    assert put["headers"]["x-amz-decoded-content-length"] == str(len(data)), put
    assert out["put_crc32"], out
    assert_stored_exactly(direct, bucket, "streamed.bin", data)


@ON_BOTH_HTTP
def test_upload_streams_of_unknown_length(tmp_path: Path, endpoint: Tuple[str, Optional[str]], bucket: str, direct: Any) -> None:
    """lib-storage's Upload with its defaults: a stream under 5 MiB is one
    PutObject, a 17 MiB one four parts sent concurrently."""
    url, ca = endpoint
    small = write_random(tmp_path / "small-stream.bin", 1 * MIB + 7)
    big = write_random(tmp_path / "big-stream.bin", 17 * MIB + 12345)
    out = run_js(tmp_path, "upload_streams", endpoint=url, ca=ca, bucket=bucket)
    check_unsigned(out)
    parts = sent(out, "UploadPartCommand")
    assert len(parts) == 4, [s["query"] for s in parts]
    for part in parts:
        assert part["headers"].get("x-amz-checksum-crc32") or part["headers"].get("x-amz-trailer") == "x-amz-checksum-crc32", part
    assert out["max_in_flight_parts"] > 1, out["max_in_flight_parts"]
    assert (out["back_len"], out["back_sha256"]) == (len(big), sha256(big))
    assert_stored_exactly(direct, bucket, "small-stream.bin", small)
    assert_stored_exactly(direct, bucket, "big-stream.bin", big)
    assert part_count(direct, bucket, "small-stream.bin") == 1
    assert part_count(direct, bucket, "big-stream.bin") == 4


COPY_PAIRS = [
    ("with space/src file.bin", "with space/copy file.bin"),
    ("plus+sign/a+b.bin", "plus+sign/a+b copy.bin"),
    ("utf8/Grüße/日本語 ☃.bin", "utf8/копия/日本語 ☃ copy.bin"),
]

# Sources named in the header without encoding: '+' is a plus, as on S3.
RAW_COPY_PAIRS = [
    ("with space/src file.bin", "raw/with space copy.bin"),
    ("plus+sign/a+b.bin", "raw/a+b copy.bin"),
]


@ON_BOTH_HTTP
def test_copy_keys_with_spaces_plus_and_utf8(tmp_path: Path, endpoint: Tuple[str, Optional[str]], bucket: str, direct: Any) -> None:
    url, ca = endpoint
    data = write_random(tmp_path / "src.bin", 33_333)
    out = run_js(tmp_path, "copy", endpoint=url, ca=ca, bucket=bucket, pairs=COPY_PAIRS, raw_pairs=RAW_COPY_PAIRS)
    check_unsigned(out)
    assert out["copied"] == {dst: sha256(data) for _, dst in COPY_PAIRS + RAW_COPY_PAIRS}
    for src, dst in COPY_PAIRS + RAW_COPY_PAIRS:
        assert_stored_exactly(direct, bucket, src, data)
        assert_stored_exactly(direct, bucket, dst, data)
    assert sorted(stored_keys(direct, bucket)) == sorted({k for pair in COPY_PAIRS + RAW_COPY_PAIRS for k in pair})


# (No empty segments such as "a/b//c": versitygw's posix backend stores
# that as "a/b/c", directly as through the proxy.)
ODD_KEYS = [
    "sp ace/and  two",
    "plus+and%2Bencoded",
    "sub-delims!$&'()*,;=",
    "gen-delims:@[]#?",
    "tilde~under_score.dot-dash",
    "percent%25%%20",
    "utf8/Grüße/日本語/☃/🙂",
    "back\\slash",
    "trailing-dot.",
    "quote\"and<angle>",
    "caret^back`tick{brace}|pipe",
]


def test_odd_keys_round_trip(tmp_path: Path, endpoint: Tuple[str, Optional[str]], bucket: str, direct: Any) -> None:
    """Keys with the characters SigV4 and the SDK encode differently (sub-
    and gen-delims, '%', '+', spaces, '~', UTF-8 up to 4 bytes, empty
    segments): put, get, head, copy, a listing paged one key at a time and
    DeleteObjects, each addressing the key versitygw stores."""
    url, ca = endpoint
    out = run_js(tmp_path, "odd_keys", endpoint=url, ca=ca, bucket=bucket, keys=ODD_KEYS)
    check_unsigned(out)
    for key in ODD_KEYS:
        assert out["results"][key] == {"same": True, "head_len": len(f"body of {key}".encode())}, key
    assert out["listed"] == sorted(ODD_KEYS + [f"copies/{k}" for k in ODD_KEYS], key=lambda k: k.encode()), out["listed"]
    assert out["deleted"] == sorted(ODD_KEYS) and out["errors"] == [], out
    assert sorted(stored_keys(direct, bucket)) == sorted(f"copies/{k}" for k in ODD_KEYS)
    for key in ODD_KEYS:
        assert_stored_exactly(direct, bucket, f"copies/{key}", f"body of {key}".encode())


def test_upload_whose_stream_fails_is_aborted(tmp_path: Path, endpoint: Tuple[str, Optional[str]], bucket: str, direct: Any) -> None:
    """lib-storage aborts the multipart upload when its source stream
    fails: AbortMultipartUpload goes through, nothing is stored and no
    upload is left open at versitygw."""
    url, ca = endpoint
    out = run_js(tmp_path, "upload_fails_midway", endpoint=url, ca=ca, bucket=bucket)
    assert out["error"] == "the source stream broke", out
    assert [s["op"] for s in out["sent"]][:1] == ["CreateMultipartUploadCommand"], out["sent"]
    assert "AbortMultipartUploadCommand" in [s["op"] for s in out["sent"]], [s["op"] for s in out["sent"]]
    assert not object_exists(direct, bucket, "broken.bin")
    assert direct.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


@ON_BOTH_HTTP
def test_delete_objects(tmp_path: Path, endpoint: Tuple[str, Optional[str]], bucket: str, direct: Any) -> None:
    url, ca = endpoint
    keys = ["a.txt", "with space.txt", "plus+sign.txt", "utf8/é☃.txt"]
    for key in keys + ["kept.txt"]:
        direct.put_object(Bucket=bucket, Key=key, Body=key.encode())
    out = run_js(tmp_path, "delete_objects", endpoint=url, ca=ca, bucket=bucket, keys=keys + ["never-existed.txt"])
    check_unsigned(out)
    (request,) = sent(out, "DeleteObjectsCommand")
    assert request["headers"].get("x-amz-checksum-crc32"), request  # the SDK's checksum of the body
    assert out["deleted"] == sorted(keys + ["never-existed.txt"]), out
    assert out["errors"] == []
    assert stored_keys(direct, bucket) == ["kept.txt"]


@ON_BOTH_HTTP
def test_presigned_get_and_put_with_fetch(
    tmp_path: Path, endpoint: Tuple[str, Optional[str]], store: str, bucket: str, direct: Any
) -> None:
    """Presigned GET (whole and ranged) and PUT URLs used with Node's fetch.
    The SDK's default PUT URL signs x-amz-checksum-crc32=AAAAAA== (the CRC32
    of the empty body it had when presigning, aws-sdk-js-v3 since 3.729):
    the proxy forwards that signed checksum, and SeaweedFS, like S3, refuses
    the real body with 400 BadDigest and stores nothing; versitygw ignores a
    checksum in the query and stores it. With requestChecksumCalculation
    "WHEN_REQUIRED" (the SDK's documented fix) the URL has no checksum and
    both store the body."""
    url, ca = endpoint
    data = b"presigned get \x00\xff" * 1000
    direct.put_object(Bucket=bucket, Key="get.bin", Body=data)
    uploaded = write_random(tmp_path / "put.bin", 77_777)
    out = run_js(tmp_path, "presign", endpoint=url, ca=ca, bucket=bucket)
    for presigned in (out["get_url"], out["put_url"], out["put_when_required_url"]):
        assert presigned.startswith(url + "/" + bucket + "/"), presigned
        assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in presigned and "X-Amz-Signature=" in presigned, presigned
    assert out["get_status"] == 200 and out["get_sha256"] == sha256(data), out
    assert out["ranged_status"] == 206 and out["ranged_sha256"] == sha256(data[10:20]), out
    assert "x-amz-checksum-crc32=AAAAAA%3D%3D" in out["put_url"], out["put_url"]
    if store == "seaweedfs":
        assert out["put_status"] == 400, (out["put_status"], out["put_body"])
        assert parse_s3_error(out["put_body"].encode())["Code"] == "BadDigest", out["put_body"]
        assert not object_exists(direct, bucket, "put.bin")
    else:
        assert out["put_status"] == 200, (out["put_status"], out["put_body"])
        assert_stored_exactly(direct, bucket, "put.bin", uploaded)
    assert "x-amz-checksum" not in out["put_when_required_url"], out["put_when_required_url"]
    assert out["put_when_required_status"] == 200, out["put_when_required_body"]
    assert_stored_exactly(direct, bucket, "put-when-required.bin", uploaded)


@ON_BOTH_HTTP
def test_wrong_secret_is_refused_with_403(tmp_path: Path, endpoint: Tuple[str, Optional[str]], bucket: str, direct: Any) -> None:
    url, ca = endpoint
    write_random(tmp_path / "small.bin", 10_000)
    write_random(tmp_path / "big.bin", 6 * MIB)
    direct.put_object(Bucket=bucket, Key="exists.bin", Body=b"secret data")
    out = run_js(tmp_path, "wrong_secret", endpoint=url, ca=ca, bucket=bucket)
    errors = out["errors"]
    for op in ("put", "put_stream", "upload", "get", "list"):
        assert (errors[op]["status"], errors[op]["code"]) == (403, "SignatureDoesNotMatch"), errors
    assert errors["presigned_put"]["status"] == 403, errors
    assert parse_s3_error(errors["presigned_put"]["body"].encode())["Code"] == "SignatureDoesNotMatch"
    assert not object_exists(direct, bucket, "forged.bin")
    assert not object_exists(direct, bucket, "forged-presigned.bin")
    assert stored_keys(direct, bucket) == ["exists.bin"]


def test_key_scoped_validator_grants_exactly_its_keys(
    tmp_path: Path, endpoint_for: Callable[..., Tuple[str, Optional[str]]], bucket: str, direct: Any
) -> None:
    """Behind a validator that grants only keys under mine/ (DeleteObjects
    asked key by key), the SDK's requests get exactly that: puts, multipart
    uploads, reads, copies (the source is asked too), listings and presigned
    URLs outside mine/ are refused with 403 AccessDenied and store nothing;
    a DeleteObjects naming both deletes only mine/ keys, although the proxy
    then sends the backend another body than the one whose CRC32 the SDK
    signed (it sends that body's own checksum)."""

    def validator(token: str, b: str, method: str, key: str, operation: str) -> bool:
        if operation == "DeleteObjects":
            return True
        return operation != "Unknown" and key.startswith("mine/")

    url, ca = endpoint_for(validator=validator, entry={"ttl": 0})
    direct.put_object(Bucket=bucket, Key="theirs/secret", Body=b"not yours")
    write_random(tmp_path / "big.bin", 6 * MIB)
    out = run_js(tmp_path, "scoped", endpoint=url, ca=ca, bucket=bucket)
    outcome, presigned = out["outcome"], out["presigned"]
    for name in ("put_mine", "upload_mine", "list_mine"):
        assert "ok" in outcome[name], (name, outcome[name])
    assert outcome["list_mine"]["ok"] == ["mine/a", "mine/big"]
    for name in ("put_theirs", "upload_theirs", "get_theirs", "copy_theirs_to_mine", "copy_mine_to_theirs", "list_all"):
        assert (outcome[name].get("status"), outcome[name].get("code")) == (403, "AccessDenied"), (name, outcome[name])
    assert presigned["get_mine"] == {"status": 200, "body": "mine"}
    for name in ("get_theirs", "put_theirs"):
        assert presigned[name]["status"] == 403, presigned
        assert parse_s3_error(presigned[name]["body"].encode())["Code"] == "AccessDenied"
    assert outcome["delete_objects"]["ok"] == {
        "deleted": ["mine/a", "mine/big"],
        "errors": [["theirs/secret", "AccessDenied"]],
    }, outcome["delete_objects"]
    assert stored_keys(direct, bucket) == ["theirs/secret"]
    assert direct.get_object(Bucket=bucket, Key="theirs/secret")["Body"].read() == b"not yours"
    assert direct.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_answers_and_options_as_straight_to_versitygw(
    tmp_path: Path, endpoint: Tuple[str, Optional[str]], backend: Any, bucket: str,
    make_bucket: Callable[..., str], new_bucket_name: Callable[..., str], direct: Any,
) -> None:
    """The same scenario through the proxy and straight to versitygw (with
    its root keys) sees the same outcomes: 304, 412, 404 (GetObject,
    HeadObject, a bucket the proxy does not serve), response header
    overrides, a delimiter listing, PutObject with CRC32C, SHA1, SHA256 and
    CRC64NVME as header and as trailer, tagging, a conditional PutObject,
    DeleteObject; and the stored objects are the same."""
    url, ca = endpoint
    straight = make_bucket("js-direct")
    missing = new_bucket_name("js-missing")
    data = bytes(range(256)) * 1000
    for side in ("p", "d"):
        (tmp_path / side).mkdir(exist_ok=True)
        (tmp_path / side / "edge.bin").write_bytes(data)
    through = run_js(tmp_path / "p", "edge", endpoint=url, ca=ca, bucket=bucket, missing_bucket=missing)["outcome"]
    direct_out = run_js(tmp_path / "d", "edge", endpoint=backend.endpoint_url, bucket=straight, missing_bucket=missing,
                        access_key=BACKEND_ACCESS_KEY, secret_key=BACKEND_SECRET_KEY)["outcome"]
    # A bucket the proxy does not serve is its own NoSuchBucket, as versitygw's.
    assert through == direct_out
    assert through["get_if_none_match"]["status"] == 304, through  # no body: the SDK names it "Unknown"
    assert through["get_if_match_other"] == {"status": 412, "code": "PreconditionFailed"}, through
    for algorithm in ("CRC32C", "SHA1", "SHA256", "CRC64NVME"):
        for how in ("buffer", "stream"):
            assert through[f"put_{algorithm}_{how}"]["ok"], (algorithm, how, through)
    assert through["get_missing"] == {"status": 404, "code": "NoSuchKey"}, through
    assert through["get_missing_bucket"] == {"status": 404, "code": "NoSuchBucket"}, through
    assert through["list_delimiter"]["ok"] == {"keys": ["e/one.txt", "e/top"], "prefixes": ["e/d1/", "e/d2/"]}, through
    for key in ("e/one.txt", "e/d1/a", "e/sum-SHA256-stream", "e/sum-CRC64NVME-stream"):
        assert stored_body(direct, bucket, key) == stored_body(direct, straight, key), key
    assert stored_body(direct, bucket, "e/sum-CRC32C-stream") == data


# --------------------------------------------------------------------------
# what reaches the backend

# What the backend gets that the proxy sets itself (docs/security.md): its
# own signature and date, the payload hash and framing of the body it sends,
# Host, and Go's transport's Accept-Encoding.
SET_BY_THE_PROXY = {
    "authorization", "x-amz-date", "x-amz-content-sha256", "host", "content-length",
    "x-amz-decoded-content-length", "x-amz-trailer", "content-encoding", "transfer-encoding", "accept-encoding",
}
# Signed by the SDK but never forwarded: the client's authentication and
# connection.
DROPPED_EVEN_SIGNED = {"authorization", "x-amz-date", "x-amz-content-sha256", "expect", "transfer-encoding", "host"}
ALLOWED_UNSIGNED = {
    "content-length", "content-type", "cache-control", "content-md5", "user-agent", "range",
    "if-match", "if-none-match", "if-modified-since", "if-unmodified-since",
}


@pytest.fixture
def recorder() -> Iterator[RecordingBackend]:
    rec = RecordingBackend()
    yield rec
    rec.close()


def received(request: RecordedRequest) -> Dict[str, str]:
    headers: Dict[str, str] = {}
    for name, value in request.headers:
        assert name.lower() not in headers, f"the backend got {name} twice: {request.headers}"
        headers[name.lower()] = value
    return headers


def check_forwarded_as_signed(sdk: Dict[str, Any], got: RecordedRequest) -> None:
    """The backend got every header the SDK signed, with the SDK's value
    (but the client's own authentication and framing), and nothing else but
    allowlisted headers as the SDK sent them and what the proxy sets."""
    at_backend = received(got)
    signed = {n for n in sdk["headers"] if n not in sdk["unsigned"]}
    for name in signed - DROPPED_EVEN_SIGNED:
        if name == "content-length" and "x-amz-decoded-content-length" in sdk["headers"]:
            continue  # the aws-chunked framing is the proxy's to choose
        if name == "content-encoding" and sdk["headers"][name] == "aws-chunked":
            continue
        assert at_backend.get(name) == sdk["headers"][name], (sdk["op"], name, sdk["headers"][name], at_backend.get(name))
    for name, value in at_backend.items():
        if name in SET_BY_THE_PROXY or name in signed:
            continue
        assert name in ALLOWED_UNSIGNED and sdk["headers"].get(name) == value, (sdk["op"], name, value, sdk["headers"])


def test_the_backend_gets_what_the_sdk_signed_and_nothing_else(
    tmp_path: Path, start_proxy: Callable[..., Any], backend: Any, recorder: RecordingBackend
) -> None:
    """Behind the proxy a recording backend: for each request of the SDK,
    every header it signed arrives unchanged (metadata, tagging, checksums,
    Content-Disposition, the SDK's invocation id) and no header it left
    unsigned does, but User-Agent, Content-Length and Cache-Control; the
    presigned PUT's unsigned Content-Type (fetch sets one) arrives as sent,
    and its signed `x-amz-checksum-crc32` / `x-amz-sdk-checksum-algorithm`
    query parameters arrive as the SDK signed them."""
    server = start_proxy(cos_map={"bkt": backend.entry(port=recorder.port)})
    write_random(tmp_path / "small.bin", 20_000)
    out = run_js(tmp_path, "wire", endpoint=server.endpoint_url, bucket="bkt")
    assert set(out["answers"]) == {"put", "put_stream", "get_range", "delete_objects", "presigned_put"}, out["answers"]
    assert out["answers"]["presigned_put"] == 200, out["answers"]
    got = recorder.requests
    assert len(got) == len(out["sent"]) + 1, [(r.method, r.target) for r in got]
    for sdk, request in zip(out["sent"], got):
        # "/bkt/" and "/bkt" both name the bucket
        assert (request.method, unquote(request.path).rstrip("/")) == (sdk["method"], unquote(sdk["path"]).rstrip("/")), (sdk, request.target)
        check_forwarded_as_signed(sdk, request)
    put = received(got[0])
    assert put["x-amz-meta-origin"] == "js-sdk-v3" and put["x-amz-tagging"] == "team=a&tier=b", put
    assert put["content-disposition"] == 'attachment; filename="x.bin"' and put["content-type"] == "application/x-osp", put
    assert put["x-amz-checksum-crc32"], put
    # The SDK never signs Cache-Control: it passes as an allowlisted header.
    assert "cache-control" in out["sent"][0]["unsigned"] and put.get("cache-control"), (out["sent"][0], put)
    presigned = received(got[-1])
    assert presigned["content-type"] == "text/plain", presigned
    query = got[-1].query
    assert "x-amz-checksum-crc32=AAAAAA%3D%3D" in query and "x-amz-sdk-checksum-algorithm=CRC32" in query, query
    assert "X-Amz-Signature" not in query and "X-Amz-Credential" not in query, query


def test_content_headers_stored_as_straight_to_versitygw(
    tmp_path: Path, start_proxy: Callable[..., Any], backend: Any, make_bucket: Callable[..., str], direct: Any
) -> None:
    """Every content header the SDK sets is stored as straight to versitygw.
    Its signer (@smithy/signature-v4) never signs Cache-Control (it is on
    its ALWAYS_UNSIGNABLE_HEADERS), which is why Cache-Control is on the
    proxy's allowlist of unsigned headers (docs/security.md); without it the
    header was dropped and objects were stored without it, silently."""
    through, straight = make_bucket("js-proxy"), make_bucket("js-direct")
    server = start_proxy(through)
    via_proxy = run_js(tmp_path / "p", "content_headers", endpoint=server.endpoint_url, bucket=through)
    run_js(tmp_path / "d", "content_headers", endpoint=backend.endpoint_url, bucket=straight,
           access_key=BACKEND_ACCESS_KEY, secret_key=BACKEND_SECRET_KEY)
    (put,) = via_proxy["sent"]
    assert put["unsigned"] == ["cache-control", "user-agent"], put

    def stored(bucket: str) -> Dict[str, Any]:
        head = direct.head_object(Bucket=bucket, Key="content-headers.txt")
        fields = ("ContentType", "ContentDisposition", "ContentLanguage", "ContentEncoding", "CacheControl")
        found = {f: head.get(f) for f in fields}
        found["Expires"] = head["ResponseMetadata"]["HTTPHeaders"].get("expires")
        return found

    expected = {
        "ContentType": "text/plain; charset=utf-8",
        "ContentDisposition": 'inline; filename="h.txt"',
        "ContentLanguage": "de-CH",
        "ContentEncoding": "identity",
        "CacheControl": "public, max-age=3600",
        "Expires": "Thu, 01 Jan 2099 00:00:00 GMT",
    }
    assert stored(straight) == expected
    assert stored(through) == expected
