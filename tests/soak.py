#!/usr/bin/env python3
"""A bounded soak test of the proxy: many concurrent boto3 clients for a
fixed duration, every byte verified, the proxy's memory and goroutines
sampled throughout.

    build/venv/bin/python tests/soak.py --duration 300 --clients 64 [--json FILE]
    make soak                                   (the same, 5 minutes)

Starts, all on 127.0.0.1 in a temporary directory (removed on exit):

* versitygw (``OSP_VERSITYGW`` or build/bin/versitygw, posix backend,
  ``--keep-alive`` unless ``--no-backend-keep-alive``: the proxy's backend
  connection pool is exercised as against a real S3);
* the proxy as its own process, ``python -m object_storage_proxy serve
  --config soak.toml`` (a generated file granting two client keys), so that
  /proc/<pid>/status is the proxy's alone: VmRSS every second, VmHWM for the
  peak, and ``go_goroutines`` from its admin listener's ``/metrics``.

Each client thread has its own boto3 client (no retries: every failure is
visible) and its own key prefix, and runs a weighted mix of PUT (sometimes
overwriting), GET, ranged GET, HEAD, LIST (paginated, checked against what
the thread stored), presigned GET (fetched with urllib), DELETE (then HEAD
must say 404) and multipart upload (3 parts of 5 MiB and a small last part,
read back after completion). Bodies are generated on the fly from (seed,
offset) and never held whole; downloads are hashed as they stream and
compared with the expected SHA-256. ``--max-size`` bounds single PUTs
(sizes 1 KiB up to it, mostly small); multipart objects are always 3 x 5
MiB + a tail (S3's minimum part size).

After the duration the clients are closed and the proxy left idle until its
goroutines, open file descriptors and RSS are back near where they started
(or ``--settle`` seconds passed: the proxy keeps an idle backend connection
in its pool for 90 s, pruned every 45 s). The run fails (exit 1) on any
client-visible error, if the goroutines or the open fds end more than
``--max-goroutine-growth`` above the start, if RSS ends more than
``--max-rss-growth`` MiB above the start, if an operation kind never ran,
or if the proxy died. Only stdlib and boto3 are used.
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import io
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

ROOT = Path(__file__).resolve().parent.parent
KiB = 1 << 10
MiB = 1 << 20
REGION = "us-east-1"
BUCKET = "soak-bucket"
BACKEND_KEY, BACKEND_SECRET = "soak-backend-root", "soak-backend-root-secret-0123456789"
# The keys the proxy's [keystore] grants its clients; threads alternate them.
CLIENT_KEYS: Dict[str, str] = {
    "SOAKCLIENTAAAAAAAAAA": "soak-client-secret-aaaaaaaaaaaaaaaaaaaa",
    "SOAKCLIENTBBBBBBBBBB": "soak-client-secret-bbbbbbbbbbbbbbbbbbbb",
}
PART_SIZE = 5 * MiB
MULTIPART_PARTS = 3  # of PART_SIZE, plus a small last part
READ_CHUNK = 1 * MiB

# Operation kinds and their weights in the mix.
WEIGHTS: Dict[str, int] = {
    "put": 22,
    "get": 24,
    "range_get": 5,
    "head": 12,
    "list": 7,
    "presign_get": 10,
    "delete": 14,
    "multipart": 3,
}
KINDS: Tuple[str, ...] = tuple(WEIGHTS)
# The first few threads run every kind once before the random mix (and
# finish it even past the deadline), so a short run on a slow machine still
# covers every kind.
TOUR: Tuple[str, ...] = ("put", "get", "range_get", "head", "presign_get", "list", "multipart", "get", "delete")
TOUR_THREADS = 4


# --------------------------------------------------------------------------
# configuration and summary


@dataclass
class SoakConfig:
    duration: float = 300.0
    clients: int = 64
    max_size: int = 64 * MiB
    seed: int = 1
    versitygw: str = ""
    json_path: Optional[str] = None
    backend_keep_alive: bool = True
    idle: float = 5.0  # idle seconds before the first end reading
    settle: float = 180.0  # longest idle wait for goroutines, fds and RSS to come back
    max_goroutine_growth: int = 5  # also the open fds' limit
    max_rss_growth_mib: float = 64.0
    max_objects_per_client: int = 40
    store_budget: int = 0  # bytes kept per client before deleting; 0: max(3 * max_size, 48 MiB)
    sample_interval: float = 1.0
    tmp_dir: Optional[str] = None
    keep_tmp: bool = False
    quiet: bool = False

    def budget(self) -> int:
        return self.store_budget or max(3 * self.max_size, 48 * MiB)


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class Summary:
    config: Dict[str, Any]
    elapsed_s: float = 0.0
    ops: Dict[str, int] = field(default_factory=dict)
    ops_total: int = 0
    ops_per_s: float = 0.0
    errors: Dict[str, int] = field(default_factory=dict)
    errors_total: int = 0
    error_messages: List[str] = field(default_factory=list)
    bytes_up: int = 0
    bytes_down: int = 0
    throughput_mib_s: float = 0.0
    latency_ms: Dict[str, Dict[str, float]] = field(default_factory=dict)
    rss_mib: Dict[str, float] = field(default_factory=dict)  # start, peak, end
    goroutines: Dict[str, float] = field(default_factory=dict)  # start, peak, end
    open_fds: Dict[str, int] = field(default_factory=dict)  # start, peak, end
    idle_before_end_s: float = 0.0
    proxy_exit_code: Optional[int] = None
    proxy_log: Dict[str, Any] = field(default_factory=dict)
    checks: List[Check] = field(default_factory=list)
    passed: bool = False
    samples: List[Dict[str, Any]] = field(default_factory=list)

    def failed_checks(self) -> List[Check]:
        return [c for c in self.checks if not c.ok]

    def to_json(self) -> Dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------
# deterministic bodies


BLOCK = 64 * KiB
_POOL = random.Random(0x5EED50A4).randbytes(1 * MiB + BLOCK)
_M64 = (1 << 64) - 1


def _block(seed: int, index: int) -> bytes:
    """Block ``index`` of the body of ``seed``: 16 bytes naming (seed,
    index), then a stretch of a fixed random pool chosen by both. Any two
    blocks of any two bodies differ, so a misplaced or foreign block shows."""
    h = ((seed * 0x9E3779B97F4A7C15) ^ (index * 0xC2B2AE3D27D4EB4F)) & _M64
    h ^= h >> 29
    offset = h % (len(_POOL) - BLOCK)
    return struct.pack(">QQ", seed & _M64, index) + _POOL[offset + 16: offset + BLOCK]


class SeededBody(io.RawIOBase):
    """Bytes ``start`` to ``end`` of the body of ``seed``, generated as they
    are read: seekable (botocore hashes a body, then rewinds it), never more
    than one 64 KiB block in memory."""

    def __init__(self, seed: int, start: int, end: int) -> None:
        super().__init__()
        if not 0 <= start <= end:
            raise ValueError(f"bad window {start}-{end}")
        self.seed, self.start, self.end = seed, start, end
        self.pos = start
        self._index = -1
        self._cached = b""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos - self.start

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: self.start, io.SEEK_CUR: self.pos, io.SEEK_END: self.end}[whence]
        if base + offset < self.start:
            raise ValueError("seek before the start")
        self.pos = base + offset
        return self.pos - self.start

    def _get(self, index: int) -> bytes:
        if index != self._index:
            self._index, self._cached = index, _block(self.seed, index)
        return self._cached

    def read(self, size: Optional[int] = -1) -> bytes:
        left = self.end - self.pos
        if left <= 0:
            return b""
        want = left if size is None or size < 0 else min(size, left)
        parts: List[bytes] = []
        while want > 0:
            index, within = divmod(self.pos, BLOCK)
            piece = self._get(index)[within: within + want]
            parts.append(piece)
            self.pos += len(piece)
            want -= len(piece)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)


def body_digest(seed: int, start: int, end: int) -> str:
    """SHA-256 (hex) of bytes ``start`` to ``end`` of the body of ``seed``."""
    digest = hashlib.sha256()
    body = SeededBody(seed, start, end)
    while True:
        chunk = body.read(READ_CHUNK)
        if not chunk:
            return digest.hexdigest()
        digest.update(chunk)


def stream_digest(read: Callable[[int], bytes]) -> Tuple[str, int]:
    """Reads a response to its end in 1 MiB chunks: (SHA-256 hex, length)."""
    digest = hashlib.sha256()
    total = 0
    while True:
        chunk = read(READ_CHUNK)
        if not chunk:
            return digest.hexdigest(), total
        digest.update(chunk)
        total += len(chunk)


def pick_size(rng: random.Random, max_size: int) -> int:
    """Mostly small: 70% 1-64 KiB, 22% 64 KiB-1 MiB, 6.5% 1-8 MiB, 1.5%
    8 MiB up to max_size (log-uniform within each band; bands above
    max_size are cut to it)."""
    r = rng.random()
    low, high = (KiB, 64 * KiB) if r < 0.70 else (64 * KiB, MiB) if r < 0.92 else \
        (MiB, 8 * MiB) if r < 0.985 else (8 * MiB, 64 * MiB)
    high = min(high, max_size)
    low = min(low, high)
    return int(round(math.exp(rng.uniform(math.log(low), math.log(high)))))


def human_bytes(n: float) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", MiB), ("KiB", KiB)):
        if abs(n) >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


# --------------------------------------------------------------------------
# processes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _parent_death_signal() -> Optional[Callable[[], None]]:
    """A preexec_fn that has a child killed when this process dies (even
    by SIGKILL), so no versitygw or proxy outlives a killed soak."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None

    def set_pdeathsig() -> None:
        prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG

    return set_pdeathsig


def log_tail(path: Path, size: int = 3000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, io.SEEK_END)
            f.seek(max(0, f.tell() - size))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


class Child:
    """A child process, its output to a log file; stopped by its own pid."""

    def __init__(self, name: str, args: Sequence[str], log_path: Path, env: Dict[str, str]) -> None:
        self.name, self.log_path = name, log_path
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(list(args), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         env=env, preexec_fn=_parent_death_signal())

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 20.0) -> Optional[int]:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def wait_until(what: str, check: Callable[[], bool], child: Child, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.alive():
            raise RuntimeError(f"{child.name} exited ({child.proc.returncode}) before {what}:\n{log_tail(child.log_path)}")
        if check():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{child.name}: no {what} within {timeout:g}s:\n{log_tail(child.log_path)}")


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _toml_string(value: str) -> str:
    return json.dumps(value)  # a JSON string is a TOML basic string


def proxy_config(backend_port: int) -> str:
    lines = [
        "[server]",
        "http_port = 0",
        "admin_port = 0",
        'bind_address = "127.0.0.1"',
        'log_level = "info"',
        "",
        "[keystore]",
        *(f"{_toml_string(k)} = {_toml_string(s)}" for k, s in CLIENT_KEYS.items()),
        "",
        f"[buckets.{BUCKET}]",
        'host = "127.0.0.1"',
        f"port = {backend_port}",
        f"region = {_toml_string(REGION)}",
        'scheme = "http"',
        'addressing_style = "path"',
        f"access_key = {_toml_string(BACKEND_KEY)}",
        f"secret_key = {_toml_string(BACKEND_SECRET)}",
        "",
    ]
    return "\n".join(lines)


# An opener that never goes through an environment HTTP proxy.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_get(url: str, timeout: float = 30.0) -> Tuple[int, bytes]:
    try:
        with _OPENER.open(url, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


_GOROUTINES = re.compile(r"^go_goroutines(?:\{[^}]*\})?\s+(\S+)\s*$", re.M)


def goroutines(admin_endpoint: str) -> int:
    """go_goroutines from the /metrics of the proxy's admin listener."""
    status, body = http_get(admin_endpoint + "/metrics", timeout=30)
    if status != 200:
        raise RuntimeError(f"/metrics answered {status}: {body[:200]!r}")
    match = _GOROUTINES.search(body.decode(errors="replace"))
    if not match:
        raise RuntimeError("/metrics has no go_goroutines")
    return int(float(match.group(1)))


def proc_status_kib(pid: int, name: str) -> int:
    """A ``kB`` field of /proc/<pid>/status (VmRSS, VmHWM); 0 once gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def reset_hwm(pid: int) -> None:
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")  # VmHWM := VmRSS
    except OSError:
        pass


# --------------------------------------------------------------------------
# statistics


class Stats:
    """Counters shared by the client threads."""

    MAX_MESSAGES = 20

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ops: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.messages: List[str] = []
        self.latencies: Dict[str, List[float]] = {kind: [] for kind in KINDS}
        self.bytes_up = 0
        self.bytes_down = 0

    def ok(self, kind: str, seconds: float) -> None:
        with self.lock:
            self.ops[kind] += 1
            self.latencies[kind].append(seconds)

    def error(self, kind: str, message: str) -> None:
        with self.lock:
            self.errors[kind] += 1
            if len(self.messages) < self.MAX_MESSAGES:
                self.messages.append(f"[{time.strftime('%H:%M:%S')}] {kind}: {message}"[:1000])

    def moved(self, up: int = 0, down: int = 0) -> None:
        with self.lock:
            self.bytes_up += up
            self.bytes_down += down


def describe(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        meta = exc.response.get("ResponseMetadata", {})
        err = exc.response.get("Error", {})
        return (f"ClientError HTTP {meta.get('HTTPStatusCode')} {err.get('Code')}: {err.get('Message')} "
                f"(request id {meta.get('RequestId')})")
    return f"{type(exc).__name__}: {exc}"


class CheckFailed(Exception):
    """A response that arrived but was wrong (status, length, bytes)."""


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def status_of(response: Dict[str, Any]) -> int:
    return int(response["ResponseMetadata"]["HTTPStatusCode"])


def percentile(values: List[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --------------------------------------------------------------------------
# clients


def make_client(endpoint: str, access_key: str, secret_key: str) -> Any:
    """boto3 through the proxy: path style, SigV4, no retries, no
    environment proxy."""
    config = Config(
        region_name=REGION,
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=10,
        read_timeout=120,
        proxies={},
        max_pool_connections=2,
    )
    client = boto3.session.Session().client(
        "s3", endpoint_url=endpoint, aws_access_key_id=access_key, aws_secret_access_key=secret_key,
        region_name=REGION, config=config,
    )
    # botocore/botocore#3755: no Expect: 100-continue on an empty body (see
    # tests/helpers.py); bodies here are never empty, but CompleteMultipartUpload
    # and the like keep their default.
    client.meta.events.register("before-send.s3", _no_expect_for_empty_bodies)
    return client


def _no_expect_for_empty_bodies(request: Any, **kwargs: Any) -> None:
    if request.headers.get("Content-Length") == "0":
        request.headers.pop("Expect", None)


@dataclass
class Stored:
    key: str
    seed: int
    size: int
    digest: str
    etag: str


class Worker:
    """One client thread: its own boto3 client, its own key prefix, a record
    of what it stored there."""

    def __init__(self, index: int, cfg: SoakConfig, client: Any, stats: Stats, stop: threading.Event) -> None:
        self.index, self.cfg, self.client, self.stats, self.stop = index, cfg, client, stats, stop
        self.rng = random.Random(f"{cfg.seed}-{index}")
        self.prefix = f"w{index:03d}/"
        self.objects: Dict[str, Stored] = {}
        self.uncertain: set[str] = set()  # keys an error left in an unknown state
        self.counter = 0
        self.thread = threading.Thread(target=self.run, name=f"soak-{index}", daemon=True)

    # -- the loop -----------------------------------------------------------

    def run(self) -> None:
        if self.index < TOUR_THREADS:
            for n, kind in enumerate(TOUR):
                size = self.cfg.max_size if (self.index == 0 and n == 0) else None
                self.attempt(kind, size)
        while not self.stop.is_set():
            self.attempt(self.choose())

    def attempt(self, kind: str, size: Optional[int] = None) -> None:
        op: Callable[..., None] = getattr(self, f"op_{kind}")
        if kind not in ("put", "multipart", "list") and not self.objects:
            kind, op = "put", self.op_put
        started = time.monotonic()
        try:
            op(size) if kind == "put" else op()
        except Exception as exc:  # noqa: BLE001 - every failure is counted and reported
            self.stats.error(kind, f"{self.prefix} {describe(exc)}")
        else:
            self.stats.ok(kind, time.monotonic() - started)

    def stored_bytes(self) -> int:
        return sum(o.size for o in self.objects.values())

    def choose(self) -> str:
        if len(self.objects) >= self.cfg.max_objects_per_client or self.stored_bytes() > self.cfg.budget():
            return "delete"
        return self.rng.choices(KINDS, weights=[WEIGHTS[k] for k in KINDS])[0]

    def new_seed(self) -> int:
        self.counter += 1
        return ((self.cfg.seed & 0xFFFF) << 48) | (self.index << 32) | self.counter

    def pick(self) -> Stored:
        return self.objects[self.rng.choice(sorted(self.objects))]

    # -- operations -----------------------------------------------------------

    def op_put(self, size: Optional[int] = None) -> None:
        size = size or pick_size(self.rng, self.cfg.max_size)
        seed = self.new_seed()
        if self.objects and self.rng.random() < 0.1:
            key = self.pick().key  # an overwrite
        else:
            key = f"{self.prefix}{self.counter:08d}-{size}"
        self.objects.pop(key, None)
        self.uncertain.add(key)
        response = self.client.put_object(Bucket=BUCKET, Key=key, Body=SeededBody(seed, 0, size))
        self.stats.moved(up=size)
        expect(status_of(response) == 200, f"PUT {key}: HTTP {status_of(response)}")
        etag = response.get("ETag", "")
        expect(bool(etag), f"PUT {key}: no ETag")
        self.objects[key] = Stored(key, seed, size, body_digest(seed, 0, size), etag)
        self.uncertain.discard(key)

    def op_get(self) -> None:
        obj = self.pick()
        response = self.client.get_object(Bucket=BUCKET, Key=obj.key)
        body = response["Body"]
        try:
            expect(status_of(response) == 200, f"GET {obj.key}: HTTP {status_of(response)}")
            expect(response["ContentLength"] == obj.size,
                   f"GET {obj.key}: Content-Length {response['ContentLength']}, stored {obj.size}")
            expect(response.get("ETag") == obj.etag, f"GET {obj.key}: ETag {response.get('ETag')}, PUT gave {obj.etag}")
            digest, length = stream_digest(body.read)
        finally:
            body.close()
        self.stats.moved(down=length)
        expect(length == obj.size, f"GET {obj.key}: {length} bytes, stored {obj.size}")
        expect(digest == obj.digest, f"GET {obj.key}: {obj.size} bytes with the wrong SHA-256 {digest}")

    def op_range_get(self) -> None:
        obj = self.pick()
        first = self.rng.randrange(obj.size)
        last = min(obj.size - 1, first + self.rng.randint(0, MiB))
        response = self.client.get_object(Bucket=BUCKET, Key=obj.key, Range=f"bytes={first}-{last}")
        body = response["Body"]
        want = f"bytes {first}-{last}/{obj.size}"
        try:
            expect(status_of(response) == 206, f"GET {obj.key} bytes={first}-{last}: HTTP {status_of(response)}")
            expect(response.get("ContentRange") == want,
                   f"GET {obj.key}: Content-Range {response.get('ContentRange')!r}, wanted {want!r}")
            digest, length = stream_digest(body.read)
        finally:
            body.close()
        self.stats.moved(down=length)
        expect(length == last - first + 1, f"GET {obj.key} {want}: {length} bytes")
        expect(digest == body_digest(obj.seed, first, last + 1), f"GET {obj.key} {want}: wrong SHA-256")

    def op_head(self) -> None:
        obj = self.pick()
        response = self.client.head_object(Bucket=BUCKET, Key=obj.key)
        expect(status_of(response) == 200, f"HEAD {obj.key}: HTTP {status_of(response)}")
        expect(response["ContentLength"] == obj.size,
               f"HEAD {obj.key}: Content-Length {response['ContentLength']}, stored {obj.size}")
        expect(response.get("ETag") == obj.etag, f"HEAD {obj.key}: ETag {response.get('ETag')}, PUT gave {obj.etag}")

    def op_list(self) -> None:
        page_size = self.rng.choice([7, 100, 1000])
        listed: Dict[str, Tuple[int, str]] = {}
        token: Optional[str] = None
        pages = 0
        while True:
            kwargs: Dict[str, Any] = {"Bucket": BUCKET, "Prefix": self.prefix, "MaxKeys": page_size}
            if token:
                kwargs["ContinuationToken"] = token
            response = self.client.list_objects_v2(**kwargs)
            pages += 1
            expect(status_of(response) == 200, f"LIST {self.prefix}: HTTP {status_of(response)}")
            contents = response.get("Contents", [])
            expect(len(contents) <= page_size, f"LIST {self.prefix}: {len(contents)} keys in a page of {page_size}")
            for item in contents:
                expect(item["Key"] not in listed, f"LIST {self.prefix}: {item['Key']} listed twice")
                listed[item["Key"]] = (int(item["Size"]), str(item.get("ETag", "")))
            if not response.get("IsTruncated"):
                break
            token = response.get("NextContinuationToken")
            expect(bool(token), f"LIST {self.prefix}: truncated without a continuation token")
            expect(pages < 1000, f"LIST {self.prefix}: more than 1000 pages")
        missing = sorted(set(self.objects) - set(listed))
        extra = sorted(set(listed) - set(self.objects) - self.uncertain)
        expect(not missing, f"LIST {self.prefix}: stored keys missing: {missing[:5]}")
        expect(not extra, f"LIST {self.prefix}: keys never stored (or deleted): {extra[:5]}")
        for key, obj in self.objects.items():
            size, etag = listed[key]
            expect(size == obj.size, f"LIST {key}: Size {size}, stored {obj.size}")
            expect(etag == obj.etag, f"LIST {key}: ETag {etag}, PUT gave {obj.etag}")

    def op_presign_get(self) -> None:
        obj = self.pick()
        url = self.client.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": obj.key},
                                                 ExpiresIn=900)
        try:
            with _OPENER.open(url, timeout=120) as response:
                expect(response.status == 200, f"presigned GET {obj.key}: HTTP {response.status}")
                expect(response.headers.get("Content-Length") == str(obj.size),
                       f"presigned GET {obj.key}: Content-Length {response.headers.get('Content-Length')}")
                digest, length = stream_digest(response.read)
        except urllib.error.HTTPError as exc:
            raise CheckFailed(f"presigned GET {obj.key}: HTTP {exc.code}: {exc.read()[:300]!r}") from None
        self.stats.moved(down=length)
        expect(length == obj.size, f"presigned GET {obj.key}: {length} bytes, stored {obj.size}")
        expect(digest == obj.digest, f"presigned GET {obj.key}: wrong SHA-256")

    def op_delete(self) -> None:
        if len(self.objects) >= self.cfg.max_objects_per_client or self.stored_bytes() > self.cfg.budget():
            obj = max(self.objects.values(), key=lambda o: o.size)
        else:
            obj = self.pick()
        del self.objects[obj.key]
        self.uncertain.add(obj.key)
        response = self.client.delete_object(Bucket=BUCKET, Key=obj.key)
        expect(status_of(response) == 204, f"DELETE {obj.key}: HTTP {status_of(response)}")
        try:
            self.client.head_object(Bucket=BUCKET, Key=obj.key)
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            expect(status == 404, f"HEAD after DELETE {obj.key}: {describe(exc)}")
        else:
            raise CheckFailed(f"HEAD after DELETE {obj.key}: the object is still there")
        self.uncertain.discard(obj.key)

    def op_multipart(self) -> None:
        seed = self.new_seed()
        sizes = [PART_SIZE] * MULTIPART_PARTS + [self.rng.randint(1, 512 * KiB)]
        total = sum(sizes)
        key = f"{self.prefix}{self.counter:08d}-mpu-{total}"
        self.uncertain.add(key)
        upload_id = self.client.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
        try:
            parts: List[Dict[str, Any]] = []
            offset = 0
            for number, size in enumerate(sizes, 1):
                response = self.client.upload_part(Bucket=BUCKET, Key=key, UploadId=upload_id, PartNumber=number,
                                                   Body=SeededBody(seed, offset, offset + size))
                self.stats.moved(up=size)
                expect(status_of(response) == 200, f"UploadPart {key} #{number}: HTTP {status_of(response)}")
                parts.append({"PartNumber": number, "ETag": response["ETag"]})
                offset += size
            done = self.client.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload_id,
                                                         MultipartUpload={"Parts": parts})
        except BaseException:
            try:
                self.client.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload_id)
            except Exception:  # noqa: BLE001 - the first failure is the one reported
                pass
            raise
        expect(status_of(done) == 200, f"CompleteMultipartUpload {key}: HTTP {status_of(done)}")
        etag = str(done.get("ETag", ""))
        expect(etag.endswith(f'-{len(sizes)}"'), f"CompleteMultipartUpload {key}: ETag {etag!r}")
        obj = Stored(key, seed, total, body_digest(seed, 0, total), etag)
        self.objects[key] = obj
        self.uncertain.discard(key)
        # Read it back whole.
        response = self.client.get_object(Bucket=BUCKET, Key=key)
        body = response["Body"]
        try:
            expect(response["ContentLength"] == total, f"GET {key}: Content-Length {response['ContentLength']}")
            expect(response.get("ETag") == etag, f"GET {key}: ETag {response.get('ETag')}, completed as {etag}")
            digest, length = stream_digest(body.read)
        finally:
            body.close()
        self.stats.moved(down=length)
        expect(length == total and digest == obj.digest,
               f"GET {key} after CompleteMultipartUpload: {length} bytes of {total}, SHA-256 match: {digest == obj.digest}")


# --------------------------------------------------------------------------
# sampling


class Sampler:
    """The proxy's VmRSS, open fds and goroutines every ``interval`` s."""

    def __init__(self, pid: int, endpoint: str, interval: float, stats: Stats, t0: float) -> None:
        self.pid, self.endpoint, self.interval, self.stats, self.t0 = pid, endpoint, interval, stats, t0
        self.samples: List[Dict[str, Any]] = []
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self.run, name="soak-sampler", daemon=True)

    def sample(self, phase: str) -> Dict[str, Any]:
        reading: Dict[str, Any] = {
            "t": round(time.monotonic() - self.t0, 2),
            "rss_mib": round(proc_status_kib(self.pid, "VmRSS") / 1024, 1),
            "fds": open_fds(self.pid),
        }
        try:
            reading["goroutines"] = goroutines(self.endpoint)
        except Exception as exc:  # noqa: BLE001 - the admin endpoint failing is a proxy failure
            self.stats.error("metrics", describe(exc))
            reading["goroutines"] = -1
        reading["phase"] = phase
        self.samples.append(reading)
        return reading

    def run(self) -> None:
        while not self.stop_event.wait(self.interval):
            self.sample("load")

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join()


# --------------------------------------------------------------------------
# the run


def scan_proxy_log(path: Path) -> Dict[str, Any]:
    """WARN/ERROR lines and 5xx access records in the proxy's output."""
    counts: Counter[str] = Counter()
    first: List[str] = []
    level = re.compile(r'(?:\blevel=|"level":\s*")(WARN|ERROR)\b')
    status5 = re.compile(r'(?:\bstatus=|"status":\s*)(5\d\d)\b')
    try:
        with open(path, "r", errors="replace") as f:
            for line in f:
                hit = level.search(line)
                five = status5.search(line) if "request" in line else None
                if hit:
                    counts[hit.group(1)] += 1
                if five:
                    counts["5xx"] += 1
                if (hit or five) and len(first) < 10:
                    first.append(line.strip()[:500])
    except OSError as exc:
        return {"error": str(exc)}
    return {"warn": counts["WARN"], "error": counts["ERROR"], "status_5xx": counts["5xx"], "first": first}


def log(cfg: SoakConfig, message: str) -> None:
    if not cfg.quiet:
        print(f"soak: {message}", file=sys.stderr, flush=True)


def find_versitygw(given: str) -> str:
    binary = given or os.environ.get("OSP_VERSITYGW") or str(ROOT / "build" / "bin" / "versitygw")
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        raise RuntimeError(f"versitygw {binary!r} is not an executable file (set OSP_VERSITYGW or run "
                           "`make build/bin/versitygw`)")
    return binary


def run_soak(cfg: SoakConfig) -> Summary:
    """Runs one soak; the summary's ``passed`` says whether every check held.
    Processes and the temporary directory are gone when it returns (or
    raises)."""
    if cfg.clients < 1 or cfg.duration <= 0 or cfg.max_size < KiB:
        raise ValueError("clients >= 1, duration > 0 and max_size >= 1 KiB")
    binary = find_versitygw(cfg.versitygw)
    summary = Summary(config={k: v for k, v in asdict(cfg).items() if k not in ("quiet",)})
    summary.config["versitygw"] = binary
    base = Path(tempfile.mkdtemp(prefix="osp-soak-", dir=cfg.tmp_dir))
    children: List[Child] = []
    workers: List[Worker] = []
    stop = threading.Event()
    sampler: Optional[Sampler] = None
    try:
        # versitygw
        data = base / "data"
        data.mkdir()
        backend_port = free_port()
        env = dict(os.environ, ROOT_ACCESS_KEY=BACKEND_KEY, ROOT_SECRET_KEY=BACKEND_SECRET)
        args = [binary, "--port", f"127.0.0.1:{backend_port}", "--quiet"]
        if cfg.backend_keep_alive:
            args.append("--keep-alive")
        gateway = Child("versitygw", [*args, "posix", str(data)], base / "versitygw.log", env)
        children.append(gateway)
        wait_until(f"listening on 127.0.0.1:{backend_port}", lambda: port_open(backend_port), gateway, 20)
        direct = boto3.session.Session().client(
            "s3", endpoint_url=f"http://127.0.0.1:{backend_port}", aws_access_key_id=BACKEND_KEY,
            aws_secret_access_key=BACKEND_SECRET, region_name=REGION,
            config=Config(s3={"addressing_style": "path"}, proxies={}, retries={"total_max_attempts": 1}),
        )
        direct.create_bucket(Bucket=BUCKET)
        direct.close()

        # the proxy, its own process
        config_path = base / "soak.toml"
        config_path.write_text(proxy_config(backend_port))
        proxy_log = base / "proxy.log"
        proxy_env = dict(os.environ, PYTHONUNBUFFERED="1")
        for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
            proxy_env.pop(name, None)
        proxy = Child("proxy", [sys.executable, "-m", "object_storage_proxy", "serve", "--config", str(config_path)],
                      proxy_log, proxy_env)
        children.append(proxy)
        serving = re.compile(r"serving .* on (http://127\.0\.0\.1:\d+).* admin_port=(\d+)")
        endpoint_box: List[str] = []

        def served() -> bool:
            match = serving.search(log_tail(proxy_log, 20000))
            if match:
                endpoint_box[:] = [match.group(1), f"http://127.0.0.1:{match.group(2)}"]
            return bool(match)

        wait_until("'serving' log line", served, proxy, 60)
        endpoint, admin_endpoint = endpoint_box
        wait_until("readyz 200", lambda: http_get(admin_endpoint + "/readyz", timeout=5)[0] == 200, proxy, 30)
        log(cfg, f"versitygw on 127.0.0.1:{backend_port} (keep-alive {'on' if cfg.backend_keep_alive else 'off'}), "
                 f"proxy pid {proxy.pid} on {endpoint}; logs in {base}")

        # clients (made before the start readings: creating them is slow)
        stats = Stats()
        keys = list(CLIENT_KEYS.items())
        for index in range(cfg.clients):
            access_key, secret_key = keys[index % len(keys)]
            workers.append(Worker(index, cfg, make_client(endpoint, access_key, secret_key), stats, stop))

        time.sleep(1.0)
        reset_hwm(proxy.pid)
        t0 = time.monotonic()
        sampler = Sampler(proxy.pid, admin_endpoint, cfg.sample_interval, stats, t0)
        start = sampler.sample("start")
        log(cfg, f"start: RSS {start['rss_mib']} MiB, {start['goroutines']} goroutines, {start['fds']} fds; "
                 f"{cfg.clients} clients for {cfg.duration:g}s")
        sampler.start()
        for worker in workers:
            worker.thread.start()
        deadline = t0 + cfg.duration
        next_report = t0 + 30
        while time.monotonic() < deadline:
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
            if not proxy.alive():
                stats.error("proxy", f"the proxy exited with {proxy.proc.returncode}:\n{log_tail(proxy_log, 1500)}")
                break
            if time.monotonic() >= next_report:
                next_report += 30
                with stats.lock:
                    done, failed = sum(stats.ops.values()), sum(stats.errors.values())
                last = sampler.samples[-1] if sampler.samples else start
                log(cfg, f"t={time.monotonic() - t0:.0f}s ops {done} errors {failed} RSS {last['rss_mib']} MiB "
                         f"goroutines {last['goroutines']}")
        stop.set()
        for worker in workers:
            worker.thread.join()
        elapsed = time.monotonic() - t0
        for worker in workers:
            worker.client.close()
        sampler.stop()
        peak_hwm_mib = proc_status_kib(proxy.pid, "VmHWM") / 1024
        log(cfg, f"load done after {elapsed:.1f}s; idle until goroutines, fds and RSS settle "
                 f"(up to {cfg.settle:g}s)")

        # idle: wait for goroutines and RSS to come back near the start
        idle_t0 = time.monotonic()
        time.sleep(cfg.idle)
        while True:
            end = sampler.sample("idle")
            settled = (0 <= end["goroutines"] <= start["goroutines"] + cfg.max_goroutine_growth
                       and end["fds"] <= start["fds"] + cfg.max_goroutine_growth
                       and end["rss_mib"] - start["rss_mib"] <= cfg.max_rss_growth_mib)
            if settled or time.monotonic() - idle_t0 >= cfg.settle or not proxy.alive():
                break
            time.sleep(1.0)
        idle_s = time.monotonic() - idle_t0
        proxy_alive = proxy.alive()

        # summary
        summary.elapsed_s = round(elapsed, 2)
        summary.ops = {k: stats.ops[k] for k in KINDS}
        summary.ops_total = sum(stats.ops.values())
        summary.ops_per_s = round(summary.ops_total / elapsed, 1)
        summary.errors = {k: v for k, v in stats.errors.items() if v}
        summary.errors_total = sum(stats.errors.values())
        summary.error_messages = list(stats.messages)
        summary.bytes_up, summary.bytes_down = stats.bytes_up, stats.bytes_down
        summary.throughput_mib_s = round((stats.bytes_up + stats.bytes_down) / MiB / elapsed, 1)
        summary.latency_ms = {
            k: {"p50": round(percentile(v, 0.5) * 1000, 1), "p99": round(percentile(v, 0.99) * 1000, 1),
                "max": round(max(v) * 1000, 1)}
            for k, v in stats.latencies.items() if v
        }
        load_samples = [s for s in sampler.samples if s["phase"] == "load"] or [start]
        summary.rss_mib = {"start": start["rss_mib"],
                           "peak": round(max(peak_hwm_mib, *(s["rss_mib"] for s in sampler.samples)), 1),
                           "end": end["rss_mib"]}
        summary.goroutines = {"start": start["goroutines"], "peak": max(s["goroutines"] for s in sampler.samples),
                              "end": end["goroutines"]}
        summary.open_fds = {"start": int(start["fds"]), "peak": int(max(s["fds"] for s in load_samples)),
                            "end": int(end["fds"])}
        summary.idle_before_end_s = round(idle_s, 1)
        summary.samples = sampler.samples

        summary.proxy_exit_code = proxy.stop()
        for child in reversed(children):
            child.stop()
        summary.proxy_log = scan_proxy_log(proxy_log)

        missing = [k for k in KINDS if not summary.ops[k]]
        summary.checks = [
            Check("no errors", summary.errors_total == 0,
                  f"{summary.errors_total} errors" + (f" ({summary.errors})" if summary.errors else "")),
            Check("every operation kind ran", not missing, "missing: " + ", ".join(missing) if missing else
                  f"{len(KINDS)} kinds"),
            Check("proxy alive to the end", proxy_alive, "alive" if proxy_alive else
                  f"exited with {summary.proxy_exit_code}"),
            Check("proxy stopped cleanly", summary.proxy_exit_code == 0, f"exit code {summary.proxy_exit_code}"),
            Check("goroutines back to start", 0 <= end["goroutines"] <= start["goroutines"] + cfg.max_goroutine_growth,
                  f"start {start['goroutines']}, end {end['goroutines']} (limit start + {cfg.max_goroutine_growth})"),
            Check("open fds back to start", end["fds"] <= start["fds"] + cfg.max_goroutine_growth,
                  f"start {start['fds']}, end {end['fds']} (limit start + {cfg.max_goroutine_growth})"),
            Check("flat memory", end["rss_mib"] - start["rss_mib"] <= cfg.max_rss_growth_mib,
                  f"RSS start {start['rss_mib']} MiB, end {end['rss_mib']} MiB "
                  f"(limit start + {cfg.max_rss_growth_mib:g} MiB)"),
        ]
        summary.passed = all(c.ok for c in summary.checks)
        return summary
    finally:
        # On an early exit, the servers go first, so in-flight requests fail
        # fast instead of running to their timeouts.
        stop.set()
        for child in reversed(children):
            child.stop()
        for worker in workers:
            if worker.thread.is_alive():
                worker.thread.join(timeout=150)
        if sampler is not None and sampler.thread.is_alive():
            sampler.stop()
        if cfg.keep_tmp:
            log(cfg, f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
        if cfg.json_path and summary.checks:
            Path(cfg.json_path).write_text(json.dumps(summary.to_json(), indent=2) + "\n")


def format_summary(s: Summary) -> str:
    c = s.config
    lines = [
        f"soak: {s.elapsed_s:.0f}s, {c['clients']} clients, single PUTs 1 KiB..{human_bytes(c['max_size'])}, "
        f"multipart 3 x 5 MiB + tail, seed {c['seed']}, backend keep-alive {'on' if c['backend_keep_alive'] else 'off'}",
        f"ops         {s.ops_total} ({s.ops_per_s}/s): " + ", ".join(f"{k} {v}" for k, v in s.ops.items()),
        f"errors      {s.errors_total}" + (": " + ", ".join(f"{k} {v}" for k, v in s.errors.items()) if s.errors else ""),
    ]
    lines += [f"            {m}" for m in s.error_messages[:5]]
    lines += [
        f"bytes       up {human_bytes(s.bytes_up)}, down {human_bytes(s.bytes_down)}, "
        f"{s.throughput_mib_s} MiB/s (both ways)",
        "latency ms  " + ", ".join(f"{k} p50 {v['p50']:g}/p99 {v['p99']:g}" for k, v in s.latency_ms.items()),
        f"proxy RSS   start {s.rss_mib.get('start')} MiB, peak {s.rss_mib.get('peak')} MiB, "
        f"end {s.rss_mib.get('end')} MiB (after {s.idle_before_end_s:g}s idle)",
        f"goroutines  start {s.goroutines.get('start')}, peak {s.goroutines.get('peak')}, end {s.goroutines.get('end')}",
        f"open fds    start {s.open_fds.get('start')}, peak {s.open_fds.get('peak')}, end {s.open_fds.get('end')}",
        f"proxy log   {s.proxy_log.get('error', '?')} ERROR, {s.proxy_log.get('warn', '?')} WARN lines, "
        f"{s.proxy_log.get('status_5xx', '?')} 5xx access records",
    ]
    lines += [f"            {line}" for line in s.proxy_log.get("first", [])[:5]]
    lines += [f"check       {'PASS' if ch.ok else 'FAIL'} {ch.name}: {ch.detail}" for ch in s.checks]
    lines.append("PASS" if s.passed else "FAIL")
    return "\n".join(lines)


def parse_args(argv: Optional[Sequence[str]]) -> SoakConfig:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=300.0, help="seconds of load (default 300)")
    p.add_argument("--clients", type=int, default=64, help="concurrent client threads (default 64)")
    p.add_argument("--max-size", type=float, default=64.0, help="largest single PUT in MiB (default 64)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", dest="json_path", metavar="FILE", help="also write the summary as JSON")
    p.add_argument("--versitygw", default="", help="the binary (default $OSP_VERSITYGW or build/bin/versitygw)")
    p.add_argument("--no-backend-keep-alive", dest="backend_keep_alive", action="store_false")
    p.add_argument("--idle", type=float, default=5.0, help="idle seconds before the end readings (default 5)")
    p.add_argument("--settle", type=float, default=180.0,
                   help="longest idle wait for goroutines, fds and RSS to come back (default 180)")
    p.add_argument("--max-goroutine-growth", type=int, default=5, help="also the limit of open fds' growth")
    p.add_argument("--max-rss-growth", dest="max_rss_growth_mib", type=float, default=64.0, help="MiB")
    p.add_argument("--tmp-dir", help="where the temporary directory goes (default: $TMPDIR)")
    p.add_argument("--keep-tmp", action="store_true", help="keep the logs and data")
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    return SoakConfig(duration=a.duration, clients=a.clients, max_size=int(a.max_size * MiB), seed=a.seed,
                      versitygw=a.versitygw, json_path=a.json_path, backend_keep_alive=a.backend_keep_alive,
                      idle=a.idle, settle=a.settle, max_goroutine_growth=a.max_goroutine_growth,
                      max_rss_growth_mib=a.max_rss_growth_mib, tmp_dir=a.tmp_dir, keep_tmp=a.keep_tmp,
                      quiet=a.quiet)


def _terminate(signum: int, frame: Optional[FrameType]) -> None:
    raise SystemExit(128 + signum)  # unwinds through run_soak's cleanup


def main(argv: Optional[Sequence[str]] = None) -> int:
    cfg = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    try:
        summary = run_soak(cfg)
    except RuntimeError as exc:
        print(f"soak: cannot run: {exc}", file=sys.stderr)
        return 2
    print(format_summary(summary))
    return 0 if summary.passed else 1


if __name__ == "__main__":
    sys.exit(main())
