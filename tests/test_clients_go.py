"""The Go SDKs through the proxy, each with its default settings:
aws-sdk-go-v2 (service/s3, its presigner, feature/s3/transfermanager and
the deprecated feature/s3/manager) and minio-go v7.

Each runs as a small program (tests/goclients, a Go module of its own,
built into build/bin by `make goclients`, which `make test-python` runs)
that performs one operation and prints one ``OSP-RESULT {json}`` line: the
operation's result, the S3 error if any, and the headers of every request
the SDK sent (so the tests can check the framing the SDK chose by default:
minio-go signs each chunk, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, over plain
HTTP; aws-sdk-go-v2 adds CRC32 checksums). What versitygw stores is
compared by hash with what the client sent.

The programs are required: a missing binary fails the test (it never
skips), in CI and outside it.
"""

from __future__ import annotations

import json
import os
import ssl
import urllib.request
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest

from clients import (
    MIB,
    assert_stored_exactly,
    fetch,
    https_endpoint,
    isolated_env,
    part_count,
    run,
    sha256,
    write_random,
)
from helpers import CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY, object_exists, parse_s3_error, stored_body, stored_keys
from two_backends import ON_BOTH, ON_BOTH_ALL, ON_BOTH_HTTP, direct, start_proxy, store  # noqa: F401  (fixtures)

BIN_DIR = Path(__file__).resolve().parent.parent / "build" / "bin"
PROGRAMS = {"aws": "osp-awsgo", "minio": "osp-miniogo"}
SDKS = list(PROGRAMS)

# Keys that an SDK must escape right (path, canonical URI, copy source).
SPECIAL_KEYS = ["with space.txt", "plus+sign.txt", "dir/ünïcödé ✓ 日本.txt", "a+b c/d%e.txt"]


def program(sdk: str) -> str:
    """The client program's path; fails (never skips) when it is missing."""
    path = BIN_DIR / PROGRAMS[sdk]
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"{path} is missing: `make goclients` builds it (`make test-python` does so first)")
    return str(path)


# The only headers these SDKs send unsigned (besides Authorization): the
# proxy's forwarding rule lets them through or sets them itself, so nothing
# the SDK meant for the backend is dropped. A new SDK version that sends
# another unsigned header fails every test here, to be looked at.
UNSIGNED_OK = {"user-agent", "expect"}


class GoClient:
    """Runs the program of one SDK against one endpoint."""

    def __init__(self, sdk: str, endpoint: str, home: Path, *, ca: Optional[str] = None, secret_key: str = CLIENT_SECRET_KEY) -> None:
        self.sdk = sdk
        self.binary = program(sdk)
        self.base: Dict[str, Any] = {
            "endpoint": endpoint, "access_key": CLIENT_ACCESS_KEY, "secret_key": secret_key,
            "region": "us-east-1", "ca": ca or "",
        }
        self.env = isolated_env(home)
        self.cwd = home

    def __call__(self, op: str, **params: Any) -> Dict[str, Any]:
        args = dict(self.base, op=op, **params)
        result = run([self.binary, json.dumps(args)], self.env, cwd=self.cwd, timeout=180)
        lines = [line for line in result.stdout.splitlines() if line.startswith("OSP-RESULT ")]
        assert result.returncode == 0 and lines, f"{self.sdk} {op} failed:\n" + result.describe()
        out: Dict[str, Any] = json.loads(lines[-1][len("OSP-RESULT "):])
        for request in out["sent"] or []:
            assert set(request["unsigned"]) <= UNSIGNED_OK, f"{self.sdk} {op} sent unsigned headers: {request}"
        return out

    def ok(self, op: str, **params: Any) -> Dict[str, Any]:
        out = self(op, **params)
        assert out["ok"], f"{self.sdk} {op} {params}: {out['error']}\nsent: {json.dumps(out['sent'], indent=1)}"
        return out


def sent(out: Dict[str, Any], method: str, query: str = "") -> List[Dict[str, Any]]:
    return [s for s in out["sent"] if s["method"] == method and query in s["query"]]


# --------------------------------------------------------------------------
# fixtures


@pytest.fixture(params=SDKS)
def sdk(request: Any) -> str:
    return str(request.param)


@pytest.fixture(params=["http", "https"])
def transport(request: Any) -> str:
    return str(request.param)


@pytest.fixture
def go_client(
    sdk: str, start_proxy: Callable[..., Any], bucket: str, tls_cert: Tuple[str, str], tmp_path: Path  # noqa: F811
) -> Callable[..., GoClient]:
    """``go_client(https=False, secret_key=...)``: the test's SDK through a
    proxy for ``bucket`` (one proxy per test, with an HTTPS listener)."""
    cert, key = tls_cert
    server = start_proxy(bucket, https_port=0, tls_cert_path=cert, tls_key_path=key)

    def make(*, https: bool = False, secret_key: str = CLIENT_SECRET_KEY) -> GoClient:
        if https:
            return GoClient(sdk, https_endpoint(server), tmp_path / "home", ca=cert, secret_key=secret_key)
        return GoClient(sdk, server.endpoint_url, tmp_path / "home", secret_key=secret_key)

    return make


def transport_client(go_client: Callable[..., GoClient], transport: str, **options: Any) -> GoClient:
    return go_client(https=transport == "https", **options)


def check_put_framing(sdk: str, transport: str, requests: List[Dict[str, Any]]) -> None:
    """Each upload request (a PUT with a body) used the SDK's default framing:
    minio-go signs each chunk over HTTP and sends UNSIGNED-PAYLOAD over
    HTTPS; aws-sdk-go-v2 sends a signed payload hash and a CRC32 header over
    HTTP, an aws-chunked body with a CRC32 trailer over HTTPS."""
    assert requests, "no upload request was sent"
    for s in requests:
        if sdk == "minio" and transport == "http":
            assert s["content_sha256"] == "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", s
            # (An empty object goes as an empty body: no chunk at all, not
            # even the final one; x-amz-decoded-content-length: 0 is signed.)
            assert int(s["decoded_length"]) < s["content_length"] or s["content_length"] == 0 == int(s["decoded_length"]), s
        elif sdk == "minio":
            assert s["content_sha256"] == "UNSIGNED-PAYLOAD", s
        elif transport == "http":
            assert len(s["content_sha256"]) == 64, s
            assert s["checksums"].get("x-amz-checksum-crc32"), s
        elif s["content_length"] == 0:
            # An empty body goes unframed, its CRC32 in a header.
            assert s["content_sha256"] == "UNSIGNED-PAYLOAD" and s["checksums"].get("x-amz-checksum-crc32"), s
        else:
            assert s["content_sha256"] == "STREAMING-UNSIGNED-PAYLOAD-TRAILER", s
            assert s["trailer"] == "x-amz-checksum-crc32", s


# --------------------------------------------------------------------------
# put, head, get


@ON_BOTH_ALL
def test_put_small_head_get_whole_and_ranged(
    go_client: Callable[..., GoClient], sdk: str, transport: str, bucket: str, direct: Any, tmp_path: Path
) -> None:
    c = transport_client(go_client, transport)
    data = write_random(tmp_path / "small.bin", 100_000)
    put = c.ok(
        "put", bucket=bucket, key="docs/small.bin", file=str(tmp_path / "small.bin"),
        metadata={"owner": "team-a", "note": "go sdk"}, content_type="text/plain; charset=utf-8",
    )
    check_put_framing(sdk, transport, sent(put, "PUT"))
    assert_stored_exactly(direct, bucket, "docs/small.bin", data)
    stored = direct.head_object(Bucket=bucket, Key="docs/small.bin")
    assert stored["Metadata"] == {"owner": "team-a", "note": "go sdk"}
    assert stored["ContentType"] == "text/plain; charset=utf-8"

    head = c.ok("head", bucket=bucket, key="docs/small.bin")
    assert head["content_length"] == len(data)
    assert head["content_type"] == "text/plain; charset=utf-8"
    # minio-go gives user metadata keys in canonical header case.
    assert {k.lower(): v for k, v in head["metadata"].items()} == {"owner": "team-a", "note": "go sdk"}

    whole = c.ok("get", bucket=bucket, key="docs/small.bin", out=str(tmp_path / "whole"))
    assert sha256((tmp_path / "whole").read_bytes()) == sha256(data), whole
    ranged = c.ok(
        "get", bucket=bucket, key="docs/small.bin", out=str(tmp_path / "part"),
        range="bytes=1000-50999", range_start=1000, range_end=50999,
    )
    assert (tmp_path / "part").read_bytes() == data[1000:51000], ranged
    if sdk == "aws":
        assert ranged["content_range"] == f"bytes 1000-50999/{len(data)}"
        # Its default response checksum validation asks for the checksum.
        assert sent(ranged, "GET")[0]["checksums"].get("x-amz-checksum-mode") == "ENABLED"


@pytest.mark.parametrize("size", [0, 1, 65536, 65537], ids=lambda n: f"{n}B")
def test_put_sizes_at_chunk_edges(
    go_client: Callable[..., GoClient], sdk: str, transport: str, size: int, bucket: str, direct: Any, tmp_path: Path
) -> None:
    """Empty and one-byte bodies, and 64 KiB (minio-go's signed chunk size,
    so one full chunk then the final empty one) and one byte more: stored
    exactly, read back exactly."""
    c = transport_client(go_client, transport)
    data = write_random(tmp_path / "body", size)
    put = c.ok("put", bucket=bucket, key="edge.bin", file=str(tmp_path / "body"))
    check_put_framing(sdk, transport, sent(put, "PUT"))
    assert_stored_exactly(direct, bucket, "edge.bin", data)
    c.ok("get", bucket=bucket, key="edge.bin", out=str(tmp_path / "back"))
    assert (tmp_path / "back").read_bytes() == data


@pytest.mark.parametrize("sdk", ["minio"])
def test_minio_trailing_checksums(
    go_client: Callable[..., GoClient], transport: str, bucket: str, direct: Any, tmp_path: Path
) -> None:
    """minio-go's TrailingHeaders option with a CRC32C checksum (not its
    default): over HTTP signed chunks with a signed trailer
    (STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER), over HTTPS an unsigned
    body with a trailer; single PUT and multipart. minio-go ends the trailer
    line with LF CRLF (``name:value\\n\\r\\n``), which S3 and MinIO take:
    the proxy refused it (400 InvalidRequest, "a line does not end with
    CRLF") until awschunked.readTrailerLine. A flipped bit is refused and
    nothing is stored."""
    c = transport_client(go_client, transport)
    small = write_random(tmp_path / "small", 100_000)
    big = write_random(tmp_path / "big", 17 * MIB)
    for key, file, data in (("small", "small", small), ("big", "big", big)):
        out = c.ok("put", bucket=bucket, key=key, file=str(tmp_path / file), trailing_headers=True, checksum_crc32c=True)
        for s in sent(out, "PUT"):
            assert s["content_sha256"] == (
                "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" if transport == "http" else "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
            ), s
            assert s["trailer"] == "x-amz-checksum-crc32c", s
        assert_stored_exactly(direct, bucket, key, data)
    bad = c("put", bucket=bucket, key="bad", file=str(tmp_path / "small"), trailing_headers=True, checksum_crc32c=True, tamper_at=50_000)
    expected = (403, "SignatureDoesNotMatch") if transport == "http" else (400, "BadDigest")
    assert not bad["ok"] and (bad["error"]["status"], bad["error"]["code"]) == expected, bad["error"]
    assert not object_exists(direct, bucket, "bad")


def test_missing_key_is_not_found(go_client: Callable[..., GoClient], sdk: str, bucket: str, tmp_path: Path) -> None:
    c = go_client()
    got = c("get", bucket=bucket, key="no such key ü+.txt", out=str(tmp_path / "x"))
    assert (got["error"]["status"], got["error"]["code"]) == (404, "NoSuchKey"), got["error"]
    head = c("head", bucket=bucket, key="no such key ü+.txt")
    # A HEAD answer has no body: aws-sdk-go-v2 names it from the status.
    assert (head["error"]["status"], head["error"]["code"]) == (404, "NotFound" if sdk == "aws" else "NoSuchKey"), head["error"]


@pytest.mark.parametrize("sdk", ["minio"])
def test_minio_finds_the_region_through_the_proxy(
    go_client: Callable[..., GoClient], bucket: str, direct: Any, tmp_path: Path
) -> None:
    """minio-go without a region first asks GetBucketLocation (?location)
    and signs with the answer."""
    c = go_client()
    c.base["region"] = "auto"
    data = write_random(tmp_path / "r.bin", 5000)
    out = c.ok("put", bucket=bucket, key="r.bin", file=str(tmp_path / "r.bin"))
    assert [s["query"] for s in out["sent"]][0] == "location=", out["sent"]
    assert_stored_exactly(direct, bucket, "r.bin", data)


# --------------------------------------------------------------------------
# uploads of unknown length, multipart


@ON_BOTH_ALL
@pytest.mark.parametrize("sdk,via", [("aws", "tm"), ("aws", "manager"), ("minio", "size-1")])
def test_upload_of_unknown_length(
    go_client: Callable[..., GoClient], sdk: str, transport: str, via: str, bucket: str, direct: Any, tmp_path: Path
) -> None:
    """A body whose length nobody knows (no Seek, no Stat): aws-sdk-go-v2's
    transfermanager (17 MiB: 8 MiB parts) and the older manager (6 MiB:
    5 MiB parts) buffer parts; minio-go (``size=-1``) uploads one buffered
    multipart upload whatever the size (3 MiB: one part)."""
    c = transport_client(go_client, transport)
    size = {"tm": 17 * MIB + 3, "manager": 6 * MIB + 3}[via] if sdk == "aws" else 3 * MIB + 3
    data = write_random(tmp_path / "stream.bin", size)
    out = c.ok("put_stream", bucket=bucket, key="stream.bin", file=str(tmp_path / "stream.bin"), via=via)
    parts = sent(out, "PUT", "partNumber=")
    check_put_framing(sdk, transport, parts)
    assert_stored_exactly(direct, bucket, "stream.bin", data)
    expected_parts = {"tm": 3, "manager": 2}[via] if sdk == "aws" else 1
    assert len(parts) == expected_parts
    assert part_count(direct, bucket, "stream.bin") == expected_parts


@pytest.mark.parametrize("sdk", ["aws"])
def test_aws_put_object_of_unknown_length_is_refused_cleanly(
    go_client: Callable[..., GoClient], transport: str, bucket: str, direct: Any, tmp_path: Path
) -> None:
    """aws-sdk-go-v2's plain PutObject of an unseekable body with no length:
    over HTTP the SDK itself refuses (it cannot hash the body up front); over
    HTTPS it sends aws-chunked with Transfer-Encoding: chunked and no
    x-amz-decoded-content-length, which S3 refuses too (411
    MissingContentLength): the proxy answers the same, stores nothing, and
    the SDK's documented answer is the upload manager (above)."""
    c = transport_client(go_client, transport)
    write_random(tmp_path / "s.bin", 300_000)
    out = c("put_stream", bucket=bucket, key="s.bin", file=str(tmp_path / "s.bin"), via="put")
    assert not out["ok"]
    if transport == "http":
        assert out["sent"] is None or out["sent"] == [], out
        assert "unseekable stream is not supported without TLS" in out["error"]["text"]
    else:
        assert (out["error"]["status"], out["error"]["code"]) == (411, "MissingContentLength"), out["error"]
        assert sent(out, "PUT")[0]["content_length"] == -1
    assert not object_exists(direct, bucket, "s.bin")


@ON_BOTH_ALL
def test_multipart_upload_and_download(
    go_client: Callable[..., GoClient], sdk: str, transport: str, bucket: str, direct: Any, tmp_path: Path
) -> None:
    """20 MiB from a file with the defaults: aws-sdk-go-v2's transfermanager
    (16 MiB threshold, 8 MiB parts, 5 at a time: 3 parts) and minio-go
    (16 MiB parts, 4 at a time: 2 parts); read back whole (aws: the
    transfermanager's download, by part number)."""
    c = transport_client(go_client, transport)
    data = write_random(tmp_path / "big.bin", 20 * MIB + 12345)
    key = "big dir/ü+ multi part.bin"  # escaped alike in every part's URI
    out = c.ok("upload", bucket=bucket, key=key, file=str(tmp_path / "big.bin"), metadata={"kind": "multipart"})
    parts = sent(out, "PUT", "partNumber=")
    check_put_framing(sdk, transport, parts)
    expected_parts = 3 if sdk == "aws" else 2
    assert len(parts) == expected_parts
    assert_stored_exactly(direct, bucket, key, data)
    assert part_count(direct, bucket, key) == expected_parts
    assert direct.head_object(Bucket=bucket, Key=key)["Metadata"] == {"kind": "multipart"}

    if sdk == "aws":
        down = c.ok("download", bucket=bucket, key=key, out=str(tmp_path / "down"))
        assert len(sent(down, "GET", "partNumber=")) == expected_parts, down["sent"]
    else:
        c.ok("get", bucket=bucket, key=key, out=str(tmp_path / "down"))
    assert sha256((tmp_path / "down").read_bytes()) == sha256(data)


@pytest.mark.parametrize("sdk", ["aws"])
def test_aws_manager_multipart_upload(
    go_client: Callable[..., GoClient], transport: str, bucket: str, direct: Any, tmp_path: Path
) -> None:
    """The deprecated feature/s3/manager (still what most code calls): 12 MiB
    from a file, 5 MiB parts."""
    c = transport_client(go_client, transport)
    data = write_random(tmp_path / "m.bin", 12 * MIB + 1)
    out = c.ok("upload", bucket=bucket, key="m.bin", file=str(tmp_path / "m.bin"), via="manager")
    check_put_framing("aws", transport, sent(out, "PUT", "partNumber="))
    assert_stored_exactly(direct, bucket, "m.bin", data)
    assert part_count(direct, bucket, "m.bin") == 3


# --------------------------------------------------------------------------
# list, copy, delete


@ON_BOTH
def test_list_with_paging(go_client: Callable[..., GoClient], sdk: str, bucket: str, direct: Any) -> None:
    keys = [f"page/{i:02d}-{name}" for i, name in enumerate(["a", "b c", "d+e", "f", "ü", "g", "h"])]
    for key in keys + ["other/x", "pagez"]:
        direct.put_object(Bucket=bucket, Key=key, Body=key.encode())
    c = go_client()
    out = c.ok("list", bucket=bucket, prefix="page/", page_size=3)
    assert out["keys"] == sorted(keys)
    lists = sent(out, "GET", "list-type=2")
    assert len(lists) == 3, out["sent"]
    if sdk == "aws":
        assert out["pages"] == 3
    everything = c.ok("list", bucket=bucket)
    assert everything["keys"] == sorted(keys + ["other/x", "pagez"])


@ON_BOTH
def test_copy_keys_with_spaces_plus_and_utf8(
    go_client: Callable[..., GoClient], sdk: str, bucket: str, direct: Any, tmp_path: Path
) -> None:
    c = go_client()
    bodies: Dict[str, bytes] = {}
    for i, key in enumerate(SPECIAL_KEYS):
        bodies[key] = write_random(tmp_path / f"k{i}", 1000 + i)
        c.ok("put", bucket=bucket, key=key, file=str(tmp_path / f"k{i}"))
        assert_stored_exactly(direct, bucket, key, bodies[key])
    for key in SPECIAL_KEYS:
        destination = f"copy of/{key}"
        c.ok("copy", bucket=bucket, src_key=key, dst_key=destination)
        assert_stored_exactly(direct, bucket, destination, bodies[key])
    listed = c.ok("list", bucket=bucket)["keys"]
    assert listed == sorted(SPECIAL_KEYS + [f"copy of/{k}" for k in SPECIAL_KEYS])
    assert sorted(stored_keys(direct, bucket)) == listed


def test_copy_replacing_metadata(go_client: Callable[..., GoClient], sdk: str, bucket: str, direct: Any) -> None:
    """x-amz-metadata-directive: REPLACE with new x-amz-meta-* (signed by
    both SDKs) reaches versitygw: the copy has the new metadata only."""
    direct.put_object(Bucket=bucket, Key="src key+ü", Body=b"payload", Metadata={"old": "1"})
    go_client().ok("copy", bucket=bucket, src_key="src key+ü", dst_key="dst key+ü", metadata={"new": "2"})
    assert direct.head_object(Bucket=bucket, Key="dst key+ü")["Metadata"] == {"new": "2"}
    assert stored_body(direct, bucket, "dst key+ü") == b"payload"
    assert direct.head_object(Bucket=bucket, Key="src key+ü")["Metadata"] == {"old": "1"}


@ON_BOTH
def test_delete_objects(go_client: Callable[..., GoClient], sdk: str, bucket: str, direct: Any) -> None:
    keep = ["keep.txt", "plus+keep.txt"]
    doomed = SPECIAL_KEYS + ["gone.txt"]
    for key in keep + doomed:
        direct.put_object(Bucket=bucket, Key=key, Body=b"x")
    out = go_client().ok("delete_objects", bucket=bucket, keys=doomed)
    assert sorted(out["deleted"]) == sorted(doomed) and out["errors"] == [], out
    assert sorted(stored_keys(direct, bucket)) == sorted(keep)


# --------------------------------------------------------------------------
# presigned URLs


@ON_BOTH_HTTP
def test_presigned_get_and_put(
    go_client: Callable[..., GoClient], sdk: str, transport: str, bucket: str, direct: Any, tmp_path: Path,
    tls_cert: Tuple[str, str],
) -> None:
    c = transport_client(go_client, transport)
    ca = tls_cert[0] if transport == "https" else None
    data = b"presigned put \x00\xff" * 5000
    put_url = c.ok("presign_put", bucket=bucket, key="dir/pre sign+d ü.bin")["url"]
    status, body = fetch(put_url, method="PUT", data=data, cafile=ca)
    assert status == 200, body
    assert_stored_exactly(direct, bucket, "dir/pre sign+d ü.bin", data)

    get_url = c.ok("presign_get", bucket=bucket, key="dir/pre sign+d ü.bin")["url"]
    status, body = fetch(get_url, cafile=ca)
    assert (status, sha256(body)) == (200, sha256(data))

    # A signed response override (query parameter) reaches the backend.
    disposition = 'attachment; filename="report 1+1.bin"'
    override_url = c.ok("presign_get", bucket=bucket, key="dir/pre sign+d ü.bin", disposition=disposition)["url"]
    context = ssl.create_default_context(cafile=ca) if ca else None
    with urllib.request.urlopen(override_url, timeout=60, context=context) as response:
        assert response.headers["Content-Disposition"] == disposition
        assert sha256(response.read()) == sha256(data)

    # The URL is for one key and one method: another key, or the PUT URL
    # used to write somewhere else, is refused and nothing is stored.
    other = put_url.replace("/dir/", "/elsewhere/", 1)
    assert other != put_url
    status, body = fetch(other, method="PUT", data=b"not signed for this key", cafile=ca)
    assert (status, parse_s3_error(body)["Code"]) == (403, "SignatureDoesNotMatch"), body
    status, body = fetch(put_url.replace("/dir/", "/elsewhere/", 1), cafile=ca)
    assert status == 403, body
    assert sorted(stored_keys(direct, bucket)) == ["dir/pre sign+d ü.bin"]


# --------------------------------------------------------------------------
# refusals


@ON_BOTH_HTTP
def test_wrong_secret_is_refused(
    go_client: Callable[..., GoClient], sdk: str, transport: str, bucket: str, direct: Any, tmp_path: Path,
    tls_cert: Tuple[str, str],
) -> None:
    direct.put_object(Bucket=bucket, Key="there.txt", Body=b"secret data")
    c = transport_client(go_client, transport, secret_key=CLIENT_SECRET_KEY[:-1] + "X")
    write_random(tmp_path / "w.bin", 70_000)
    put = c("put", bucket=bucket, key="w.bin", file=str(tmp_path / "w.bin"))
    assert not put["ok"]
    assert (put["error"]["status"], put["error"]["code"]) == (403, "SignatureDoesNotMatch"), put["error"]
    got = c("get", bucket=bucket, key="there.txt", out=str(tmp_path / "got"))
    assert (got["error"] or {}).get("status") == 403, got
    assert not (tmp_path / "got").exists() or (tmp_path / "got").read_bytes() == b""
    listed = c("list", bucket=bucket)
    assert (listed["error"] or {}).get("status") == 403, listed
    # A URL presigned with the wrong secret is refused too.
    ca = tls_cert[0] if transport == "https" else None
    status, body = fetch(c.ok("presign_get", bucket=bucket, key="there.txt")["url"], cafile=ca)
    assert (status, parse_s3_error(body)["Code"]) == (403, "SignatureDoesNotMatch"), body
    status, body = fetch(c.ok("presign_put", bucket=bucket, key="p.bin")["url"], method="PUT", data=b"x", cafile=ca)
    assert (status, parse_s3_error(body)["Code"]) == (403, "SignatureDoesNotMatch"), body
    assert stored_keys(direct, bucket) == ["there.txt"]


READS = {"GetObject", "HeadObject", "ListObjectsV2", "ListObjects", "GetBucketLocation"}


def private_is_read_only(token: str, bucket: str, method: str, key: str, operation: str) -> bool:
    """The test's validator: keys under private/ may be read, not written."""
    return not key.startswith("private/") or operation in READS


def test_validator_grants_exactly_what_it_says(
    sdk: str, start_proxy: Callable[..., Any], make_bucket: Callable[..., str], direct: Any, tmp_path: Path
) -> None:
    """Each SDK gets what the validator granted and no more: writes under
    private/ are refused whichever way the SDK writes (PUT, signed chunks,
    multipart, copy, DeleteObjects, a presigned PUT), reads of it work, and a
    bucket at the same backend but not in the cos_map is out of reach."""
    bucket, unlisted = make_bucket(), make_bucket()
    server = start_proxy(bucket, validator=private_is_read_only)
    c = GoClient(sdk, server.endpoint_url, tmp_path / "home")
    direct.put_object(Bucket=bucket, Key="private/kept", Body=b"kept")
    small = write_random(tmp_path / "small", 70_000)
    write_random(tmp_path / "big", 17 * MIB)

    assert c.ok("put", bucket=bucket, key="public/a", file=str(tmp_path / "small"))
    assert_stored_exactly(direct, bucket, "public/a", small)
    refused = [
        c("put", bucket=bucket, key="private/a", file=str(tmp_path / "small")),
        c("upload", bucket=bucket, key="private/big", file=str(tmp_path / "big")),
        c("copy", bucket=bucket, src_key="public/a", dst_key="private/copy"),
    ]
    for out in refused:
        assert not out["ok"] and (out["error"]["status"], out["error"]["code"]) == (403, "AccessDenied"), out["error"]
    assert direct.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []

    deleted = c.ok("delete_objects", bucket=bucket, keys=["public/a", "private/kept"])
    assert deleted["deleted"] == ["public/a"], deleted
    assert [(e["key"], e["code"]) for e in deleted["errors"]] == [("private/kept", "AccessDenied")], deleted
    assert sorted(stored_keys(direct, bucket)) == ["private/kept"]

    c.ok("get", bucket=bucket, key="private/kept", out=str(tmp_path / "kept"))
    assert (tmp_path / "kept").read_bytes() == b"kept"
    url = c.ok("presign_put", bucket=bucket, key="private/presigned")["url"]
    status, body = fetch(url, method="PUT", data=b"not granted")
    assert (status, parse_s3_error(body)["Code"]) == (403, "AccessDenied"), body
    assert sorted(stored_keys(direct, bucket)) == ["private/kept"]

    other = c("put", bucket=unlisted, key="x", file=str(tmp_path / "small"))
    assert not other["ok"] and 400 <= other["error"]["status"] < 500, other["error"]
    assert stored_keys(direct, unlisted) == []


@ON_BOTH_ALL
def test_body_changed_in_flight_is_refused(
    go_client: Callable[..., GoClient], sdk: str, transport: str, bucket: str, direct: Any, tmp_path: Path
) -> None:
    """One bit of the upload flipped on the wire after the SDK signed it
    (minio-go's signed chunks, aws-sdk-go-v2's signed hash or CRC32
    trailer): the upload fails and nothing is stored. Over HTTPS minio-go
    sends UNSIGNED-PAYLOAD with no checksum: nothing can tell, so TLS is
    what protects it (the test shows that too)."""
    c = transport_client(go_client, transport)
    data = write_random(tmp_path / "t.bin", 200_000)
    out = c("put", bucket=bucket, key="t.bin", file=str(tmp_path / "t.bin"), tamper_at=100_000)
    if sdk == "minio" and transport == "https":
        assert out["ok"], out["error"]
        stored = stored_body(direct, bucket, "t.bin")
        assert len(stored) == len(data) and stored != data
        return
    assert not out["ok"], "the tampered upload succeeded"
    # Who notices: the backend (versitygw or SeaweedFS) checks the signed
    # hash the proxy forwards (aws, HTTP); the proxy checks the CRC32
    # trailer (aws, HTTPS) and each chunk's signature (minio, HTTP).
    expected = {
        ("aws", "http"): (400, "XAmzContentSHA256Mismatch"),
        ("aws", "https"): (400, "BadDigest"),
        ("minio", "http"): (403, "SignatureDoesNotMatch"),
    }[(sdk, transport)]
    assert (out["error"]["status"], out["error"]["code"]) == expected, out["error"]
    assert not object_exists(direct, bucket, "t.bin")
