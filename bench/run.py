"""The benchmark: direct vs nginx proxy_pass vs object-storage-proxy.

    make bench            (= build/venv/bin/python bench/run.py)

Starts, all on 127.0.0.1: versitygw (--keep-alive, posix backend in a temp
dir) and a null backend (bench/cmd/nullbackend, answers from memory), and in
front of each an nginx `proxy_pass` (keepalive upstream, no buffering; the
Debian package run as a subprocess with a generated config) and this proxy
(in its own Python process, so /proc/PID is its own). The Go load generator
(bench/cmd/load) signs every request with SigV4 and reports JSON. Every
scenario runs the contenders alternating A B C A B C for ROUNDS rounds; the
medians go to docs/benchmarks.md and docs/benchmarks.svg, the raw runs to
build/bench/results.json.
"""

from __future__ import annotations

import argparse
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
from pathlib import Path
from typing import Dict, List, Optional

import boto3
from botocore.config import Config

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "build" / "bench"
sys.path.insert(0, str(ROOT / "examples"))
from demo import free_port, start_versitygw  # noqa: E402

BACKEND_KEY, BACKEND_SECRET = "bench-backend", "bench-backend-secret"
CLIENT_KEYS = {f"bench-client-{i}": f"bench-client-secret-{i}" for i in range(4)}
NULL_KEYS = {f"null-client-{i}": f"null-secret-{i}" for i in range(4)}  # the null backend checks nothing
CONTENDERS = ("direct", "nginx", "proxy")
MiB = 1 << 20

# name, op, key, body size, connections, seconds
SCENARIOS = [
    ("GET 4 KiB x32", "get", "size-4096", 0, 32, 2.0),
    ("GET 4 KiB x4", "get", "size-4096", 0, 4, 2.0),
    ("PUT 4 KiB x16", "put", "put-4k", 4096, 16, 2.0),
    ("GET 1 MiB x8", "get", f"size-{MiB}", 0, 8, 2.0),
    ("GET 64 MiB x1", "get", f"size-{64 * MiB}", 0, 1, 2.0),
    ("PUT 64 MiB x1", "put", "put-64m", 64 * MiB, 1, 2.0),
    ("LIST 1000 keys x4", "list", "", 0, 4, 2.0),
    ("presigned GET 4 KiB x32", "presign", "size-4096", 0, 32, 2.0),
]

PROXY = textwrap.dedent(
    """
    import json, sys
    from object_storage_proxy import ProxyServerConfig, start_server
    start_server(ProxyServerConfig(json.loads(sys.argv[1]), http_port=int(sys.argv[2]),
                                   hmac_keystore=json.loads(sys.argv[3]), bind_address="127.0.0.1",
                                   log_level="warn"))
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
         count: int = 0, prefix: str = "") -> dict:
    args = [str(BIN / "load"), "-url", f"http://127.0.0.1:{port}", "-op", op, "-key", key,
            "-size", str(size), "-conns", str(conns), "-duration", f"{seconds}s",
            "-creds", ",".join(f"{k}:{v}" for k, v in creds.items())]
    if count:
        args += ["-count", str(count)]
    if prefix:
        args += ["-prefix", prefix]
    out = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 120)
    if out.returncode != 0:
        raise RuntimeError(f"load failed: {out.stderr}")
    return json.loads(out.stdout)


class Stack:
    """One backend with an nginx and a proxy in front of it."""

    def __init__(self, backend: str, tmp: Path) -> None:
        self.backend, self.procs = backend, []
        self.backend_port = free_port()
        if backend == "versitygw":
            data = tmp / "vgw"
            data.mkdir()
            os.environ["VGW_KEEP_ALIVE"] = "true"  # versitygw --keep-alive
            self.procs.append(start_versitygw(str(data), self.backend_port, BACKEND_KEY, BACKEND_SECRET))
            self.direct_creds = {BACKEND_KEY: BACKEND_SECRET}
            self.seed()
        else:
            p = subprocess.Popen([str(BIN / "nullbackend"), "-addr", f"127.0.0.1:{self.backend_port}"],
                                 stdout=subprocess.DEVNULL)
            self.procs.append(p)
            wait_port(self.backend_port, p, "nullbackend")
            self.direct_creds = NULL_KEYS
        # nginx
        ndir = tmp / f"nginx-{backend}"
        ndir.mkdir()
        self.nginx_port = free_port()
        conf = ndir / "nginx.conf"
        conf.write_text(NGINX.format(dir=ndir, backend=self.backend_port, port=self.nginx_port,
                                     user="user root;" if os.geteuid() == 0 else ""))
        nginx = subprocess.Popen([shutil.which("nginx") or "/usr/sbin/nginx", "-c", str(conf), "-p", str(ndir),
                                  "-g", "daemon off;"])
        self.procs.append(nginx)
        wait_port(self.nginx_port, nginx, "nginx")
        self.nginx_pid = nginx.pid
        # proxy
        self.proxy_port = free_port()
        cos_map = {"bench": {"host": "127.0.0.1", "port": self.backend_port, "scheme": "http",
                             "addressing_style": "path", "access_key": BACKEND_KEY, "secret_key": BACKEND_SECRET}}
        proxy = subprocess.Popen([sys.executable, "-c", PROXY, json.dumps(cos_map), str(self.proxy_port),
                                  json.dumps(CLIENT_KEYS)])
        self.procs.append(proxy)
        wait_port(self.proxy_port, proxy, "proxy")
        self.proxy_pid = proxy.pid

    def seed(self) -> None:
        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{self.backend_port}", region_name="us-east-1",
                          aws_access_key_id=BACKEND_KEY, aws_secret_access_key=BACKEND_SECRET,
                          config=Config(s3={"addressing_style": "path"}))
        s3.create_bucket(Bucket="bench")
        for size in (4096, MiB, 64 * MiB):
            s3.put_object(Bucket="bench", Key=f"size-{size}", Body=os.urandom(size))
        r = load(self.backend_port, "fill", "list/key-", 0, 8, 60, self.direct_creds, count=1000)
        assert r["errors"] == 0, r

    def port(self, contender: str) -> int:
        return {"direct": self.backend_port, "nginx": self.nginx_port, "proxy": self.proxy_port}[contender]

    def creds(self, contender: str) -> Dict[str, str]:
        return CLIENT_KEYS if contender == "proxy" else self.direct_creds

    def pids(self, contender: str) -> List[int]:
        if contender == "proxy":
            return [self.proxy_pid]
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


def run_one(stack: Stack, contender: str, scenario: tuple) -> dict:
    name, op, key, size, conns, seconds = scenario
    pids = stack.pids(contender)
    sampler = Sampler(pids) if pids else None
    cpu0 = cpu_seconds(pids)
    r = load(stack.port(contender), op, key, size, conns, seconds, stack.creds(contender),
             prefix="list/" if op == "list" else "")
    r["cpu_s"] = cpu_seconds(pids) - cpu0 if pids else None
    r["cpu_us_per_req"] = r["cpu_s"] / r["requests"] * 1e6 if pids and r["requests"] else None
    r["rss_mib"] = sampler.finish() if sampler else None
    return r


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


def throughput(m: dict, op: str) -> float:
    return m["mbps"] if "64 MiB" in op or "1 MiB" in op else m["rps"]


def write_markdown(path: Path, med: dict, rounds: int, started: str, total_s: float) -> None:
    lines = ["# Benchmarks", "",
             "Generated by `make bench` (`bench/run.py`); do not edit by hand, rerun it.", "",
             f"Run {started}, {rounds} rounds per scenario, contenders alternating A B C A B C, "
             f"medians shown; whole run {total_s / 60:.1f} min. All traffic on 127.0.0.1; "
             "the load generator (`bench/cmd/load`, Go, fresh SigV4 signature per request) runs on the "
             "same 2 cores as the server under test.", "", "## Machine", ""] + machine()
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
              "", "Backends: versitygw with `--keep-alive`, posix backend in a temp dir (tmpfs or disk as "
              "`/tmp` is); the null backend (`bench/cmd/nullbackend`, Go `net/http`, answers GETs from memory "
              "and drains PUTs, checks no signature).", "",
              "Scenario `xN` = N connections. 64 MiB GET/PUT stand in for the 1 GiB of issue 6 to keep the run "
              "short (`bench/stream_memory.py` streams 1 GiB aws-chunked uploads). PUTs send a signed payload "
              "hash (`x-amz-content-sha256` = the body's SHA-256); presigned GET uses query auth with "
              "`UNSIGNED-PAYLOAD`. LIST is ListObjectsV2 of 1000 keys (the null backend answers a fixed "
              "1000-key listing).", "",
              "CPU us/req: utime+stime from `/proc/PID/stat` (nginx: master + workers) over the run, divided "
              "by the requests. Peak RSS: max of VmRSS sampled every 20 ms and VmHWM (reset per run via "
              "`clear_refs`), nginx summed over its processes.", ""]
    for backend in ("null", "versitygw"):
        lines += [f"## {backend} backend", "",
                  "| scenario | contender | req/s | MB/s | p50 ms | p90 ms | p99 ms | p99.9 ms | errors | CPU us/req | peak RSS MiB |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for s in SCENARIOS:
            for c in CONTENDERS:
                m = med[backend][s[0]][c]
                lines.append(f"| {s[0]} | {c} | {fmt(m['rps'])} | {fmt(m['mbps'])} | {fmt(m['p50_ms'], 2)} | "
                             f"{fmt(m['p90_ms'], 2)} | {fmt(m['p99_ms'], 2)} | {fmt(m['p999_ms'], 2)} | "
                             f"{int(m['errors'])} | {fmt(m['cpu_us_per_req'])} | {fmt(m['rss_mib'])} |")
        lines += ["", f"Ratios ({backend}; throughput = req/s, MB/s for 1 MiB and 64 MiB; p99 added = over direct):", "",
                  "| scenario | proxy/direct | nginx/direct | proxy/nginx | p99 added proxy ms | p99 added nginx ms |",
                  "|---|---:|---:|---:|---:|---:|"]
        for s in SCENARIOS:
            d, n, p = (med[backend][s[0]][c] for c in CONTENDERS)
            td, tn, tp = throughput(d, s[0]), throughput(n, s[0]), throughput(p, s[0])
            lines.append(f"| {s[0]} | {ratio(tp, td)} | {ratio(tn, td)} | {ratio(tp, tn)} | "
                         f"{p['p99_ms'] - d['p99_ms']:+.2f} | {n['p99_ms'] - d['p99_ms']:+.2f} |")
        lines.append("")
    lines += ["## Targets of issue 6", ""] + targets(med) + ["", "![chart](benchmarks.svg)", ""]
    path.write_text("\n".join(lines))


def targets(med: dict) -> List[str]:
    out = []
    n, v = med["null"], med["versitygw"]
    a, b = n["GET 4 KiB x32"]["proxy"], n["GET 4 KiB x32"]["nginx"]
    ok = a["rps"] >= b["rps"] and (a["cpu_us_per_req"] or 1e9) <= (b["cpu_us_per_req"] or 0)
    out.append(f"- 4 KiB GET x32, null backend, proxy >= nginx req/s and CPU/req <= nginx: "
               f"{'met' if ok else 'NOT met'} ({a['rps'] / b['rps']:.2f}x nginx; "
               f"{fmt(a['cpu_us_per_req'])} vs {fmt(b['cpu_us_per_req'])} us CPU/req)")
    a, d = v["GET 4 KiB x32"]["proxy"], v["GET 4 KiB x32"]["direct"]
    r = a["rps"] / d["rps"]
    out.append(f"- 4 KiB GET x32 to versitygw >= 0.9x direct: {'met' if r >= 0.9 else 'NOT met'} ({r:.2f}x; "
               f"nginx {v['GET 4 KiB x32']['nginx']['rps'] / d['rps']:.2f}x)")
    for backend in ("null", "versitygw"):
        for s in ("GET 64 MiB x1", "PUT 64 MiB x1"):
            p, d = med[backend][s]["proxy"], med[backend][s]["direct"]
            r = p["mbps"] / d["mbps"]
            ok = r >= 0.9 and p["mbps"] >= 1000 and p["rss_mib"] <= 64
            out.append(f"- {s} ({backend}) >= 0.9x direct, >= 1 GB/s, RSS <= 64 MiB: {'met' if ok else 'NOT met'} "
                       f"({r:.2f}x, {p['mbps']:,.0f} MB/s, {p['rss_mib']:.0f} MiB)")
    for backend in ("null", "versitygw"):
        p, d = med[backend]["GET 4 KiB x4"]["proxy"], med[backend]["GET 4 KiB x4"]["direct"]
        add = p["p99_ms"] - d["p99_ms"]
        out.append(f"- p99 added at 4 connections ({backend}) <= 1 ms: {'met' if add <= 1 else 'NOT met'} ({add:+.2f} ms)")
    out.append("- Not measured here: 1 GiB transfers, STREAMING-UNSIGNED-PAYLOAD-TRAILER PUT, cold start and "
               "Python callables, Go micro-benchmarks.")
    return out


def write_svg(path: Path, med: dict) -> None:
    colors = {"direct": "#888888", "nginx": "#2b8a3e", "proxy": "#1c5fd4"}
    groups = [(b, s[0]) for b in ("null", "versitygw") for s in SCENARIOS]
    gw, bw, left, top, ph = 96, 24, 60, 50, 200
    width = left + gw * len(groups) + 20
    height = top + 2 * (ph + 130) + 20
    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="10">',
         f'<rect width="{width}" height="{height}" fill="white"/>',
         '<text x="10" y="18" font-size="14" font-weight="bold">object-storage-proxy benchmark (medians; bars relative to direct = 1.0, labels absolute)</text>']
    for i, c in enumerate(CONTENDERS):
        o.append(f'<rect x="{10 + i * 90}" y="28" width="12" height="12" fill="{colors[c]}"/>'
                 f'<text x="{26 + i * 90}" y="38">{c}</text>')
    panels = [("throughput (req/s; MB/s for 1 MiB and 64 MiB), relative to direct", lambda m, s: throughput(m, s),
               lambda x, s: (f"{x:,.0f}" if x >= 100 else f"{x:.1f}")),
              ("p99 latency (ms), relative to direct", lambda m, s: m["p99_ms"], lambda x, s: f"{x:.2f}")]
    for pi, (title, get, label) in enumerate(panels):
        y0 = top + pi * (ph + 130)
        base = y0 + 20 + ph
        ratios = [get(med[b][s][c], s) / max(get(med[b][s]["direct"], s), 1e-9) for b, s in groups for c in CONTENDERS]
        vmax = max(1.2, min(max(ratios), 6.0))
        o.append(f'<text x="{left}" y="{y0 + 12}" font-size="12" font-weight="bold">{title}</text>')
        for t in (0, 0.5, 1.0, 1.5, 2, 3, 4, 5, 6):
            if t > vmax:
                break
            y = base - t / vmax * ph
            o.append(f'<line x1="{left}" x2="{width - 20}" y1="{y:.1f}" y2="{y:.1f}" stroke="{"#444" if t == 1 else "#ddd"}"/>'
                     f'<text x="{left - 4}" y="{y + 3:.1f}" text-anchor="end">{t:g}x</text>')
        for gi, (b, s) in enumerate(groups):
            gx = left + gi * gw + 8
            d = max(get(med[b][s]["direct"], s), 1e-9)
            for ci, c in enumerate(CONTENDERS):
                x = get(med[b][s][c], s)
                h = min(x / d, vmax) / vmax * ph
                bx = gx + ci * bw
                o.append(f'<rect x="{bx}" y="{base - h:.1f}" width="{bw - 3}" height="{h:.1f}" fill="{colors[c]}">'
                         f'<title>{b} {s} {c}: {label(x, s)}</title></rect>')
                o.append(f'<text transform="translate({bx + 14},{base - h - 3:.1f}) rotate(-90)" font-size="8">{label(x, s)}</text>')
            o.append(f'<text transform="translate({gx + 4},{base + 10}) rotate(35)" font-size="9">{s} ({b})</text>')
    o.append("</svg>")
    path.write_text("\n".join(o) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every scenario's duration")
    parser.add_argument("--only", default="", help="comma-separated scenario name substrings")
    parser.add_argument("--out", default=str(ROOT / "docs"))
    args = parser.parse_args()
    global SCENARIOS
    SCENARIOS = [s[:5] + (s[5] * args.scale,) for s in SCENARIOS
                 if not args.only or any(w in s[0] for w in args.only.split(","))]
    started, t0 = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), time.monotonic()
    raw: Dict[str, Dict[str, Dict[str, List[dict]]]] = {}
    med: Dict[str, Dict[str, Dict[str, dict]]] = {}
    with tempfile.TemporaryDirectory(prefix="osp-bench-") as tmp:
        for backend in ("null", "versitygw"):
            stack = Stack(backend, Path(tmp))
            raw[backend], med[backend] = {}, {}
            try:
                for s in SCENARIOS:
                    # warm-up: connections, caches, versitygw page cache
                    for c in CONTENDERS:
                        load(stack.port(c), s[1], s[2], s[3], s[4], 0.3, stack.creds(c),
                             prefix="list/" if s[1] == "list" else "")
                    runs = {c: [] for c in CONTENDERS}
                    for rnd in range(args.rounds):
                        for c in CONTENDERS:
                            r = run_one(stack, c, s)
                            runs[c].append(r)
                            print(f"{backend:9} {s[0]:24} r{rnd} {c:6} {r['rps']:10,.0f} req/s {r['mbps']:9,.1f} MB/s "
                                  f"p99 {r['p99_ms']:7.2f} ms err {r['errors']}"
                                  + (f" cpu {r['cpu_us_per_req']:.1f} us/req rss {r['rss_mib']:.0f} MiB" if r['cpu_us_per_req'] else "")
                                  + (f"  [{r['first_error']}]" if r.get("first_error") else ""), flush=True)
                    raw[backend][s[0]] = runs
                    med[backend][s[0]] = {c: {k: median([r[k] for r in runs[c]]) for k in
                                              ("rps", "mbps", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "errors",
                                               "cpu_us_per_req", "rss_mib")} for c in CONTENDERS}
            finally:
                stack.close()
    BIN.mkdir(parents=True, exist_ok=True)
    (BIN / "results.json").write_text(json.dumps({"raw": raw, "median": med}, indent=1))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not args.only:
        write_markdown(out / "benchmarks.md", med, args.rounds, started, time.monotonic() - t0)
        write_svg(out / "benchmarks.svg", med)
        print(f"wrote {out / 'benchmarks.md'} and {out / 'benchmarks.svg'}")
    else:
        print(json.dumps(med, indent=1))


if __name__ == "__main__":
    main()
