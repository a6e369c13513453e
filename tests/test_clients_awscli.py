"""The aws cli through the proxy: v1 (the pyenv one, on the newest botocore:
default integrity checksums, so aws-chunked trailers over HTTPS, like aws cli
>= 2.23) and v2 (Debian's 2.9). Each runs with its own temporary config and
credentials files holding the proxy's client keys, path addressing, and
nothing of the user's ~/.aws or AWS_* environment.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest

from clients import (
    AWS_CLI_V1,
    AWS_CLI_V2,
    MIB,
    Result,
    assert_failed,
    assert_ok,
    assert_stored_exactly,
    fetch,
    https_endpoint,
    isolated_env,
    part_count,
    require_executable,
    run,
    write_random,
)
from helpers import CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY, REGION, object_exists, parse_s3_error, stored_keys


class AwsCli:
    """One aws cli binary with an isolated config, pointed at one endpoint."""

    def __init__(
        self,
        binary: str,
        home: Path,
        endpoint: str,
        *,
        secret_key: str = CLIENT_SECRET_KEY,
        ca: Optional[str] = None,
        signature_version: Optional[str] = None,
    ) -> None:
        self.binary = binary
        self.endpoint = endpoint
        home.mkdir(parents=True, exist_ok=True)
        s3_settings = [
            "addressing_style = path",
            # 12 MiB files go multipart in 5 MiB parts.
            "multipart_threshold = 8MB",
            "multipart_chunksize = 5MB",
        ]
        if signature_version:
            s3_settings.append(f"signature_version = {signature_version}")
        config = home / "config"
        config.write_text(
            "[default]\n"
            f"region = {REGION}\n"
            "output = json\n"
            "max_attempts = 1\n"
            "s3 =\n" + "".join(f"    {line}\n" for line in s3_settings)
        )
        credentials = home / "credentials"
        credentials.write_text(
            "[default]\n"
            f"aws_access_key_id = {CLIENT_ACCESS_KEY}\n"
            f"aws_secret_access_key = {secret_key}\n"
        )
        extra = {
            "AWS_CONFIG_FILE": str(config),
            "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_PAGER": "",
        }
        if ca:
            extra["AWS_CA_BUNDLE"] = ca
        self.env = isolated_env(home / "home", extra)
        self.cwd = home

    def __call__(self, *args: str, timeout: float = 120) -> Result:
        return run([self.binary, "--endpoint-url", self.endpoint, *args], self.env, cwd=self.cwd, timeout=timeout)

    def ok(self, *args: str) -> Result:
        return assert_ok(self(*args))


_CHECKED_VERSIONS: Dict[str, str] = {}


@pytest.fixture(params=["v1", "v2"])
def cli_binary(request: Any, tmp_path_factory: Any) -> str:
    """The aws cli binary of the major version in the test's id (its
    `--version` checked once per session)."""
    if request.param == "v1":
        binary = require_executable(AWS_CLI_V1, "aws cli v1 (pyenv)")
    else:
        binary = require_executable(AWS_CLI_V2, "aws cli v2 (Debian package awscli)")
    if binary not in _CHECKED_VERSIONS:
        version = assert_ok(run([binary, "--version"], isolated_env(tmp_path_factory.mktemp("aws-version")), timeout=60))
        _CHECKED_VERSIONS[binary] = version.output
    expected = "aws-cli/1." if request.param == "v1" else "aws-cli/2."
    assert _CHECKED_VERSIONS[binary].startswith(expected), _CHECKED_VERSIONS[binary]
    return binary


@pytest.fixture
def aws(cli_binary: str, start_proxy: Callable[..., Any], bucket: str, tmp_path: Path) -> Callable[..., AwsCli]:
    """``aws(**options)``: the cli against a proxy for ``bucket`` over HTTP
    (``https=True``: over HTTPS, verifying the proxy's self-signed cert)."""
    servers: Dict[bool, Any] = {}
    homes = itertools.count()

    def make(*, https: bool = False, tls: Optional[Tuple[str, str]] = None, **options: Any) -> AwsCli:
        if https not in servers:
            if https:
                assert tls is not None
                servers[https] = start_proxy(bucket, https_port=0, tls_cert_path=tls[0], tls_key_path=tls[1])
            else:
                servers[https] = start_proxy(bucket)
        server = servers[https]
        endpoint = https_endpoint(server) if https else server.endpoint_url
        if https:
            options["ca"] = tls[0]  # type: ignore[index]
        return AwsCli(cli_binary, tmp_path / f"cli-{next(homes)}", endpoint, **options)

    return make


def ls_keys(output: str) -> Dict[str, int]:
    """{key: size} from `aws s3 ls --recursive` lines
    (`2024-01-01 00:00:00       1234 some/key`)."""
    found: Dict[str, int] = {}
    for line in output.splitlines():
        m = re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+(\d+) (.+)$", line)
        if m:
            found[m.group(2)] = int(m.group(1))
    return found


# --------------------------------------------------------------------------


@pytest.mark.parametrize("https", [False, True], ids=["http", "https"])
def test_cp_small_and_multipart(
    aws: Callable[..., AwsCli], https: bool, tls_cert: Tuple[str, str], bucket: str, direct: Any, tmp_path: Path
) -> None:
    cli = aws(https=https, tls=tls_cert)
    small = write_random(tmp_path / "up" / "small.bin", 100_000)
    big = write_random(tmp_path / "up" / "big.bin", 12 * MIB + 7)

    small_cp = cli.ok("s3", "cp", "--debug", str(tmp_path / "up" / "small.bin"), f"s3://{bucket}/cp/small.bin")
    if https and cli.binary == AWS_CLI_V1:
        # The newest botocore's default checksums: aws-chunked with a trailer,
        # as aws cli v2 >= 2.23 sends too (v2.9 here predates them).
        assert "STREAMING-UNSIGNED-PAYLOAD-TRAILER" in small_cp.stderr, small_cp.describe()
    cli.ok("s3", "cp", str(tmp_path / "up" / "big.bin"), f"s3://{bucket}/cp/big.bin")
    assert_stored_exactly(direct, bucket, "cp/small.bin", small)
    assert_stored_exactly(direct, bucket, "cp/big.bin", big)
    assert part_count(direct, bucket, "cp/big.bin") == 3

    cli.ok("s3", "cp", f"s3://{bucket}/cp/", str(tmp_path / "down"), "--recursive")
    assert (tmp_path / "down" / "small.bin").read_bytes() == small
    assert (tmp_path / "down" / "big.bin").read_bytes() == big


def test_sync_and_ls_recursive(aws: Callable[..., AwsCli], bucket: str, direct: Any, tmp_path: Path) -> None:
    cli = aws()
    folder = tmp_path / "folder"
    files = {
        "a.txt": write_random(folder / "a.txt", 10),
        "sub/b.bin": write_random(folder / "sub" / "b.bin", 20_000),
        "sub/deeper/c d+e.bin": write_random(folder / "sub" / "deeper" / "c d+e.bin", 3_000),
    }
    # sync compares mtimes with LastModified, which versitygw keeps to the
    # second: files written a moment ago may look newer than their upload.
    an_hour_ago = time.time() - 3600
    for path in folder.rglob("*"):
        os.utime(path, (an_hour_ago, an_hour_ago))
    up = cli.ok("s3", "sync", str(folder), f"s3://{bucket}/synced")
    assert up.stdout.count("upload:") == 3, up.describe()
    assert sorted(stored_keys(direct, bucket)) == sorted(f"synced/{k}" for k in files)
    for key, data in files.items():
        assert_stored_exactly(direct, bucket, f"synced/{key}", data)

    again = cli.ok("s3", "sync", str(folder), f"s3://{bucket}/synced")
    assert "upload:" not in again.stdout, again.describe()

    listed = cli.ok("s3", "ls", "--recursive", f"s3://{bucket}/")
    assert ls_keys(listed.stdout) == {f"synced/{k}": len(v) for k, v in files.items()}, listed.describe()

    cli.ok("s3", "sync", f"s3://{bucket}/synced", str(tmp_path / "back"))
    for key, data in files.items():
        assert (tmp_path / "back" / key).read_bytes() == data


def test_s3api_calls(aws: Callable[..., AwsCli], bucket: str, direct: Any, tmp_path: Path) -> None:
    cli = aws()
    data = write_random(tmp_path / "body.bin", 4_321)
    put = cli.ok(
        "s3api", "put-object", "--bucket", bucket, "--key", "api/obj.bin",
        "--body", str(tmp_path / "body.bin"), "--metadata", "team=analytics", "--content-type", "application/x-test",
    )
    assert json.loads(put.stdout)["ETag"], put.describe()
    assert_stored_exactly(direct, bucket, "api/obj.bin", data)

    head = json.loads(cli.ok("s3api", "head-object", "--bucket", bucket, "--key", "api/obj.bin").stdout)
    assert head["ContentLength"] == len(data)
    assert head["Metadata"] == {"team": "analytics"}
    assert head["ContentType"] == "application/x-test"

    got = cli.ok("s3api", "get-object", "--bucket", bucket, "--key", "api/obj.bin", str(tmp_path / "got.bin"))
    assert json.loads(got.stdout)["ContentLength"] == len(data)
    assert (tmp_path / "got.bin").read_bytes() == data

    direct.put_object(Bucket=bucket, Key="api/other.txt", Body=b"x")
    direct.put_object(Bucket=bucket, Key="elsewhere.txt", Body=b"y")
    listed = json.loads(cli.ok("s3api", "list-objects-v2", "--bucket", bucket, "--prefix", "api/").stdout)
    assert [(o["Key"], o["Size"]) for o in listed["Contents"]] == [("api/obj.bin", len(data)), ("api/other.txt", 1)]

    cli.ok("s3api", "delete-object", "--bucket", bucket, "--key", "api/other.txt")
    assert not object_exists(direct, bucket, "api/other.txt")


@pytest.mark.parametrize("https", [False, True], ids=["http", "https"])
def test_presign_sigv4(
    aws: Callable[..., AwsCli], https: bool, tls_cert: Tuple[str, str], bucket: str, direct: Any
) -> None:
    cli = aws(https=https, tls=tls_cert, signature_version="s3v4")
    data = b"presigned by the aws cli\n" * 100
    direct.put_object(Bucket=bucket, Key="p/obj.txt", Body=data)
    url = cli.ok("s3", "presign", f"s3://{bucket}/p/obj.txt", "--expires-in", "300", "--region", REGION).stdout.strip()
    assert url.startswith(cli.endpoint + f"/{bucket}/p/obj.txt?"), url
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url and "X-Amz-Expires=300" in url, url
    status, body = fetch(url, cafile=tls_cert[0] if https else None)
    assert status == 200, (status, body[:500])
    assert body == data


def test_presign_sigv2_is_refused(
    start_proxy: Callable[..., Any], bucket: str, direct: Any, tmp_path: Path
) -> None:
    """`aws s3 presign` of aws cli v1 makes SigV2 URLs by default (without
    `s3.signature_version = s3v4`): they get a clear 400 asking for SigV4.
    (aws cli v2 always presigns with SigV4.)"""
    binary = require_executable(AWS_CLI_V1, "aws cli v1 (pyenv)")
    cli = AwsCli(binary, tmp_path / "cli", start_proxy(bucket).endpoint_url)
    direct.put_object(Bucket=bucket, Key="p/obj.txt", Body=b"secret")
    url = cli.ok("s3", "presign", f"s3://{bucket}/p/obj.txt", "--expires-in", "300").stdout.strip()
    assert "Signature=" in url and "X-Amz-Algorithm" not in url, url
    status, body = fetch(url)
    assert status == 400, (status, body[:500])
    error = parse_s3_error(body)
    assert error["Code"] == "InvalidRequest", error
    assert "AWS4-HMAC-SHA256" in error["Message"], error


def test_wrong_secret_is_rejected_and_nothing_stored(
    aws: Callable[..., AwsCli], bucket: str, direct: Any, tmp_path: Path
) -> None:
    cli = aws(secret_key="not-the-client-secret")
    write_random(tmp_path / "small.bin", 1_000)
    write_random(tmp_path / "big.bin", 9 * MIB)
    for name in ("small.bin", "big.bin"):
        failed = assert_failed(cli("s3", "cp", str(tmp_path / name), f"s3://{bucket}/{name}"))
        assert "SignatureDoesNotMatch" in failed.output, failed.describe()
    failed = assert_failed(cli("s3api", "list-objects-v2", "--bucket", bucket))
    assert "SignatureDoesNotMatch" in failed.output, failed.describe()
    assert stored_keys(direct, bucket) == []
    assert direct.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_ls_lists_the_allowed_buckets(
    cli_binary: str, start_proxy: Callable[..., Any], make_bucket: Callable[..., str], tmp_path: Path
) -> None:
    """`aws s3 ls` (ListBuckets) shows the buckets the validator allows."""
    allowed, denied = make_bucket("allowed"), make_bucket("denied")
    server = start_proxy(allowed, denied, validator=lambda token, b: b == allowed)
    cli = AwsCli(cli_binary, tmp_path / "cli", server.endpoint_url)
    listed = cli.ok("s3", "ls")
    names: List[str] = [line.split()[-1] for line in listed.stdout.splitlines() if line.strip()]
    assert names == [allowed], listed.describe()
