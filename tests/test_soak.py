"""The soak (tests/soak/) in its CI size: 30 s of 16 concurrent boto3
clients through a proxy in its own process, single PUTs up to 8 MiB plus
multipart uploads, every byte verified; then no error, goroutines and
open file descriptors back to where they started, and flat memory. The 5-minute, 64-client run is
``make soak``.

Nothing here depends on how fast the machine is: the load runs for a fixed
time and the checks count errors and compare idle readings; the first
threads run every operation kind once whatever the duration. The idle wait
after the load takes 90 to 135 s: the proxy keeps an idle backend
connection (an open fd) in its pool for 90 s, pruned every 45 s.

Also checks that the soak's own verification catches what it is meant to
(a wrong byte, a short body, a stale listing), against an in-memory fake S3.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import threading
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
from botocore.exceptions import ClientError

import soak
from soak import MiB, SeededBody, SoakConfig


def test_soak_30s(tmp_path: Path) -> None:
    binary = os.environ.get("OSP_VERSITYGW")
    if not binary:
        raise RuntimeError("OSP_VERSITYGW is not set: point it at the versitygw binary "
                           "(`make test-python` builds build/bin/versitygw and sets it)")
    # versitygw without keep-alive: the proxy's pooled backend connections
    # would otherwise hold file descriptors until their 90 s idle timeout,
    # which the end check waits out. `make soak` keeps them (and waits).
    cfg = SoakConfig(duration=30, clients=16, max_size=8 * MiB, versitygw=binary, seed=7,
                     json_path=str(tmp_path / "soak.json"), quiet=True, backend_keep_alive=False)
    summary = soak.run_soak(cfg)
    report = soak.format_summary(summary)
    print(report)
    assert summary.errors_total == 0, report
    assert summary.error_messages == [], report
    assert all(summary.ops[kind] > 0 for kind in soak.KINDS), report
    assert summary.bytes_up > 0 and summary.bytes_down > 0, report
    assert not summary.failed_checks(), report
    assert summary.passed, report
    assert (tmp_path / "soak.json").is_file()


# --------------------------------------------------------------------------
# the generated bodies


def test_seeded_bodies_are_deterministic_windows() -> None:
    size = 3 * soak.BLOCK + 12345
    whole = SeededBody(11, 0, size).read()
    assert len(whole) == size
    assert SeededBody(11, 0, size).read() == whole, "same seed, same bytes"
    assert SeededBody(12, 0, size).read() != whole, "another seed, other bytes"
    assert hashlib.sha256(whole).hexdigest() == soak.body_digest(11, 0, size)
    # Windows are slices of the whole, whatever the read sizes.
    rng = random.Random(3)
    for _ in range(50):
        start = rng.randrange(size)
        end = rng.randint(start, size)
        window = SeededBody(11, start, end)
        pieces = []
        while True:
            piece = window.read(rng.choice([1, 100, 8192, soak.BLOCK + 1, 10 ** 6]))
            if not piece:
                break
            pieces.append(piece)
        assert b"".join(pieces) == whole[start:end]
        assert soak.body_digest(11, start, end) == hashlib.sha256(whole[start:end]).hexdigest()
    # Blocks name their seed and index: no two blocks alike.
    blocks = {whole[i:i + soak.BLOCK] for i in range(0, size, soak.BLOCK)}
    assert len(blocks) == len(range(0, size, soak.BLOCK))


def test_seeded_body_is_a_seekable_file() -> None:
    body = SeededBody(5, 100, 100 + 5000)
    assert body.seek(0, io.SEEK_END) == 5000 and body.tell() == 5000
    assert body.read(10) == b""
    assert body.seek(-10, io.SEEK_END) == 4990
    tail = body.read()
    body.seek(0)
    assert body.read()[-10:] == tail
    buffer = bytearray(7)
    body.seek(3)
    assert body.readinto(buffer) == 7 and bytes(buffer) == SeededBody(5, 103, 110).read()
    with pytest.raises(ValueError):
        body.seek(-1)


def test_sizes_stay_in_bounds() -> None:
    rng = random.Random(1)
    for max_size in (soak.KiB, 8 * MiB, 64 * MiB):
        sizes = [soak.pick_size(rng, max_size) for _ in range(5000)]
        assert min(sizes) >= min(soak.KiB, max_size) and max(sizes) <= max_size
        assert sum(s <= 64 * soak.KiB for s in sizes) > len(sizes) // 2, "mostly small"


# --------------------------------------------------------------------------
# the checks catch faults (an in-memory S3 that can lie)


class _Body:
    def __init__(self, data: bytes) -> None:
        self.stream = io.BytesIO(data)

    def read(self, amt: Optional[int] = None) -> bytes:
        return self.stream.read(amt)

    def close(self) -> None:
        pass


def _ok(status: int = 200, **fields: Any) -> Dict[str, Any]:
    return {"ResponseMetadata": {"HTTPStatusCode": status}, **fields}


class FakeS3:
    """Just enough of a boto3 S3 client for a Worker; ``fault`` makes the
    next GET flip a byte ("flip"), lose one ("short"), or a LIST forget a
    key ("stale")."""

    def __init__(self) -> None:
        self.objects: Dict[str, bytes] = {}
        self.fault: Optional[str] = None

    def put_object(self, Bucket: str, Key: str, Body: Any) -> Dict[str, Any]:
        data = Body.read()
        self.objects[Key] = data
        return _ok(ETag=f'"{hashlib.md5(data).hexdigest()}"')

    def get_object(self, Bucket: str, Key: str, Range: Optional[str] = None) -> Dict[str, Any]:
        data = self.objects[Key]
        etag = f'"{hashlib.md5(data).hexdigest()}"'
        if self.fault == "flip":
            data = bytes([data[0] ^ 1]) + data[1:]
        elif self.fault == "short":
            data = data[:-1]
        return _ok(ContentLength=len(self.objects[Key]), ETag=etag, Body=_Body(data))

    def head_object(self, Bucket: str, Key: str) -> Dict[str, Any]:
        if Key not in self.objects:
            raise ClientError({"Error": {"Code": "404"}, "ResponseMetadata": {"HTTPStatusCode": 404}}, "HeadObject")
        return _ok(ContentLength=len(self.objects[Key]), ETag=f'"{hashlib.md5(self.objects[Key]).hexdigest()}"')

    def list_objects_v2(self, **kwargs: Any) -> Dict[str, Any]:
        keys = sorted(k for k in self.objects if k.startswith(kwargs["Prefix"]))
        if self.fault == "stale":
            keys = keys[1:]
        contents = [{"Key": k, "Size": len(self.objects[k]), "ETag": f'"{hashlib.md5(self.objects[k]).hexdigest()}"'}
                    for k in keys]
        return _ok(Contents=contents, IsTruncated=False)

    def delete_object(self, Bucket: str, Key: str) -> Dict[str, Any]:
        self.objects.pop(Key, None)
        return _ok(204)


@pytest.mark.parametrize("fault, kind", [("flip", "get"), ("short", "get"), ("stale", "list"), (None, "get")])
def test_worker_checks_catch_faults(fault: Optional[str], kind: str) -> None:
    stats = soak.Stats()
    fake = FakeS3()
    worker = soak.Worker(0, SoakConfig(max_size=2 * MiB), fake, stats, threading.Event())
    for size in (2000, 70000):
        worker.attempt("put", size)
    assert stats.ops["put"] == 2 and not stats.errors, stats.messages
    fake.fault = fault
    worker.attempt(kind)
    if fault is None:
        assert stats.ops[kind] == 1 and not stats.errors, stats.messages
    else:
        assert stats.errors[kind] == 1 and stats.ops[kind] == 0, stats.messages
        assert len(stats.messages) == 1 and stats.messages[0].split("] ", 1)[1].startswith(f"{kind}: ")
    # A deleted object must be gone: HEAD answering 200 afterwards is an error.
    fake.fault = None
    setattr(fake, "delete_object", lambda Bucket, Key: _ok(204))  # "deletes" nothing
    before = stats.errors["delete"]
    worker.attempt("delete")
    assert stats.errors["delete"] == before + 1, stats.messages
