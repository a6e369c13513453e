"""The benchmark: direct vs nginx proxy_pass vs object-storage-proxy.

    make bench            (= build/venv/bin/python bench/run.py)

Starts, all on 127.0.0.1: versitygw (--keep-alive, posix backend in a temp
dir) and a null backend (bench/cmd/nullbackend, answers from memory), and in
front of each an nginx `proxy_pass` (keepalive upstream, no buffering; the
Debian package run as a subprocess with a generated config) and this proxy
(in its own Python process, so /proc/PID is its own), and a verifying peer:
versitygw in its S3-gateway mode (`versitygw s3 --endpoint BACKEND`), which
verifies the client's signature with its root key (one of the bench client
keys) and re-signs to the backend, as this proxy does. The Go load generator
(bench/cmd/load) signs every request with SigV4 and reports JSON. Every
scenario runs the contenders alternating A B C A B C for ROUNDS rounds; the
medians go to docs/benchmarks.md and docs/benchmarks.svg, the raw runs to
build/bench/results.json.

On the null backend a fourth contender, proxy+py, is the same proxy with a
Python validator and bucket_creds_fetcher (each sleeping 50 ms, as a remote
policy service would): warm, for the small GETs, and cold, a burst of 100
concurrent requests of a client key it has never seen. The Go
micro-benchmarks of go/internal/{proxy,awschunked,sigv4} run first.

A partial run (--only) prints its medians; with --out it also writes the
report there (never to docs/ unless asked).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.request
from pathlib import Path
from typing import IO, Callable, Dict, List, Optional, Tuple

import boto3
from botocore.config import Config

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "build" / "bench"
sys.path.insert(0, str(ROOT / "examples"))
from demo import free_port, start_versitygw  # noqa: E402

BACKEND_KEY, BACKEND_SECRET = "bench-backend", "bench-backend-secret"
CLIENT_KEYS = {f"bench-client-{i}": f"bench-client-secret-{i}" for i in range(4)}
NULL_KEYS = {f"null-client-{i}": f"null-secret-{i}" for i in range(4)}  # the null backend checks nothing
# Client keys proxy+py has in its keystore but no scenario uses: one per
# round of the cold burst (up to 20), so every burst starts with empty caches.
COLD_KEYS = {f"bench-cold-{i}": f"bench-cold-secret-{i}" for i in range(20)}
PEER = "peer"  # versitygw s3: the verifying, re-signing proxy users would compare with
CONTENDERS = ("direct", "nginx", "proxy", PEER)
# versitygw has one account here (no IAM service), its root: the peer's clients sign with this key.
PEER_KEYS = dict(list(CLIENT_KEYS.items())[:1])
VERSITYGW = os.environ.get("OSP_VERSITYGW", str(ROOT / "build" / "bin" / "versitygw"))
# --disable-data-integrity-check: without it the peer's SDK computes a checksum of
# every PutObject body, which it cannot do on a streamed (unseekable) body over
# plain HTTP, and every PUT answers 500 InternalError ("compute input header
# checksum failed, unseekable stream is not supported without TLS and trailing
# checksum"). With it, signed PUTs go through, sent on as UNSIGNED-PAYLOAD while
# the peer hashes the body on the way (a mismatch is found only at its end, once
# the backend has the object); aws-chunked trailer PUTs still fail that way, as
# the client's checksum header asks the SDK for one.
PEER_ARGS = ("--keep-alive", "--quiet", "s3", "--use-path-style", "--disable-data-integrity-check")
PY = "proxy+py"
MiB, GiB = 1 << 20, 1 << 30


@dataclasses.dataclass(frozen=True)
class Scenario:
    name: str
    op: str  # get, put, list, presign (bench/cmd/load -op)
    key: str
    size: int = 0  # PUT body bytes
    conns: int = 1
    seconds: float = 2.0
    count: int = 0  # > 0: this many requests per run instead of running for `seconds`
    payload: str = "signed"  # PUT: signed (SHA-256 of the body) or trailer (aws-chunked, crc32 trailer)


SCENARIOS = [
    Scenario("GET 4 KiB x32", "get", "size-4096", conns=32),
    Scenario("GET 4 KiB x4", "get", "size-4096", conns=4),
    Scenario("PUT 4 KiB x16", "put", "put-4k", 4096, conns=16),
    Scenario("GET 1 MiB x8", "get", f"size-{MiB}", conns=8),
    Scenario("GET 64 MiB x1", "get", f"size-{64 * MiB}"),
    Scenario("PUT 64 MiB x1", "put", "put-64m", 64 * MiB),
    Scenario("PUT 64 MiB trailer x1", "put", "put-64m", 64 * MiB, payload="trailer"),
    # 1 GiB: a fixed two requests per run (a few seconds each). With a 2 s
    # duration a run would be one transfer or two depending on speed, so
    # contenders would not move the same bytes.
    Scenario("GET 1 GiB x1", "get", f"size-{GiB}", count=2),
    Scenario("PUT 1 GiB x1", "put", "put-1g", GiB, count=2),
    Scenario("PUT 1 GiB trailer x1", "put", "put-1g", GiB, count=2, payload="trailer"),
    Scenario("LIST 1000 keys x4", "list", "", conns=4),
    Scenario("presigned GET 4 KiB x32", "presign", "size-4096", conns=32),
]
# The scenarios proxy+py joins (null backend only): per-request cost of the
# callables' cache, where any Python on the request path would show most.
PY_SCENARIOS = ("GET 4 KiB x32", "GET 4 KiB x4")
COLD_CONNS = 100  # the cold burst: this many concurrent first requests of one key
BULK = ("GET 64 MiB x1", "PUT 64 MiB x1", "PUT 64 MiB trailer x1",
        "GET 1 GiB x1", "PUT 1 GiB x1", "PUT 1 GiB trailer x1")

# argv: cos_map, port, keystore, and for proxy+py the backend's HMAC pair as
# JSON, which the bucket_creds_fetcher answers. $OSP_BENCH_ADMIN_PORT, when
# set, is the admin listener's port (metrics).
PROXY = textwrap.dedent(
    """
    import json, os, sys, time
    from object_storage_proxy import ProxyServerConfig, start_server
    options = {}
    if os.environ.get("OSP_BENCH_ADMIN_PORT"):
        options["admin_port"] = int(os.environ["OSP_BENCH_ADMIN_PORT"])
    if len(sys.argv) > 4:
        def validator(token, bucket):
            time.sleep(0.05)  # a remote policy service
            return bucket == "bench"
        def bucket_creds_fetcher(token, bucket):
            time.sleep(0.05)
            return sys.argv[4]
        options.update(validator=validator, bucket_creds_fetcher=bucket_creds_fetcher)
    start_server(ProxyServerConfig(json.loads(sys.argv[1]), http_port=int(sys.argv[2]),
                                   hmac_keystore=json.loads(sys.argv[3]), bind_address="127.0.0.1",
                                   log_level=os.environ.get("OSP_BENCH_LOG_LEVEL", "warn"), **options))
    """
)

NGINX = """
{user}
worker_processes auto;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    client_max_body_size 0;
    upstream backend {{
        server 127.0.0.1:{backend};
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_request_buffering off;
            proxy_buffering off;
            proxy_buffer_size 256k;
            proxy_buffers 4 256k;
            proxy_busy_buffers_size 512k;
        }}
    }}
}}
"""


def wait_port(port: int, proc: subprocess.Popen, what: str) -> None:
    import socket

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port}")


def build_tools() -> None:
    """Builds the load generator and the null backend (bench/cmd) into BIN."""
    subprocess.run(["go", "build", "-o", str(BIN) + "/", "./cmd/..."], cwd=Path(__file__).parent, check=True)


def start_null_backend() -> Tuple[int, subprocess.Popen]:
    port = free_port()
    proc = subprocess.Popen([str(BIN / "nullbackend"), "-addr", f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL)
    wait_port(port, proc, "nullbackend")
    return port, proc


def start_nginx(backend_port: int, ndir: Path) -> Tuple[int, subprocess.Popen]:
    """nginx proxy_pass (NGINX) to the backend, its files in ndir."""
    port = free_port()
    conf = ndir / "nginx.conf"
    conf.write_text(NGINX.format(dir=ndir, backend=backend_port, port=port,
                                 user="user root;" if os.geteuid() == 0 else ""))
    proc = subprocess.Popen([shutil.which("nginx") or "/usr/sbin/nginx", "-c", str(conf), "-p", str(ndir),
                             "-g", "daemon off;"])
    wait_port(port, proc, "nginx")
    return port, proc


def proxy_cos_map(backend_port: int) -> dict:
    """The proxy's one bucket, "bench", on the backend with its HMAC keys."""
    return {"bench": {"host": "127.0.0.1", "port": backend_port, "scheme": "http", "addressing_style": "path",
                      "access_key": BACKEND_KEY, "secret_key": BACKEND_SECRET}}


def start_proxy(python: str, backend_port: int, env: Optional[Dict[str, str]] = None,
                stderr: Optional[IO[bytes]] = None) -> Tuple[int, subprocess.Popen]:
    """The proxy (PROXY, run by python: a venv's, so a build's) in front of the backend; env is added to ours
    (OSP_BENCH_LOG_LEVEL sets its log level, warn otherwise), its stderr goes to stderr if given."""
    port = free_port()
    proc = subprocess.Popen([python, "-c", PROXY, json.dumps(proxy_cos_map(backend_port)), str(port),
                             json.dumps(CLIENT_KEYS)], env={**os.environ, **(env or {})}, stderr=stderr)
    wait_port(port, proc, "proxy")
    return port, proc


# ---------------------------------------------------------------- /proc

def children(pid: int) -> List[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def cpu_seconds(pids: List[int]) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except OSError:
            pass
    return total / tick


def take_turns(contenders: Dict[str, Tuple[int, subprocess.Popen]], rounds: int,
               run: Callable[[str, int], dict]) -> Dict[str, List[Tuple[dict, float]]]:
    """rounds rounds in which each contender (name: its port and process) runs the load run(name, port) in
    turn, the order turned each round: whichever runs second in a round can be faster or slower for it (an A/A
    run of one build, always in one order, put the second at 1.15x the first's CPU). Per contender, per round:
    the load's result and the CPU seconds per request of its process and children."""
    names = list(contenders)
    runs: Dict[str, List[Tuple[dict, float]]] = {name: [] for name in names}
    for i in range(rounds):
        for name in (names if i % 2 == 0 else names[::-1]):
            port, proc = contenders[name]
            pids = [proc.pid] + children(proc.pid)
            before = cpu_seconds(pids)
            out = run(name, port)
            runs[name].append((out, (cpu_seconds(pids) - before) / max(out["requests"], 1)))
    return runs


def status_kib(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def reset_hwm(pids: List[int]) -> None:
    for pid in pids:
        try:
            Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to VmRSS
        except OSError:
            pass


class LoadAverage:
    """The machine's 1-minute load average over the run, sampled every 15 s:
    anything else running on the cores shows here (the contenders alternate,
    so their ratios stay comparable, but absolute figures drop)."""

    def __init__(self) -> None:
        self.samples: List[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while True:
            self.samples.append(float(Path("/proc/loadavg").read_text().split()[0]))
            if self.stop.wait(15):
                return

    def finish(self) -> dict:
        self.stop.set()
        self.thread.join()
        return {"median": statistics.median(self.samples), "max": max(self.samples)}


class Sampler:
    """Peak summed RSS of some processes: VmHWM (reset per run) and VmRSS every 20 ms."""

    def __init__(self, pids: List[int]) -> None:
        self.pids, self.peak, self.stop = pids, 0, threading.Event()
        reset_hwm(pids)
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, sum(status_kib(p, "VmRSS") for p in self.pids))
            time.sleep(0.02)

    def finish(self) -> float:
        self.stop.set()
        self.thread.join()
        hwm = sum(status_kib(p, "VmHWM") for p in self.pids)
        return max(self.peak, hwm) / 1024


# ---------------------------------------------------------------- runs

def load(port: int, op: str, key: str, size: int, conns: int, seconds: float, creds: Dict[str, str],
         count: int = 0, prefix: str = "", payload: str = "signed") -> dict:
    args = [str(BIN / "load"), "-url", f"http://127.0.0.1:{port}", "-op", op, "-key", key,
            "-size", str(size), "-conns", str(conns), "-duration", f"{seconds}s", "-payload", payload,
            "-creds", ",".join(f"{k}:{v}" for k, v in creds.items())]
    if count:
        args += ["-count", str(count)]
    if prefix:
        args += ["-prefix", prefix]
    # A counted run has no duration; 1 GiB transfers on a slow path take a while.
    out = subprocess.run(args, capture_output=True, text=True, timeout=900 if count else seconds + 120)
    if out.returncode != 0:
        raise RuntimeError(f"load failed: {out.stderr}")
    return json.loads(out.stdout)


def load_scenario(port: int, s: Scenario, creds: Dict[str, str], seconds: Optional[float] = None) -> dict:
    return load(port, s.op, s.key, s.size, s.conns, s.seconds if seconds is None else seconds, creds,
                count=s.count if seconds is None else 0, prefix="list/" if s.op == "list" else "",
                payload=s.payload)


def callable_calls(admin_port: int) -> Dict[str, float]:
    """osp_callable_calls_total summed over outcomes, per callable, from the
    /metrics of the admin listener on ``admin_port``."""
    calls: Dict[str, float] = {}
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("osp_callable_calls_total{"):
                labels, value = line.rsplit(" ", 1)
                name = labels.split('callable="', 1)[1].split('"', 1)[0]
                calls[name] = calls.get(name, 0) + float(value)
    return calls


def calls_since(admin_port: int, before: Dict[str, float]) -> Dict[str, int]:
    after = callable_calls(admin_port)
    return {k: int(after.get(k, 0) - before.get(k, 0)) for k in ("validator", "bucket_creds_fetcher")}


def start_peer(backend_port: int, port: int, log: Path) -> subprocess.Popen:
    """versitygw as an S3 gateway on ``port`` in front of the backend; its
    output (request errors included) goes to ``log``."""
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}  # its SDK refuses to start with it set
    env.update(ROOT_ACCESS_KEY=next(iter(PEER_KEYS)), ROOT_SECRET_KEY=next(iter(PEER_KEYS.values())),
               VGW_S3_ACCESS_KEY=BACKEND_KEY, VGW_S3_SECRET_KEY=BACKEND_SECRET,
               VGW_S3_ENDPOINT=f"http://127.0.0.1:{backend_port}")
    with log.open("w") as out:
        peer = subprocess.Popen([VERSITYGW, "--port", f"127.0.0.1:{port}", *PEER_ARGS], env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    wait_port(port, peer, PEER)
    return peer


def last_peer_error(log: Path) -> str:
    """The last error versitygw logged (its 500s say why only there), without colour codes."""
    import re

    try:
        lines = [l for l in log.read_text(errors="replace").splitlines() if "ERROR" in l]
    except OSError:
        return ""
    return re.sub(r"\x1b\[[0-9;]*m", "", lines[-1]).strip() if lines else ""


class Stack:
    """One backend with an nginx, a proxy and a verifying peer in front of it."""

    def __init__(self, backend: str, tmp: Path) -> None:
        self.backend, self.procs = backend, []
        if backend == "versitygw":
            self.backend_port = free_port()
            data = tmp / "vgw"
            data.mkdir()
            os.environ["VGW_KEEP_ALIVE"] = "true"  # versitygw --keep-alive
            self.procs.append(start_versitygw(str(data), self.backend_port, BACKEND_KEY, BACKEND_SECRET))
            self.direct_creds = {BACKEND_KEY: BACKEND_SECRET}
            self.seed()
        else:
            self.backend_port, p = start_null_backend()
            self.procs.append(p)
            self.direct_creds = NULL_KEYS
        # nginx
        ndir = tmp / f"nginx-{backend}"
        ndir.mkdir()
        self.nginx_port, nginx = start_nginx(self.backend_port, ndir)
        self.procs.append(nginx)
        self.nginx_pid = nginx.pid
        # proxy
        self.proxy_port, proxy = start_proxy(sys.executable, self.backend_port)
        self.procs.append(proxy)
        self.proxy_pid = proxy.pid
        # the verifying peer
        peer_port, self.peer_log = free_port(), tmp / f"peer-{backend}.log"
        peer = start_peer(self.backend_port, peer_port, self.peer_log)
        self.procs.append(peer)
        self.ports = {"direct": self.backend_port, "nginx": self.nginx_port, "proxy": self.proxy_port,
                      PEER: peer_port}
        self.proc_pids = {"proxy": [proxy.pid], PEER: [peer.pid]}
        if backend == "null":
            # proxy+py: the same proxy, but the bucket has no credentials of its
            # own; the fetcher answers them and the validator allows. A ttl of
            # an hour so that no answer expires in the middle of a run.
            py_map = {"bench": {k: v for k, v in proxy_cos_map(self.backend_port)["bench"].items()
                                if k not in ("access_key", "secret_key")}}
            py_map["bench"]["ttl"] = 3600
            py_port, self.py_admin_port = free_port(), free_port()
            py = subprocess.Popen([sys.executable, "-c", PROXY, json.dumps(py_map), str(py_port),
                                   json.dumps({**CLIENT_KEYS, **COLD_KEYS}),
                                   json.dumps({"access_key": BACKEND_KEY, "secret_key": BACKEND_SECRET})],
                                  env=dict(os.environ, OSP_BENCH_ADMIN_PORT=str(self.py_admin_port)))
            self.procs.append(py)
            wait_port(py_port, py, PY)
            wait_port(self.py_admin_port, py, PY + " admin")
            self.ports[PY], self.proc_pids[PY] = py_port, [py.pid]

    def seed(self) -> None:
        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{self.backend_port}", region_name="us-east-1",
                          aws_access_key_id=BACKEND_KEY, aws_secret_access_key=BACKEND_SECRET,
                          config=Config(s3={"addressing_style": "path"}))
        s3.create_bucket(Bucket="bench")
        # The load generator streams its bodies, so even 1 GiB is never in memory here.
        for size in (4096, MiB, 64 * MiB, GiB):
            r = load(self.backend_port, "put", f"size-{size}", size, 1, 0, self.direct_creds, count=1)
            assert r["errors"] == 0, r
        r = load(self.backend_port, "fill", "list/key-", 0, 8, 60, self.direct_creds, count=1000)
        assert r["errors"] == 0, r

    def contenders(self, s: Scenario) -> Tuple[str, ...]:
        return CONTENDERS + ((PY,) if PY in self.ports and s.name in PY_SCENARIOS else ())

    def port(self, contender: str) -> int:
        return self.ports[contender]

    def creds(self, contender: str) -> Dict[str, str]:
        if contender == PEER:
            return PEER_KEYS
        return CLIENT_KEYS if contender.startswith("proxy") else self.direct_creds

    def pids(self, contender: str) -> List[int]:
        if contender in self.proc_pids:
            return self.proc_pids[contender]
        if contender == "nginx":
            return [self.nginx_pid] + children(self.nginx_pid)
        return []

    def close(self) -> None:
        for p in reversed(self.procs):
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def run_one(stack: Stack, contender: str, s: Scenario) -> dict:
    pids = stack.pids(contender)
    calls0 = callable_calls(stack.py_admin_port) if contender == PY else None
    sampler = Sampler(pids) if pids else None
    cpu0 = cpu_seconds(pids)
    r = load_scenario(stack.port(contender), s, stack.creds(contender))
    r["cpu_s"] = cpu_seconds(pids) - cpu0 if pids else None
    r["cpu_us_per_req"] = r["cpu_s"] / r["requests"] * 1e6 if pids and r["requests"] else None
    r["rss_mib"] = sampler.finish() if sampler else None
    if calls0 is not None:
        r["py_calls"] = calls_since(stack.py_admin_port, calls0)
    if contender == PEER and r["errors"]:
        r["first_error"] = f"{r.get('first_error', '')}; versitygw: {last_peer_error(stack.peer_log)}"
    return r


def cold_bursts(stack: Stack, rounds: int) -> List[dict]:
    """Per round, COLD_CONNS concurrent GETs of a client key proxy+py has
    never seen: every one misses the validator's and the fetcher's caches
    at once, and the callables sleep 50 ms each."""
    out = []
    for rnd, (key, secret) in enumerate(list(COLD_KEYS.items())[:rounds]):
        before = callable_calls(stack.py_admin_port)
        r = load(stack.port(PY), "get", "size-4096", 0, COLD_CONNS, 0, {key: secret}, count=COLD_CONNS)
        r["py_calls"] = calls_since(stack.py_admin_port, before)
        print(f"null      cold burst x{COLD_CONNS:<13} r{rnd} {PY:8} p50 {r['p50_ms']:7.2f} ms "
              f"p99 {r['p99_ms']:7.2f} ms err {r['errors']} calls {r['py_calls']}"
              + (f"  [{r['first_error']}]" if r.get("first_error") else ""), flush=True)
        out.append(r)
    return out


GO_PACKAGES = ("./internal/proxy", "./internal/awschunked", "./internal/sigv4")


def go_benchmarks() -> dict:
    """Runs the Go micro-benchmarks; returns {"results": [{package, name,
    metrics: {unit: value}}], "error": ...}."""
    cmd = ["go", "test", "-run", "^$", "-bench", ".", "-benchmem", *GO_PACKAGES]
    print("go " + " ".join(cmd[1:]), flush=True)
    try:
        out = subprocess.run(cmd, cwd=ROOT / "go", capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        return {"results": [], "error": "timed out"}
    results, pkg = [], ""
    for line in out.stdout.splitlines():
        if line.startswith("pkg: "):
            pkg = line.split("/internal/", 1)[-1]
        elif line.startswith("Benchmark"):
            # BenchmarkName-2  <iterations>  <value> <unit>  <value> <unit> ...
            fields = line.split()
            if len(fields) < 4 or not fields[1].isdigit():
                continue
            name = fields[0].rsplit("-", 1)[0] if fields[0].rsplit("-", 1)[-1].isdigit() else fields[0]
            metrics = {fields[i + 1]: float(fields[i]) for i in range(2, len(fields) - 1, 2)}
            results.append({"package": pkg, "name": name, "metrics": metrics})
            print(f"  {pkg:10} {line}", flush=True)
    error = None if out.returncode == 0 else (out.stderr.strip() or out.stdout.strip())[-500:]
    return {"results": results, "error": error}


def median(values: List[Optional[float]]) -> Optional[float]:
    v = [x for x in values if x is not None]
    return statistics.median(v) if v else None


# ---------------------------------------------------------------- output

def machine() -> List[str]:
    model = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                  if l.startswith("model name")), "?")
    mem = next(l.split()[1] for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal"))
    gov = subprocess.run(["go", "version"], capture_output=True, text=True).stdout.strip()
    ngx = subprocess.run([shutil.which("nginx") or "nginx", "-v"], capture_output=True, text=True).stderr.strip()
    vgw = subprocess.run([str(ROOT / "build/bin/versitygw"), "--version"], capture_output=True, text=True).stdout
    vgw = " ".join(vgw.split()[:3]) if vgw else "versitygw"
    return [f"- CPU: {os.cpu_count()} x {model} (`nproc` = {os.cpu_count()})",
            f"- Memory: {int(mem) // 1024} MiB", f"- Kernel: {platform.release()}",
            f"- {gov}", f"- {ngx}", f"- {vgw}", f"- Python {platform.python_version()}"]


def fmt(x: Optional[float], digits: int = 1) -> str:
    if x is None:
        return "-"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.{digits}f}"


def ratio(a: Optional[float], b: Optional[float]) -> str:
    return f"{a / b:.2f}x" if a and b else "-"


def failed(m: dict) -> str:
    """"error" when a contender's median run answered nothing but errors, else ""."""
    return "error" if m["errors"] and not m["requests"] else ""


def errors_section(raw: dict) -> List[str]:
    """The first error of every scenario and contender that had any (the peer's with versitygw's own message)."""
    rows = []
    for backend, scenarios in raw.items():
        for name, runs in scenarios.items():
            for c, rs in runs.items():
                bad = [r for r in rs if r["errors"]]
                if bad:
                    rows.append(f"| {backend} | {name} | {c} | {sum(r['errors'] for r in bad)} of "
                                f"{sum(r['errors'] + r['requests'] for r in rs)} | "
                                f"`{bad[0].get('first_error', '?').replace('|', '/')}` |")
    if not rows:
        return []
    return ["## Errors", "", "Requests that failed in the measured rounds, and the first error of each.", "",
            "| backend | scenario | contender | failed | first error |", "|---|---|---|---:|---|"] + rows + [""]


def is_bulk(name: str) -> bool:
    """Whether a scenario's throughput is MB/s (1 MiB and up) rather than req/s."""
    return "MiB" in name or "GiB" in name


def throughput(m: dict, name: str) -> float:
    return m["mbps"] if is_bulk(name) else m["rps"]


def py_calls(runs: List[dict]) -> Dict[str, int]:
    """Python calls of proxy+py summed over its measured runs."""
    total = {"validator": 0, "bucket_creds_fetcher": 0}
    for r in runs:
        for k in total:
            total[k] += r["py_calls"][k]
    return total


def write_markdown(path: Path, res: dict) -> None:
    med, raw, cold, gob = res["median"], res["raw"], res["cold"], res["go"]
    partial = f" Partial run: only the scenarios matching `--only {res['only']}`." if res["only"] else ""
    lines = ["# Benchmarks", "",
             "Generated by `make bench` (`bench/run.py`); do not edit by hand, rerun it.", "",
             f"Run {res['started']}, {res['rounds']} rounds per scenario, contenders alternating A B C A B C, "
             f"medians shown; whole run {res['total_s'] / 60:.1f} min (Go micro-benchmarks included).{partial} "
             "All traffic on 127.0.0.1; the load generator (`bench/cmd/load`, Go, fresh SigV4 signature per "
             "request) runs on the same 2 cores as the server under test."]
    if res.get("loadavg"):
        lines[-1] += (f" 1-minute load average during the run (every 15 s): median {res['loadavg']['median']:.1f}, "
                      f"max {res['loadavg']['max']:.1f} on {os.cpu_count()} cores (the benchmark itself keeps both busy; "
                      "higher figures mean other work shared them: ratios stay comparable, absolute figures drop).")
    lines += ["", "## Machine", ""] + machine()
    lines += ["", "## Contenders", "",
              "- **direct**: the load generator to the backend. Against versitygw it signs with the backend's "
              "root key (versitygw has one account here); against the null backend with 4 keys (unchecked).",
              "- **nginx**: Debian nginx `proxy_pass`, `worker_processes auto`, upstream `keepalive 64`, "
              "`proxy_http_version 1.1`, `proxy_request_buffering off`, `proxy_buffering off`, `proxy_buffer_size 256k` "
              "(with the default 4 KiB/8 KiB, unbuffered nginx relays in page-sized reads: 0.11x direct on 64 MiB GETs "
              "in a first run, against 0.46x with 256k), `access_log off`, "
              "`proxy_set_header Host $http_host` (so the client's signature stays valid for versitygw). "
              "It verifies nothing.",
              "- **proxy**: object-storage-proxy (`start_server` in its own Python process, `log_level=\"warn\"` "
              "so no access log line per request, as nginx), `hmac_keystore` with 4 client keys used in turn; "
              "it verifies every client signature and re-signs every request to the backend.",
              f"- **{PEER}** (verifying peer): versitygw (the backend's build) in its S3-gateway "
              "mode, `versitygw --keep-alive --quiet s3 --endpoint BACKEND --use-path-style "
              "--disable-data-integrity-check`, its root key one of the bench client keys (it has a single "
              "account, so its clients sign with that one key), the backend's key to re-sign; like the proxy "
              "it verifies every client signature and re-signs every request (with aws-sdk-go-v2), but it "
              "sends PUT bodies on as `UNSIGNED-PAYLOAD` and asks the backend for the bucket's versioning "
              "before each PutObject. `--disable-data-integrity-check` because without it every PUT answers "
              "500 (its SDK cannot checksum a streamed body over plain HTTP); trailer PUTs fail even with it "
              "(see Errors). It checks the client's `x-amz-content-sha256` only as the body ends: checked by "
              "hand here, a PUT whose body did not match the hash it signed was answered 500 but the object was "
              "stored on the backend, which the proxy's promise rules out (docs/security.md). CPU and RSS are its process's.",
              f"- **{PY}** (null backend, {', '.join(PY_SCENARIOS)} only): the same proxy with a Python "
              "`validator(token, bucket)` and `bucket_creds_fetcher(token, bucket)` (the cos_map entry has no keys; "
              "the fetcher answers the backend's HMAC pair as JSON), each sleeping 50 ms per call as a remote "
              "policy service would; see [Python callables](#python-callables-null-backend).",
              "", "Backends: versitygw with `--keep-alive`, posix backend in a temp dir (tmpfs or disk as "
              "`/tmp` is), seeded by the load generator; the null backend (`bench/cmd/nullbackend`, Go `net/http`, "
              "answers GETs from one 1 MiB block in memory and drains PUTs, checks no signature).", "",
              "Scenario `xN` = N connections. Each run lasts the scenario's duration (2 s), except 1 GiB: "
              "2 requests per run. Request bodies repeat one pseudo-random 1 MiB block and are generated "
              "as they are sent (never held in memory). PUTs send a signed payload hash "
              "(`x-amz-content-sha256` = the body's SHA-256); `trailer` PUTs send "
              "`STREAMING-UNSIGNED-PAYLOAD-TRAILER` (boto3's default): aws-chunked in 64 KiB chunks with an "
              "`x-amz-checksum-crc32` trailer, which the proxy verifies and re-frames, and MB/s counts the "
              "object's bytes, not the framing. Presigned GET uses query auth with `UNSIGNED-PAYLOAD`. LIST is "
              "ListObjectsV2 of 1000 keys (the null backend answers a fixed 1000-key listing).", "",
              "CPU us/req: utime+stime from `/proc/PID/stat` (nginx: master + workers) over the run, divided "
              "by the requests. Peak RSS: max of VmRSS sampled every 20 ms and VmHWM (reset per run via "
              "`clear_refs`), nginx summed over its processes.", ""]
    for backend in ("null", "versitygw"):
        if not med.get(backend):
            continue
        lines += [f"## {backend} backend", "",
                  "| scenario | contender | req/s | MB/s | p50 ms | p90 ms | p99 ms | p99.9 ms | errors | CPU us/req | peak RSS MiB |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for name, by_contender in med[backend].items():
            for c, m in by_contender.items():
                if failed(m):
                    lines.append(f"| {name} | {c} | error | error | - | - | - | - | {int(m['errors'])} | - | "
                                 f"{fmt(m['rss_mib'])} |")
                    continue
                lines.append(f"| {name} | {c} | {fmt(m['rps'])} | {fmt(m['mbps'])} | {fmt(m['p50_ms'], 2)} | "
                             f"{fmt(m['p90_ms'], 2)} | {fmt(m['p99_ms'], 2)} | {fmt(m['p999_ms'], 2)} | "
                             f"{int(m['errors'])} | {fmt(m['cpu_us_per_req'])} | {fmt(m['rss_mib'])} |")
        lines += ["", f"Ratios ({backend}; throughput = req/s, MB/s from 1 MiB up; p99 added = over direct; "
                  "CPU = CPU us/req over nginx's):", "",
                  f"| scenario | proxy/direct | nginx/direct | {PEER}/direct | proxy/nginx | {PEER}/nginx | "
                  f"CPU proxy/nginx | CPU {PEER}/nginx | p99 added proxy ms | p99 added nginx ms | "
                  f"p99 added {PEER} ms |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for name, by_contender in med[backend].items():
            d, n, p, v = (by_contender[c] for c in CONTENDERS)
            td, tn, tp, tv = (throughput(m, name) for m in (d, n, p, v))
            lines.append(f"| {name} | {ratio(tp, td)} | {ratio(tn, td)} | {failed(v) or ratio(tv, td)} | "
                         f"{ratio(tp, tn)} | {failed(v) or ratio(tv, tn)} | "
                         f"{ratio(p['cpu_us_per_req'], n['cpu_us_per_req'])} | "
                         f"{failed(v) or ratio(v['cpu_us_per_req'], n['cpu_us_per_req'])} | "
                         f"{p['p99_ms'] - d['p99_ms']:+.2f} | {n['p99_ms'] - d['p99_ms']:+.2f} | "
                         f"{failed(v) or format(v['p99_ms'] - d['p99_ms'], '+.2f')} |")
        lines.append("")
    lines += errors_section(raw)
    lines += python_section(med, raw, cold) + go_section(gob)
    lines += ["## Targets of issue 14", "",
              "The lean request path and event loop (issue 14) start from this; ratios are of medians in this run.",
              ""] + targets_issue14(med) + [""]
    if res.get("profile"):
        lines += ["## Where the time goes", "",
                  "`bench/profile.py` in this run: nginx, the proxy, the proxy with GOMAXPROCS=1, and the proxy at "
                  "log level info in turn in "
                  "front of the null backend, one run each under `perf record -g` (sampling costs a few percent: "
                  "its figures are for the shares, the tables above for the speed), then one more each under "
                  "`perf stat` counting system calls and context switches, and then rounds in which the proxy and its two "
                  "variants take turns, for the variants' CPU ratios. User time is charged to the innermost "
                  "frame of our code, to the SDK's signer, or to the Go runtime's malloc, GC and scheduler.", "",
                  res["profile"].strip(), ""]
    lines += ["## Targets of issue 6", ""] + targets(med, raw, cold, gob) + ["", "![chart](benchmarks.svg)", ""]
    path.write_text("\n".join(lines))


def python_section(med: dict, raw: dict, cold: List[dict]) -> List[str]:
    null = med.get("null", {})
    warm = [name for name in PY_SCENARIOS if PY in null.get(name, {})]
    if not warm and not cold:
        return []
    lines = ["## Python callables (null backend)", "",
             f"Warm: {PY} alternates with proxy in the same rounds. Its answers are cached per (token, bucket) "
             "for the bucket's `ttl` (3600 s here, so none expires during the benchmark); the warm-up before "
             "the rounds makes the one call of each callable per client key. Python calls are read from "
             "`osp_callable_calls_total` on the admin listener's `/metrics` before and after each run and summed over the "
             "rounds.", "",
             f"| scenario | proxy req/s | {PY} req/s | {PY}/proxy | p99 proxy ms | p99 {PY} ms | "
             f"CPU us/req proxy | CPU us/req {PY} | Python calls in the runs (validator, fetcher) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name in warm:
        a, b = null[name][PY], null[name]["proxy"]
        calls = py_calls(raw["null"][name][PY])
        lines.append(f"| {name} | {fmt(b['rps'])} | {fmt(a['rps'])} | {ratio(a['rps'], b['rps'])} | "
                     f"{fmt(b['p99_ms'], 2)} | {fmt(a['p99_ms'], 2)} | {fmt(b['cpu_us_per_req'])} | "
                     f"{fmt(a['cpu_us_per_req'])} | {calls['validator']}, {calls['bucket_creds_fetcher']} |")
    if cold:
        lines += ["", f"Cold: {COLD_CONNS} concurrent GETs (`-conns {COLD_CONNS} -count {COLD_CONNS}`, new "
                  f"connections) signed with a client key {PY} has in its keystore but has never seen, so "
                  "all of them miss both caches at once; a fresh key per round. Concurrent misses of one key "
                  "should share one call of each callable (50 ms each).", "",
                  "| round | p50 ms | p99 ms | p99.9 ms | errors | validator calls | bucket_creds_fetcher calls |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for i, r in enumerate(cold):
            lines.append(f"| {i} | {fmt(r['p50_ms'], 2)} | {fmt(r['p99_ms'], 2)} | {fmt(r['p999_ms'], 2)} | "
                         f"{r['errors']} | {r['py_calls']['validator']} | {r['py_calls']['bucket_creds_fetcher']} |")
    return lines + [""]


def go_section(gob: Optional[dict]) -> List[str]:
    if gob is None:
        return []
    lines = ["## Go micro-benchmarks", "",
             f"`cd go && go test -run '^$' -bench . -benchmem {' '.join(GO_PACKAGES)}`, one run of each "
             "(default `-benchtime 1s`), before the servers above start. MB/s is Go's (10^6 bytes/s of "
             "decoded body); cpu-us/op, where reported, is the whole process's CPU per operation.", ""]
    if gob["error"]:
        lines += [f"`go test` failed: `{' '.join(gob['error'].split())[:300]}`", ""]
    without = [p.rsplit("/", 1)[1] for p in GO_PACKAGES
               if p.rsplit("/", 1)[1] not in {r["package"] for r in gob["results"]}]
    if without:
        lines += [f"No benchmark results from: {', '.join(without)}.", ""]
    if gob["results"]:
        lines += ["| package | benchmark | ns/op | allocs/op | B/op | MB/s | other |",
                  "|---|---|---:|---:|---:|---:|---|"]
        for r in gob["results"]:
            m = dict(r["metrics"])
            main = [m.pop(u, None) for u in ("ns/op", "allocs/op", "B/op", "MB/s")]
            other = ", ".join(f"{fmt(v)} {u}" for u, v in m.items())
            lines.append(f"| {r['package']} | {r['name']} | {fmt(main[0])} | {fmt(main[1], 0)} | "
                         f"{fmt(main[2], 0)} | {fmt(main[3])} | {other} |")
    return lines + [""]


def go_metric(gob: Optional[dict], name: str, unit: str) -> Optional[float]:
    for r in (gob or {}).get("results", []):
        if r["name"] == "Benchmark" + name:
            return r["metrics"].get(unit)
    return None


def report_target(out: List[str], label: str, ok: Optional[bool], detail: str = "") -> None:
    if ok is None:
        out.append(f"- {label}: not measured in this run")
    else:
        out.append(f"- {label}: {'met' if ok else 'NOT met'} ({detail})")


def targets_issue14(med: dict) -> List[str]:
    out: List[str] = []

    def get(backend: str, name: str, contender: str) -> Optional[dict]:
        return med.get(backend, {}).get(name, {}).get(contender)

    def cpu(m: dict) -> str:
        return fmt(m["cpu_us_per_req"])

    def peer(backend: str, name: str, base: str) -> str:
        """The verifying peer's figure against the same base as the target's."""
        v, b = get(backend, name, PEER), get(backend, name, base)
        if not v or not b:
            return ""
        if failed(v):
            return f"; {PEER}: error"
        return (f"; {PEER} {throughput(v, name) / throughput(b, name):.2f}x {base} at {cpu(v)} us CPU/req"
                if throughput(v, name) else "")

    p, n = get("null", "GET 4 KiB x32", "proxy"), get("null", "GET 4 KiB x32", "nginx")
    label = "4 KiB GET x32, null backend: proxy >= 0.85x nginx req/s and CPU/req <= 1.25x nginx's"
    if p and n and p["cpu_us_per_req"] and n["cpu_us_per_req"]:
        r, c = p["rps"] / n["rps"], p["cpu_us_per_req"] / n["cpu_us_per_req"]
        report_target(out, label, r >= 0.85 and c <= 1.25,
                      f"{r:.2f}x nginx; CPU {cpu(p)} vs {cpu(n)} us/req = {c:.2f}x"
                      + peer("null", "GET 4 KiB x32", "nginx"))
        report_target(out, "moonshot: the same >= 1.0x nginx", r >= 1.0, f"{r:.2f}x")
    else:
        report_target(out, label, None)
    p, n = get("null", "GET 4 KiB x4", "proxy"), get("null", "GET 4 KiB x4", "nginx")
    label = "4 KiB GET x4, null backend: proxy >= 0.95x nginx req/s"
    if p and n:
        r = p["rps"] / n["rps"]
        report_target(out, label, r >= 0.95, f"{r:.2f}x nginx; CPU {cpu(p)} vs {cpu(n)} us/req"
                      + peer("null", "GET 4 KiB x4", "nginx"))
    else:
        report_target(out, label, None)
    for name in ("GET 4 KiB x32", "GET 4 KiB x4"):
        p, d, n = (get("versitygw", name, c) for c in ("proxy", "direct", "nginx"))
        label = f"{name[:9]} to versitygw ({name[10:]}): proxy >= 0.8x direct req/s"
        if p and d and n:
            r = p["rps"] / d["rps"]
            report_target(out, label, r >= 0.8, f"{r:.2f}x direct; nginx {n['rps'] / d['rps']:.2f}x"
                          + peer("versitygw", name, "direct"))
        else:
            report_target(out, label, None)
    for backend in ("versitygw", "null"):
        p, n = get(backend, "PUT 4 KiB x16", "proxy"), get(backend, "PUT 4 KiB x16", "nginx")
        label = f"4 KiB PUT x16 ({backend}): proxy >= 0.9x nginx req/s"
        if p and n:
            r = p["rps"] / n["rps"]
            report_target(out, label, r >= 0.9, f"{r:.2f}x nginx; CPU {cpu(p)} vs {cpu(n)} us/req"
                          + peer(backend, "PUT 4 KiB x16", "nginx"))
        else:
            report_target(out, label, None)
    for backend in ("null", "versitygw"):
        for name in BULK:
            p, d, n = (get(backend, name, c) for c in ("proxy", "direct", "nginx"))
            label = f"{name} ({backend}): proxy >= 0.85x direct MB/s and above nginx"
            if p and d and n:
                r = p["mbps"] / d["mbps"]
                report_target(out, label, r >= 0.85 and p["mbps"] > n["mbps"],
                              f"{r:.2f}x direct; nginx {n['mbps'] / d['mbps']:.2f}x" + peer(backend, name, "direct"))
            else:
                report_target(out, label, None)
    out.append("- Python callables (warm and cold): no regression; see the Python checks of issue 6 below.")
    return out


def targets(med: dict, raw: dict, cold: List[dict], gob: Optional[dict]) -> List[str]:
    out: List[str] = []

    def get(backend: str, name: str, contender: str) -> Optional[dict]:
        return med.get(backend, {}).get(name, {}).get(contender)

    def report(label: str, ok: Optional[bool], detail: str = "") -> None:
        report_target(out, label, ok, detail)

    a, b = get("null", "GET 4 KiB x32", "proxy"), get("null", "GET 4 KiB x32", "nginx")
    label = "4 KiB GET x32, null backend, proxy >= nginx req/s and CPU/req <= nginx"
    if a and b:
        ok = a["rps"] >= b["rps"] and (a["cpu_us_per_req"] or 1e9) <= (b["cpu_us_per_req"] or 0)
        report(label, ok, f"{a['rps'] / b['rps']:.2f}x nginx; {fmt(a['cpu_us_per_req'])} vs "
                          f"{fmt(b['cpu_us_per_req'])} us CPU/req")
    else:
        report(label, None)
    a, d, n = (get("versitygw", "GET 4 KiB x32", c) for c in ("proxy", "direct", "nginx"))
    label = "4 KiB GET x32 to versitygw >= 0.9x direct"
    if a and d and n:
        r = a["rps"] / d["rps"]
        report(label, r >= 0.9, f"{r:.2f}x; nginx {n['rps'] / d['rps']:.2f}x")
    else:
        report(label, None)
    for backend in ("null", "versitygw"):
        for name in BULK:
            p, d = get(backend, name, "proxy"), get(backend, name, "direct")
            label = f"{name} ({backend}) >= 0.9x direct MB/s, >= 1 GB/s, proxy peak RSS <= 64 MiB"
            if p and d:
                r = p["mbps"] / d["mbps"]
                report(label, r >= 0.9 and p["mbps"] >= 1000 and p["rss_mib"] <= 64,
                       f"{r:.2f}x, {p['mbps']:,.0f} MB/s, {p['rss_mib']:.0f} MiB")
            else:
                report(label, None)
    for backend in ("null", "versitygw"):
        p, d = get(backend, "GET 4 KiB x4", "proxy"), get(backend, "GET 4 KiB x4", "direct")
        label = f"p99 added at 4 connections ({backend}) <= 1 ms"
        if p and d:
            add = p["p99_ms"] - d["p99_ms"]
            report(label, add <= 1, f"{add:+.2f} ms")
        else:
            report(label, None)
    for name in PY_SCENARIOS:
        a, b = get("null", name, PY), get("null", name, "proxy")
        label = f"Python callables warm, {name}: {PY} >= 0.95x proxy req/s, 0 Python calls"
        if a and b:
            r, calls = a["rps"] / b["rps"], py_calls(raw["null"][name][PY])
            report(label, r >= 0.95 and not any(calls.values()),
                   f"{r:.2f}x; {calls['validator']} validator, {calls['bucket_creds_fetcher']} fetcher calls")
        else:
            report(label, None)
    label = f"Python callables cold, {COLD_CONNS} concurrent requests of a new key: exactly 1 call of each"
    if cold:
        v = [r["py_calls"]["validator"] for r in cold]
        f = [r["py_calls"]["bucket_creds_fetcher"] for r in cold]
        errors = sum(r["errors"] for r in cold)
        report(label, set(v) == {1} and set(f) == {1} and errors == 0,
               f"validator calls per burst {v}, fetcher {f}, {errors} errors; latency p50 "
               f"{fmt(median([r['p50_ms'] for r in cold]), 2)} ms, p99 {fmt(median([r['p99_ms'] for r in cold]), 2)} ms")
    else:
        report(label, None)
    ns, allocs = go_metric(gob, "VerifyAndResignGET", "ns/op"), go_metric(gob, "VerifyAndResignGET", "allocs/op")
    label = "Go: verify + re-sign a GET (BenchmarkVerifyAndResignGET) <= 10 us and <= 20 allocs"
    if ns is not None and allocs is not None:
        report(label, ns <= 10_000 and allocs <= 20, f"{ns / 1000:.1f} us, {allocs:.0f} allocs")
    else:
        report(label, None)
    for name in ("DecodeSigned", "DecodeUnsignedTrailerReframed"):
        mbps = go_metric(gob, name, "MB/s")
        label = f"Go: aws-chunked verify + decode (Benchmark{name}) >= 1.5 GB/s"
        report(label, None if mbps is None else mbps >= 1500, "" if mbps is None else f"{mbps / 1000:.2f} GB/s")
    return out


COLORS = {"direct": "#888888", "nginx": "#2b8a3e", "proxy": "#1c5fd4", PY: "#9c36b5", PEER: "#e8590c"}


def write_svg(path: Path, med: dict) -> None:
    groups = [(b, name, list(by_contender)) for b in ("null", "versitygw") for name, by_contender in med.get(b, {}).items()]
    bw, left, top, ph = 24, 60, 50, 200
    widths = [bw * len(cs) + 24 for _, _, cs in groups]
    width = left + sum(widths) + 20
    height = top + 2 * (ph + 130) + 20
    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="10">',
         f'<rect width="{width}" height="{height}" fill="white"/>',
         '<text x="10" y="18" font-size="14" font-weight="bold">object-storage-proxy benchmark (medians; bars relative to direct = 1.0, labels absolute)</text>']
    for i, c in enumerate(COLORS):
        o.append(f'<rect x="{10 + i * 90}" y="28" width="12" height="12" fill="{COLORS[c]}"/>'
                 f'<text x="{26 + i * 90}" y="38">{c}</text>')
    panels = [("throughput (req/s; MB/s from 1 MiB up), relative to direct", lambda m, s: throughput(m, s),
               lambda x, s: (f"{x:,.0f}" if x >= 100 else f"{x:.1f}")),
              ("p99 latency (ms), relative to direct", lambda m, s: m["p99_ms"], lambda x, s: f"{x:.2f}")]
    for pi, (title, get, label) in enumerate(panels):
        y0 = top + pi * (ph + 130)
        base = y0 + 20 + ph
        ratios = [get(med[b][s][c], s) / max(get(med[b][s]["direct"], s), 1e-9) for b, s, cs in groups for c in cs]
        vmax = max(1.2, min(max(ratios, default=1), 6.0))
        o.append(f'<text x="{left}" y="{y0 + 12}" font-size="12" font-weight="bold">{title}</text>')
        for t in (0, 0.5, 1.0, 1.5, 2, 3, 4, 5, 6):
            if t > vmax:
                break
            y = base - t / vmax * ph
            o.append(f'<line x1="{left}" x2="{width - 20}" y1="{y:.1f}" y2="{y:.1f}" stroke="{"#444" if t == 1 else "#ddd"}"/>'
                     f'<text x="{left - 4}" y="{y + 3:.1f}" text-anchor="end">{t:g}x</text>')
        gx = left + 8
        for (b, s, cs), gw in zip(groups, widths):
            d = max(get(med[b][s]["direct"], s), 1e-9)
            for ci, c in enumerate(cs):
                x = get(med[b][s][c], s)
                h = min(x / d, vmax) / vmax * ph
                bx = gx + ci * bw
                o.append(f'<rect x="{bx}" y="{base - h:.1f}" width="{bw - 3}" height="{h:.1f}" fill="{COLORS[c]}">'
                         f'<title>{b} {s} {c}: {label(x, s)}</title></rect>')
                o.append(f'<text transform="translate({bx + 14},{base - h - 3:.1f}) rotate(-90)" font-size="8">{label(x, s)}</text>')
            o.append(f'<text transform="translate({gx + 4},{base + 10}) rotate(35)" font-size="9">{s} ({b})</text>')
            gx += gw
    o.append("</svg>")
    path.write_text("\n".join(o) + "\n")


def profile() -> str:
    """bench/profile.py's report (markdown), or "" without perf or if it fails: it explains, it is not measured."""
    if not shutil.which("perf"):
        print("perf not found: no profile section", file=sys.stderr)
        return ""
    out = subprocess.run([sys.executable, str(Path(__file__).parent / "profile.py")], capture_output=True, text=True)
    if out.returncode != 0:
        print(f"bench/profile.py failed: {out.stderr[-2000:]}", file=sys.stderr)
        return ""
    return out.stdout


def write_report(out: Path, res: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_markdown(out / "benchmarks.md", res)
    write_svg(out / "benchmarks.svg", res["median"])
    print(f"wrote {out / 'benchmarks.md'} and {out / 'benchmarks.svg'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiplies every timed scenario's duration (1 GiB runs are counted, not timed)")
    parser.add_argument("--only", default="", help="comma-separated scenario name substrings")
    parser.add_argument("--out", default=None,
                        help="where to write benchmarks.md/.svg (default docs/, or nowhere with --only)")
    parser.add_argument("--go-bench", action=argparse.BooleanOptionalAction, default=True,
                        help="run the Go micro-benchmarks")
    parser.add_argument("--report-only", metavar="RESULTS_JSON", default=None,
                        help="measure nothing: rewrite the report from a run's results.json (to --out, default docs/)")
    args = parser.parse_args()
    if args.report_only:
        res = json.loads(Path(args.report_only).read_text())
        write_report(Path(args.out) if args.out else ROOT / "docs", res)
        return
    global SCENARIOS
    SCENARIOS = [dataclasses.replace(s, seconds=s.seconds * args.scale) for s in SCENARIOS
                 if not args.only or any(w in s.name for w in args.only.split(","))]
    out = Path(args.out) if args.out else (None if args.only else ROOT / "docs")
    started, t0 = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), time.monotonic()
    loadavg = LoadAverage()
    gob = go_benchmarks() if args.go_bench else None
    raw: Dict[str, Dict[str, Dict[str, List[dict]]]] = {}
    med: Dict[str, Dict[str, Dict[str, dict]]] = {}
    cold: List[dict] = []
    with tempfile.TemporaryDirectory(prefix="osp-bench-") as tmp:
        for backend in ("null", "versitygw"):
            stack = Stack(backend, Path(tmp))
            raw[backend], med[backend] = {}, {}
            try:
                for s in SCENARIOS:
                    contenders = stack.contenders(s)
                    # Warm-up: connections, caches (proxy+py's callables),
                    # versitygw's page cache. Not for 1 GiB: each run is long
                    # enough for the setup not to count.
                    if not s.count:
                        for c in contenders:
                            load_scenario(stack.port(c), s, stack.creds(c), seconds=0.3)
                    runs: Dict[str, List[dict]] = {c: [] for c in contenders}
                    for rnd in range(args.rounds):
                        for c in contenders:
                            r = run_one(stack, c, s)
                            runs[c].append(r)
                            print(f"{backend:9} {s.name:24} r{rnd} {c:8} {r['rps']:10,.1f} req/s {r['mbps']:9,.1f} MB/s "
                                  f"p99 {r['p99_ms']:8.2f} ms err {r['errors']}"
                                  + (f" cpu {r['cpu_us_per_req']:.1f} us/req rss {r['rss_mib']:.0f} MiB" if r['cpu_us_per_req'] else "")
                                  + (f" calls {r['py_calls']}" if "py_calls" in r else "")
                                  + (f"  [{r['first_error']}]" if r.get("first_error") else ""), flush=True)
                    raw[backend][s.name] = runs
                    med[backend][s.name] = {c: {k: median([r[k] for r in runs[c]]) for k in
                                                ("requests", "rps", "mbps", "p50_ms", "p90_ms", "p99_ms", "p999_ms",
                                                 "errors", "cpu_us_per_req", "rss_mib")} for c in contenders}
                if PY in stack.ports and any(s.name in PY_SCENARIOS for s in SCENARIOS):
                    cold = cold_bursts(stack, args.rounds)
            finally:
                stack.close()
    prof = profile() if not args.only else ""
    res = {"raw": raw, "median": med, "cold": cold, "go": gob, "rounds": args.rounds, "started": started,
           "total_s": time.monotonic() - t0, "only": args.only, "loadavg": loadavg.finish(), "profile": prof}
    BIN.mkdir(parents=True, exist_ok=True)
    (BIN / "results.json").write_text(json.dumps(res, indent=1))
    if out:
        write_report(out, res)
    else:
        print(json.dumps(med, indent=1))


if __name__ == "__main__":
    main()
