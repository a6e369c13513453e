"""Where a small request's CPU goes: the proxy and nginx profiled under the same load.

    build/venv/bin/python bench/profile.py [--conns 32] [--seconds 8] [--op get|put]

Both run in front of one null backend (bench/cmd/nullbackend), configured as
`make bench` configures them, and the Go load generator drives each in turn
with 4 KiB requests. For each: req/s, CPU per request (user and system time
of the process and its children), and, from `perf record -g` over the run,
the share of kernel and user time; for the proxy, its user time by the
innermost frame of our code (or the SDK's signer, or the runtime: malloc,
GC, scheduler). Needs perf (Debian's linux-perf); without it only the first
figures are printed. It answers "what is left and why" with a profile
rather than a guess: see docs/benchmarks.md, "Where the time goes".
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Counter, Dict, Iterator, List, Optional, Tuple

import run as bench

OURS = "github.com/object-storage-proxy/osp/internal/"
SDK = "github.com/aws/aws-sdk-go-v2/"


def runtime_group(frames: List[str]) -> str:
    """The runtime's share a user-space sample belongs to, by its frames from the leaf."""
    for f in frames:
        if f.startswith(("runtime.gcBgMarkWorker", "runtime.bgsweep", "runtime.bgscavenge", "runtime.gcAssist")):
            return "runtime: GC"
        if f.startswith(("runtime.mallocgc", "runtime.newobject", "runtime.growslice", "runtime.makeslice",
                         "runtime.makemap")):
            return "runtime: malloc"
        if f.startswith(("runtime.schedule", "runtime.mcall", "runtime.sysmon", "runtime.mstart", "runtime.park_m",
                         "runtime.findRunnable", "runtime.netpoll")):
            return "runtime: scheduler"
    return ""


def owner(frames: List[str]) -> str:
    """Who a user-space sample is charged to: the runtime's share, or the innermost function of ours or the SDK's."""
    group = runtime_group(frames)
    if group:
        return group
    for f in frames:
        if f.startswith(OURS):
            return f[len(OURS):]
        if f.startswith(SDK):
            return "sdk: " + f[len(SDK):]
    return "other"


def package(who: str) -> str:
    """The package part of owner()'s answer: "h1" for "h1.parseHead"; the runtime's shares as they are."""
    if who.startswith("runtime:"):
        return who
    if who.startswith("sdk: "):
        return "aws-sdk-go-v2 signer"
    return who.split(".")[0]


def samples(data: Path) -> Iterator[Tuple[bool, List[str]]]:
    """(the leaf is in the kernel, frames from the leaf) per sample of a perf.data."""
    out = subprocess.run(["perf", "script", "-i", str(data), "-F", "ip,sym,dso"], capture_output=True, text=True,
                         check=True).stdout
    for block in out.split("\n\n"):
        frames = [m.groups() for m in re.finditer(r"^\s*[0-9a-f]+ (.*) \((.*)\)$", block, re.M)]
        if frames:
            yield "kernel" in frames[0][1], [name for name, _ in frames]


def breakdown(data: Path) -> Tuple[int, float, Counter[str]]:
    """(samples, kernel share, user samples by owner)."""
    total = kernel = 0
    users: Counter[str] = collections.Counter()
    for in_kernel, frames in samples(data):
        total += 1
        if in_kernel:
            kernel += 1
        else:
            users[owner(frames)] += 1
    return total, kernel / max(total, 1), users


def measure(name: str, port: int, proc: subprocess.Popen, args: argparse.Namespace, tmp: Path,
            perf: bool) -> Dict[str, object]:
    key, size = ("size-4096", 4096) if args.op == "get" else ("put-4k", 4096)
    bench.load(port, args.op, key, size, args.conns, 1.0, bench.CLIENT_KEYS)  # warm: connections, caches
    pids = [proc.pid] + bench.children(proc.pid)
    data = tmp / f"{name}.perf.data"
    recorder = None
    if perf:
        recorder = subprocess.Popen(["perf", "record", "-F", "999", "-g", "-o", str(data), "-p",
                                     ",".join(map(str, pids)), "--", "sleep", str(args.seconds - 1)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    before = bench.cpu_seconds(pids)
    out = bench.load(port, args.op, key, size, args.conns, args.seconds, bench.CLIENT_KEYS)
    cpu = (bench.cpu_seconds(pids) - before) * 1e6 / max(out["requests"], 1)
    result: Dict[str, object] = {"rps": out["rps"], "cpu_us": cpu, "errors": out["errors"]}
    if recorder:
        recorder.wait()
        result["samples"], result["kernel"], result["user"] = breakdown(data)
    return result


def report(results: Dict[str, Dict[str, object]], top: int) -> None:
    print("| contender | req/s | CPU us/req | kernel | user | user us/req |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        kernel: Optional[float] = r.get("kernel")  # type: ignore[assignment]
        cpu = float(r["cpu_us"])  # type: ignore[arg-type]
        if kernel is None:
            print(f"| {name} | {r['rps']:,.0f} | {cpu:.1f} | | | |")
        else:
            print(f"| {name} | {r['rps']:,.0f} | {cpu:.1f} | {kernel:.0%} | {1 - kernel:.0%} | {cpu * (1 - kernel):.1f} |")
    proxy = results.get("proxy", {})
    users: Optional[Counter[str]] = proxy.get("user")  # type: ignore[assignment]
    if not users:
        return
    per_sample = float(proxy["cpu_us"]) / int(proxy["samples"])  # type: ignore[arg-type]
    groups: Counter[str] = collections.Counter()
    for who, n in users.items():
        groups[package(who)] += n
    print("\nThe proxy's user time per request, by package (innermost frame of ours, the SDK's signer, or the runtime):\n")
    print("| charged to | us/req |")
    print("|---|---:|")
    for who, n in groups.most_common():
        print(f"| {who} | {n * per_sample:.2f} |")
    print(f"\nIts {top} largest functions:\n")
    print("| function | us/req |")
    print("|---|---:|")
    for who, n in users.most_common(top):
        print(f"| {who} | {n * per_sample:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conns", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--op", choices=("get", "put"), default="get")
    parser.add_argument("--top", type=int, default=25, help="functions listed")
    args = parser.parse_args()
    perf = shutil.which("perf") is not None
    if not perf:
        print("perf not found (apt install linux-perf): CPU per request only", file=sys.stderr)
    bench.build_tools()
    procs: List[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="osp-profile-") as tmpdir:
        tmp = Path(tmpdir)
        try:
            backend_port, backend = bench.start_null_backend()
            procs.append(backend)
            results: Dict[str, Dict[str, object]] = {}
            for name, start in (("nginx", lambda: bench.start_nginx(backend_port, tmp)),
                                ("proxy", lambda: bench.start_proxy(sys.executable, backend_port))):
                port, proc = start()
                procs.append(proc)
                results[name] = measure(name, port, proc, args, tmp, perf)
            print(f"4 KiB {args.op.upper()} x{args.conns}, null backend, {args.seconds:.0f} s each\n")
            report(results, args.top)
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait()


if __name__ == "__main__":
    main()
