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
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest

from clients import (
    MIB,
    assert_stored_exactly,
    https_endpoint,
    isolated_env,
    part_count,
    run,
    sha256,
    tls_cert,  # noqa: F401  (fixture)
    write_random,
)
from helpers import CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY, object_exists, parse_s3_error, stored_keys

JS_DIR = Path(__file__).resolve().parent / "js"
SCRIPT = JS_DIR / "s3client.mjs"
PINNED_VERSION = json.loads((JS_DIR / "package.json").read_text())["dependencies"]["@aws-sdk/client-s3"]

# Headers the SDK leaves out of SignedHeaders, and what the proxy does with
# them (docs/security.md): user-agent and content-length are on the
# allowlist; expect and transfer-encoding belong to the connection.
UNSIGNED_BY_THE_SDK = {"user-agent", "content-length", "expect", "transfer-encoding"}


def node_binary() -> str:
    """Node 20 or newer; fails (never skips) when it is missing."""
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
    env.pop("NODE_OPTIONS", None)
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
def endpoint(
    transport: str, start_proxy: Callable[..., Any], bucket: str, tls_cert: Tuple[str, str]  # noqa: F811
) -> Tuple[str, Optional[str]]:
    """(endpoint URL, CA bundle or None) of a proxy for ``bucket``."""
    cert, key = tls_cert
    server = start_proxy(bucket, https_port=0, tls_cert_path=cert, tls_key_path=key)
    if transport == "https":
        return https_endpoint(server), cert
    return server.endpoint_url, None


# --------------------------------------------------------------------------
# tests


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


def test_copy_keys_with_spaces_plus_and_utf8(tmp_path: Path, endpoint: Tuple[str, Optional[str]], bucket: str, direct: Any) -> None:
    url, ca = endpoint
    data = write_random(tmp_path / "src.bin", 33_333)
    out = run_js(tmp_path, "copy", endpoint=url, ca=ca, bucket=bucket, pairs=COPY_PAIRS)
    check_unsigned(out)
    assert out["copied"] == {dst: sha256(data) for _, dst in COPY_PAIRS}
    for src, dst in COPY_PAIRS:
        assert_stored_exactly(direct, bucket, src, data)
        assert_stored_exactly(direct, bucket, dst, data)
    assert sorted(stored_keys(direct, bucket)) == sorted(k for pair in COPY_PAIRS for k in pair)


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


def test_presigned_get_and_put_with_fetch(tmp_path: Path, endpoint: Tuple[str, Optional[str]], bucket: str, direct: Any) -> None:
    url, ca = endpoint
    data = b"presigned get \x00\xff" * 1000
    direct.put_object(Bucket=bucket, Key="get.bin", Body=data)
    uploaded = write_random(tmp_path / "put.bin", 77_777)
    out = run_js(tmp_path, "presign", endpoint=url, ca=ca, bucket=bucket)
    for presigned in (out["get_url"], out["put_url"]):
        assert presigned.startswith(url + "/" + bucket + "/"), presigned
        assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in presigned and "X-Amz-Signature=" in presigned, presigned
    assert out["get_status"] == 200 and out["get_sha256"] == sha256(data), out
    assert out["ranged_status"] == 206 and out["ranged_sha256"] == sha256(data[10:20]), out
    assert out["put_status"] == 200, out
    assert_stored_exactly(direct, bucket, "put.bin", uploaded)


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
