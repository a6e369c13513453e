"""s3cmd (Debian's) through the proxy: put, get, ls, multipart, with a
temporary config (path style: host_bucket has no %(bucket)s; plain HTTP;
SigV4). s3cmd signs a hex payload hash of every body and part."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, List

import pytest

from clients import (
    MIB,
    Result,
    assert_failed,
    assert_ok,
    assert_stored_exactly,
    fetch,
    isolated_env,
    part_count,
    require_command,
    run,
    write_random,
)
from helpers import CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY, REGION, parse_s3_error, stored_keys


class S3cmd:
    def __init__(self, home: Path, port: int, *, secret_key: str = CLIENT_SECRET_KEY, signature_v2: bool = False) -> None:
        self.binary = require_command("s3cmd", "s3cmd (Debian package s3cmd)")
        home.mkdir(parents=True, exist_ok=True)
        self.config = home / "s3cfg"
        self.config.write_text(
            "[default]\n"
            f"access_key = {CLIENT_ACCESS_KEY}\n"
            f"secret_key = {secret_key}\n"
            f"host_base = 127.0.0.1:{port}\n"
            f"host_bucket = 127.0.0.1:{port}\n"
            f"bucket_location = {REGION}\n"
            "use_https = False\n"
            f"signature_v2 = {signature_v2}\n"
            "guess_mime_type = False\n"
            "progress_meter = False\n"
            "socket_timeout = 60\n"
            "max_retries = 1\n"
        )
        self.env = isolated_env(home / "home")
        self.cwd = home

    def __call__(self, *args: str) -> Result:
        return run([self.binary, "--config", str(self.config), *args], self.env, cwd=self.cwd, timeout=120)

    def ok(self, *args: str) -> Result:
        return assert_ok(self(*args))


@pytest.fixture
def s3cmd(start_proxy: Callable[..., Any], bucket: str, tmp_path: Path) -> Callable[..., S3cmd]:
    server = start_proxy(bucket)
    return lambda **options: S3cmd(tmp_path / "s3cmd", server.http_port, **options)


def listed_keys(output: str) -> List[str]:
    """The s3:// URLs of `s3cmd ls` lines (`2024-01-01 00:00  123  s3://b/k`)."""
    return [line[line.index("s3://"):] for line in output.splitlines() if "s3://" in line and " DIR " not in line]


def test_put_get_ls(s3cmd: Callable[..., S3cmd], bucket: str, direct: Any, tmp_path: Path) -> None:
    cli = s3cmd()
    a = write_random(tmp_path / "a.bin", 50_000)
    b = write_random(tmp_path / "b c.txt", 12)
    cli.ok("put", str(tmp_path / "a.bin"), f"s3://{bucket}/dir/a.bin")
    cli.ok("put", str(tmp_path / "b c.txt"), f"s3://{bucket}/dir/sub/b c.txt")
    assert_stored_exactly(direct, bucket, "dir/a.bin", a)
    assert_stored_exactly(direct, bucket, "dir/sub/b c.txt", b)

    listed = cli.ok("ls", "--recursive", f"s3://{bucket}/")
    assert listed_keys(listed.stdout) == [f"s3://{bucket}/dir/a.bin", f"s3://{bucket}/dir/sub/b c.txt"], listed.describe()
    shallow = cli.ok("ls", f"s3://{bucket}/dir/")
    assert any(line.split() == ["DIR", f"s3://{bucket}/dir/sub/"] for line in shallow.stdout.splitlines()), shallow.describe()
    assert listed_keys(shallow.stdout) == [f"s3://{bucket}/dir/a.bin"], shallow.describe()

    cli.ok("get", f"s3://{bucket}/dir/a.bin", str(tmp_path / "a.down"))
    assert (tmp_path / "a.down").read_bytes() == a
    cli.ok("del", f"s3://{bucket}/dir/a.bin")
    assert stored_keys(direct, bucket) == ["dir/sub/b c.txt"]


def test_multipart_put_and_get(s3cmd: Callable[..., S3cmd], bucket: str, direct: Any, tmp_path: Path) -> None:
    cli = s3cmd()
    data = write_random(tmp_path / "big.bin", 12 * MIB + 3)
    cli.ok("put", "--multipart-chunk-size-mb=5", str(tmp_path / "big.bin"), f"s3://{bucket}/big.bin")
    assert_stored_exactly(direct, bucket, "big.bin", data)
    assert part_count(direct, bucket, "big.bin") == 3
    cli.ok("get", f"s3://{bucket}/big.bin", str(tmp_path / "big.down"))
    assert (tmp_path / "big.down").read_bytes() == data


def test_ls_lists_the_allowed_buckets(
    start_proxy: Callable[..., Any], make_bucket: Callable[..., str], tmp_path: Path
) -> None:
    """`s3cmd ls` (ListBuckets) shows the buckets the validator allows."""
    allowed, denied = make_bucket("allowed"), make_bucket("denied")
    server = start_proxy(allowed, denied, validator=lambda token, b: b == allowed)
    listed = S3cmd(tmp_path / "s3cmd", server.http_port).ok("ls")
    assert [line.split()[-1] for line in listed.stdout.splitlines() if line.strip()] == [f"s3://{allowed}"], listed.describe()


def test_wrong_secret_is_rejected_and_nothing_stored(
    s3cmd: Callable[..., S3cmd], bucket: str, direct: Any, tmp_path: Path
) -> None:
    cli = s3cmd(secret_key="not-the-client-secret")
    write_random(tmp_path / "a.bin", 1_000)
    write_random(tmp_path / "big.bin", 6 * MIB)
    failed = assert_failed(cli("put", str(tmp_path / "a.bin"), f"s3://{bucket}/a.bin"))
    assert "403" in failed.output and "SignatureDoesNotMatch" in failed.output, failed.describe()
    failed = assert_failed(cli("put", "--multipart-chunk-size-mb=5", str(tmp_path / "big.bin"), f"s3://{bucket}/big.bin"))
    assert "403" in failed.output, failed.describe()
    assert stored_keys(direct, bucket) == []
    assert direct.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_sigv2_is_refused(s3cmd: Callable[..., S3cmd], bucket: str, direct: Any, tmp_path: Path) -> None:
    """s3cmd with `signature_v2 = True` is refused with S3's own words,
    "The authorization mechanism you have provided is not supported. Please
    use AWS4-HMAC-SHA256.", on which s3cmd switches itself to SigV4 and
    retries, as it does against AWS: the upload then succeeds, signed with
    SigV4. `s3cmd signurl` (always SigV2) makes URLs the proxy refuses."""
    cli = s3cmd(signature_v2=True)
    write_random(tmp_path / "a.bin", 1_000)
    cli.ok("put", str(tmp_path / "a.bin"), f"s3://{bucket}/a.bin")
    assert stored_keys(direct, bucket) == ["a.bin"]
    assert direct.get_object(Bucket=bucket, Key="a.bin")["Body"].read() == (tmp_path / "a.bin").read_bytes()
    direct.delete_object(Bucket=bucket, Key="a.bin")

    direct.put_object(Bucket=bucket, Key="signed.txt", Body=b"not for SigV2")
    url = cli.ok("signurl", f"s3://{bucket}/signed.txt", "+300").stdout.strip()
    assert "Signature=" in url, url
    status, body = fetch(url)
    assert status == 400, (status, body[:500])
    error = parse_s3_error(body)
    assert error["Code"] == "InvalidRequest" and "AWS4-HMAC-SHA256" in error["Message"], error
