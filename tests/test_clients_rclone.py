"""rclone (Debian's 1.60) through the proxy: copy up and down, ls, lsd,
multipart, configured only through RCLONE_CONFIG_OSP_* environment variables
(an `s3` remote, provider Other, path style). rclone 1.60 fails when
AWS_CA_BUNDLE is set, so its environment never has it (isolated_env drops
every AWS_* variable)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, Tuple

import pytest

from clients import (
    MIB,
    Result,
    assert_failed,
    assert_ok,
    assert_stored_exactly,
    https_endpoint,
    isolated_env,
    part_count,
    require_command,
    run,
    write_random,
)
from helpers import CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY, REGION, stored_keys


class Rclone:
    def __init__(self, home: Path, endpoint: str, *, secret_key: str = CLIENT_SECRET_KEY) -> None:
        self.binary = require_command("rclone", "rclone (Debian package rclone)")
        self.env = isolated_env(
            home / "home",
            {
                "RCLONE_CONFIG": str(home / "rclone.conf"),  # absent: the remote is all env
                "RCLONE_CONFIG_OSP_TYPE": "s3",
                "RCLONE_CONFIG_OSP_PROVIDER": "Other",
                "RCLONE_CONFIG_OSP_ENDPOINT": endpoint,
                "RCLONE_CONFIG_OSP_ACCESS_KEY_ID": CLIENT_ACCESS_KEY,
                "RCLONE_CONFIG_OSP_SECRET_ACCESS_KEY": secret_key,
                "RCLONE_CONFIG_OSP_REGION": REGION,
                "RCLONE_CONFIG_OSP_FORCE_PATH_STYLE": "true",
            },
        )
        assert "AWS_CA_BUNDLE" not in self.env
        self.cwd = home

    def __call__(self, *args: str) -> Result:
        return run(
            [self.binary, *args, "--retries", "1", "--low-level-retries", "1", "--contimeout", "5s", "--timeout", "60s"],
            self.env, cwd=self.cwd, timeout=120,
        )

    def ok(self, *args: str) -> Result:
        return assert_ok(self(*args))


@pytest.fixture
def rclone(start_proxy: Callable[..., Any], bucket: str, tmp_path: Path) -> Callable[..., Rclone]:
    server = start_proxy(bucket)
    return lambda **options: Rclone(tmp_path / "rclone", server.endpoint_url, **options)


def ls_sizes(output: str) -> Dict[str, int]:
    """{path: size} from `rclone ls` lines (`     1234 dir/file`)."""
    found: Dict[str, int] = {}
    for line in output.splitlines():
        size, _, name = line.strip().partition(" ")
        if size.isdigit():
            found[name] = int(size)
    return found


def test_copy_up_ls_copy_down(rclone: Callable[..., Rclone], bucket: str, direct: Any, tmp_path: Path) -> None:
    cli = rclone()
    folder = tmp_path / "up"
    files = {
        "a.bin": write_random(folder / "a.bin", 40_000),
        "sub/b c.txt": write_random(folder / "sub" / "b c.txt", 5),
        "sub/deeper/c.bin": write_random(folder / "sub" / "deeper" / "c.bin", 70_000),
    }
    cli.ok("copy", str(folder), f"osp:{bucket}/copied")
    for key, data in files.items():
        assert_stored_exactly(direct, bucket, f"copied/{key}", data)

    listed = cli.ok("ls", f"osp:{bucket}")
    assert ls_sizes(listed.stdout) == {f"copied/{k}": len(v) for k, v in files.items()}, listed.describe()

    # A second copy finds everything up to date (sizes and checksums agree).
    again = cli.ok("copy", "-v", str(folder), f"osp:{bucket}/copied")
    assert "Copied" not in again.output, again.describe()

    cli.ok("copy", f"osp:{bucket}/copied", str(tmp_path / "down"))
    for key, data in files.items():
        assert (tmp_path / "down" / key).read_bytes() == data
    cli.ok("check", str(folder), f"osp:{bucket}/copied")


def test_multipart_upload(rclone: Callable[..., Rclone], bucket: str, direct: Any, tmp_path: Path) -> None:
    cli = rclone()
    data = write_random(tmp_path / "big" / "big.bin", 12 * MIB + 1)
    cli.ok("copy", "--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M", str(tmp_path / "big"), f"osp:{bucket}")
    assert_stored_exactly(direct, bucket, "big.bin", data)
    assert part_count(direct, bucket, "big.bin") == 3
    cli.ok("copyto", f"osp:{bucket}/big.bin", str(tmp_path / "big.down"))
    assert (tmp_path / "big.down").read_bytes() == data


def test_lsd_lists_the_allowed_buckets(
    start_proxy: Callable[..., Any], make_bucket: Callable[..., str], tmp_path: Path
) -> None:
    """`rclone lsd osp:` (ListBuckets) shows the buckets the validator allows."""
    allowed, denied = make_bucket("allowed"), make_bucket("denied")
    server = start_proxy(allowed, denied, validator=lambda token, b: b == allowed)
    listed = Rclone(tmp_path / "rclone", server.endpoint_url).ok("lsd", "osp:")
    assert [line.split()[-1] for line in listed.stdout.splitlines() if line.strip()] == [allowed], listed.describe()


def test_wrong_secret_is_rejected_and_nothing_stored(
    rclone: Callable[..., Rclone], bucket: str, direct: Any, tmp_path: Path
) -> None:
    cli = rclone(secret_key="not-the-client-secret")
    write_random(tmp_path / "up" / "a.bin", 1_000)
    failed = assert_failed(cli("copy", str(tmp_path / "up"), f"osp:{bucket}"))
    assert "SignatureDoesNotMatch" in failed.output and "403" in failed.output, failed.describe()
    failed = assert_failed(cli("ls", f"osp:{bucket}"))
    assert "SignatureDoesNotMatch" in failed.output, failed.describe()
    assert stored_keys(direct, bucket) == []


def test_copy_over_https(
    start_proxy: Callable[..., Any], bucket: str, direct: Any, tmp_path: Path, tls_cert: Tuple[str, str]
) -> None:
    """Over the proxy's HTTPS listener, trusting its certificate with
    --ca-cert (not AWS_CA_BUNDLE, which rclone 1.60 chokes on)."""
    cert, key = tls_cert
    server = start_proxy(bucket, https_port=0, tls_cert_path=cert, tls_key_path=key)
    cli = Rclone(tmp_path / "rclone", https_endpoint(server))
    small = write_random(tmp_path / "up" / "small.bin", 30_000)
    big = write_random(tmp_path / "up" / "big.bin", 11 * MIB)
    cli.ok("copy", "--ca-cert", cert, "--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M", str(tmp_path / "up"), f"osp:{bucket}")
    assert_stored_exactly(direct, bucket, "small.bin", small)
    assert_stored_exactly(direct, bucket, "big.bin", big)
    assert part_count(direct, bucket, "big.bin") == 3
    cli.ok("copy", "--ca-cert", cert, f"osp:{bucket}", str(tmp_path / "down"))
    assert (tmp_path / "down" / "small.bin").read_bytes() == small
    assert (tmp_path / "down" / "big.bin").read_bytes() == big
