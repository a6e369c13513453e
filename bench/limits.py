"""What each limit costs on a 4 KiB GET: the proxy on the null backend with no
limits, then with each limit (request rate, download bandwidth, presigned
uses) and all of them, kept in process memory and in Redis (a redis-server on
loopback), as ratios of throughput and of the proxy's CPU per request to the
same run without limits. Limits are set far above the load, so every request
pays the check and none is refused or slowed.

`make bench` runs it after run.py; alone: `python bench/limits.py [--out DIR]`
(default docs/: docs/benchmarks-limits.md). Needs build/bench/{load,nullbackend}
(`make bench` builds them) and redis-server.
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
import time
from pathlib import Path
from typing import Dict, List, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import BIN, CLIENT_KEYS, ROOT, cpu_seconds, free_port, load, wait_port  # noqa: E402

HUGE = 1 << 40  # a limit no run reaches: every request is checked, none refused
LIMITS: Dict[str, dict] = {
    "none": {},
    "rate": {"rate_limit": {"requests_per_second": HUGE, "burst": HUGE}},
    "bandwidth": {"rate_limit": {"download_bytes_per_second": HUGE}},
    # The load generator signs a URL per request, but two within one second are the same URL.
    "uses": {"presign_max_uses": HUGE},
    "all": {"rate_limit": {"requests_per_second": HUGE, "burst": HUGE, "download_bytes_per_second": HUGE},
            "presign_max_uses": HUGE},
}
# op -> the limits that apply to it.
SCENARIOS: Dict[str, Tuple[str, ...]] = {
    "get": ("none", "rate", "bandwidth", "all"),
    "presign": ("none", "uses", "all"),
}
CONNS = 4

PROXY = """
import json, sys
from object_storage_proxy import ProxyServerConfig, start_server
start_server(ProxyServerConfig(json.loads(sys.argv[1]), http_port=int(sys.argv[2]),
                               hmac_keystore=json.loads(sys.argv[3]), bind_address="127.0.0.1",
                               log_level="warn", **json.loads(sys.argv[4])))
"""


def start_redis(directory: str) -> Tuple[subprocess.Popen, int]:
    port = free_port()
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", directory, "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL)
    wait_port(port, proc, "redis-server")
    return proc, port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--out", default=str(ROOT / "docs"))
    args = parser.parse_args()
    procs: List[subprocess.Popen] = []
    results: Dict[str, Dict[str, List[dict]]] = {}
    with tempfile.TemporaryDirectory(prefix="osp-bench-limits-") as tmp:
        try:
            backend_port = free_port()
            backend = subprocess.Popen([str(BIN / "nullbackend"), "-addr", f"127.0.0.1:{backend_port}"],
                                       stdout=subprocess.DEVNULL)
            procs.append(backend)
            wait_port(backend_port, backend, "nullbackend")
            redis, redis_port = start_redis(tmp)
            procs.append(redis)
            cos_map = {"bench": {"host": "127.0.0.1", "port": backend_port, "scheme": "http",
                                 "addressing_style": "path", "access_key": "k", "secret_key": "s"}}
            proxies: Dict[str, Tuple[int, int]] = {}
            for store, state_url in (("memory", ""), ("redis", f"redis://127.0.0.1:{redis_port}/0")):
                for name, options in LIMITS.items():
                    if name == "none" and store == "redis":
                        continue
                    port = free_port()
                    proc = subprocess.Popen([sys.executable, "-c", PROXY, json.dumps(cos_map), str(port),
                                             json.dumps(CLIENT_KEYS), json.dumps(dict(options, state_url=state_url))])
                    procs.append(proc)
                    wait_port(port, proc, f"proxy {store} {name}")
                    proxies[name if name == "none" else f"{store} {name}"] = (port, proc.pid)
            for op, names in SCENARIOS.items():
                contenders = [c for c in proxies if c == "none" or c.split()[1] in names]
                for c in contenders:  # warm-up: connections, Redis scripts
                    load(proxies[c][0], op, "size-4096", 0, CONNS, 0.3, CLIENT_KEYS)
                for rnd in range(args.rounds):
                    for c in contenders:  # interleaved, so that drift touches every contender
                        port, pid = proxies[c]
                        cpu0 = cpu_seconds([pid])
                        r = load(port, op, "size-4096", 0, CONNS, args.seconds, CLIENT_KEYS)
                        r["cpu_us"] = (cpu_seconds([pid]) - cpu0) / max(r["requests"], 1) * 1e6
                        assert r["errors"] == 0, (c, r)
                        results.setdefault(op, {}).setdefault(c, []).append(r)
                        print(f"{op:8} {c:18} r{rnd} {r['rps']:9,.0f} req/s p50 {r['p50_ms']:6.2f} ms "
                              f"cpu {r['cpu_us']:6.1f} us/req", flush=True)
        finally:
            for p in reversed(procs):
                p.terminate()
                p.wait(timeout=10)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "benchmarks-limits.md").write_text(report(results, args))
    print(f"wrote {out / 'benchmarks-limits.md'}")


def machine() -> List[str]:
    model = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                  if l.startswith("model name")), "?")
    redis = subprocess.run([shutil.which("redis-server") or "redis-server", "--version"], capture_output=True,
                           text=True).stdout.split()
    return [f"- CPU: {os.cpu_count()} x {model}", f"- Kernel: {platform.release()}",
            f"- redis-server {redis[2].removeprefix('v=') if len(redis) > 2 else '?'}"]


def report(results: Dict[str, Dict[str, List[dict]]], args: argparse.Namespace) -> str:
    lines = ["# What each limit costs on a 4 KiB GET", "",
             f"Written by `bench/limits.py` (part of `make bench`) on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
             f"the proxy on the null backend, {CONNS} connections, {args.rounds} interleaved rounds of "
             f"{args.seconds:g} s each (medians), limits far above the load (every request checked, none refused). "
             "Ratios are to the same run without limits (`none`): throughput (higher is better) and the proxy "
             "process's CPU per request (lower is better). Redis: redis-server on loopback, same machine.", "",
             *machine(), ""]
    for op, runs in results.items():
        med = {c: {k: statistics.median(r[k] for r in rs) for k in ("rps", "p50_ms", "cpu_us")} for c, rs in runs.items()}
        base = med["none"]
        lines += [f"## {'GET 4 KiB' if op == 'get' else 'presigned GET 4 KiB'} x{CONNS}", "",
                  "| limits | req/s | ratio | p50 ms | CPU µs/req | CPU ratio |", "|---|---:|---:|---:|---:|---:|"]
        for c, m in med.items():
            lines.append(f"| {c} | {m['rps']:,.0f} | {m['rps'] / base['rps']:.3f} | {m['p50_ms']:.2f} | "
                         f"{m['cpu_us']:.1f} | {m['cpu_us'] / base['cpu_us']:.3f} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
