"""Where a small request's CPU goes: the proxy and nginx profiled under the same load.

    build/venv/bin/python bench/profile.py [--conns 32] [--seconds 8] [--op get|put]

Both run in front of one null backend (bench/cmd/nullbackend), configured as
`make bench` configures them, and the Go load generator drives each in turn
with 4 KiB requests; then the proxy twice more: with GOMAXPROCS=1 in its
environment, to measure the Go scheduler's share (not a setting we
recommend), and at log level info, to measure the access lines. For each: req/s, CPU per request (user and system time of the
process and its children), from `perf record -g` over the same run the
share of kernel and user time, and from `perf stat` over a second, shorter
run the system calls per request by name (with the reads that returned
EAGAIN) and the context switches; the two variants' CPU per request
against the proxy's, from rounds in which the three take turns (one run
each moves with the machine); for the proxy, its user time by the
innermost frame of our code (or the SDK's signer, or the runtime: malloc,
GC, scheduler). Needs perf (Debian's linux-perf); without it only the first
figures are printed. It answers "what is left and why" with a profile
rather than a guess: see docs/benchmarks.md, "Where the time goes".
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import errno
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Counter, Dict, Iterator, List, Optional, Set, Tuple

import run as bench

OURS = "github.com/object-storage-proxy/osp/internal/"
SDK = "github.com/aws/aws-sdk-go-v2/"

# The system calls counted by name, in the table's order: those nginx and the
# proxy make on a small request (reading, writing, waiting for readiness, the
# Go scheduler's sleeps, wakeups and preemption signals, the connections'
# bookkeeping). Any other call shows in "other": the total less these.
SYSCALLS = ("read", "readv", "recvfrom", "write", "writev", "sendto", "epoll_wait", "epoll_pwait", "futex",
            "nanosleep", "sched_yield", "tgkill", "getpid", "epoll_ctl", "getsockopt", "accept4", "close")
# The reading calls whose EAGAIN returns are counted too: a read of a socket with nothing to read yet.
READS = ("read", "readv", "recvfrom")
GOMAXPROCS_1 = "proxy, GOMAXPROCS=1"
LOG_INFO = "proxy, log_level=info"
COUNT_SECONDS = 4.0  # about how long the load's run in which the calls are counted lasts
ALTERNATE_ROUNDS, ALTERNATE_SECONDS = 6, 2.0  # the proxy and its variants taking turns, for their CPU ratios


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


def syscall_events() -> List[str]:
    """perf stat's -e arguments: SYSCALLS entered, READS that returned EAGAIN, all calls, context switches."""
    events: List[str] = []
    for name in SYSCALLS:
        events += ["-e", f"syscalls:sys_enter_{name}"]
    for name in READS:
        events += ["-e", f"syscalls:sys_exit_{name}", "--filter", f"ret == -{errno.EAGAIN}"]
    return events + ["-e", "raw_syscalls:sys_enter", "-e", "context-switches"]


@contextlib.contextmanager
def counting(pids: List[int], stat: Path) -> Iterator[None]:
    """perf stat counting syscall_events() on pids, into stat, during the with block only: its --control
    pipe switches the counters on and off and it acknowledges each switch, so the counts are exactly the block's."""
    ctl_read, ctl_write = os.pipe()
    ack_read, ack_write = os.pipe()
    perf = subprocess.Popen(["perf", "stat", "-x", ",", "-o", str(stat), "-D", "-1", "--control",
                             f"fd:{ctl_read},{ack_write}"] + syscall_events() + ["-p", ",".join(map(str, pids))],
                            pass_fds=(ctl_read, ack_write), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(ctl_read)
    os.close(ack_write)  # perf's copy only: if perf exits, a read of ack sees the end, not a hang

    try:
        with open(ctl_write, "w") as ctl, open(ack_read) as ack:
            def switch(command: str) -> None:
                ctl.write(command + "\n")
                ctl.flush()
                if "ack" not in ack.readline():
                    raise RuntimeError(f"perf stat exited before it acknowledged {command!r}")

            switch("enable")
            yield
            switch("disable")
    finally:
        perf.send_signal(signal.SIGINT)  # it writes its counts and exits
        perf.wait()


def syscall_counts(stat: Path) -> Dict[str, int]:
    """perf stat -x,'s counts by row name: "read", "read: EAGAIN" (the filtered exits), "all", "context switches"."""
    names = {"raw_syscalls:sys_enter": "all", "context-switches": "context switches"}
    names.update({f"syscalls:sys_enter_{n}": n for n in SYSCALLS})
    names.update({f"syscalls:sys_exit_{n}": f"{n}: EAGAIN" for n in READS})
    counts: Dict[str, int] = {}
    for line in stat.read_text().splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[2] in names and fields[0].isdigit():  # not "<not counted>"
            counts[names[fields[2]]] = int(fields[0])
    return counts


def measure(name: str, port: int, proc: subprocess.Popen, args: argparse.Namespace, tmp: Path, perf: bool,
            by_owner: bool) -> Dict[str, object]:
    """req/s and CPU per request; with perf, the kernel's share (and if by_owner, user samples by owner) and the
    system calls per request."""
    key, size = ("size-4096", 4096) if args.op == "get" else ("put-4k", 4096)

    def run_load(seconds: float) -> dict:
        return bench.load(port, args.op, key, size, args.conns, seconds, bench.CLIENT_KEYS)

    run_load(1.0)  # warm: connections, caches
    pids = [proc.pid] + bench.children(proc.pid)
    slug = re.sub(r"\W+", "-", name)
    data, stat = tmp / f"{slug}.perf.data", tmp / f"{slug}.stat"
    recorder = None
    if perf:
        recorder = subprocess.Popen(["perf", "record", "-F", "999", "-g", "-o", str(data), "-p",
                                     ",".join(map(str, pids)), "--", "sleep", str(args.seconds - 1)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    before = bench.cpu_seconds(pids)
    out = run_load(args.seconds)
    cpu = (bench.cpu_seconds(pids) - before) * 1e6 / max(out["requests"], 1)
    result: Dict[str, object] = {"rps": out["rps"], "cpu_us": cpu, "errors": out["errors"]}
    if recorder and recorder.wait() == 0:
        result["samples"], result["kernel"], users = breakdown(data)
        if by_owner:
            result["user"] = users
    if perf:
        # Counted apart, in a second run of the same load: a counted call is slower, the CPU above would show it.
        # The run makes a known number of requests, about COUNT_SECONDS' worth, all of them counted.
        try:
            with counting(pids, stat):
                counted = bench.load(port, args.op, key, size, args.conns, COUNT_SECONDS, bench.CLIENT_KEYS,
                                     count=max(int(out["rps"] * COUNT_SECONDS), 1))
            calls = syscall_counts(stat)
            if not calls:
                raise RuntimeError("no counts in its output")
            result["calls"] = {call: n / max(counted["requests"], 1) for call, n in calls.items()}
        except (OSError, RuntimeError) as err:
            print(f"perf stat failed for {name}, no system calls counted: {err}", file=sys.stderr)
    return result


def alternate(variants: Dict[str, Tuple[int, subprocess.Popen]], args: argparse.Namespace) -> Dict[str, List[float]]:
    """Each variant's CPU per request over the first's (the proxy), round by round: ALTERNATE_ROUNDS rounds of
    ALTERNATE_SECONDS each, the order turned each round, as bench/ab.py does. One run each, minutes apart, moves
    with the machine by tens of percent; these ratios do not."""
    key, size = ("size-4096", 4096) if args.op == "get" else ("put-4k", 4096)
    runs = bench.take_turns(variants, ALTERNATE_ROUNDS, lambda _, port: bench.load(
        port, args.op, key, size, args.conns, ALTERNATE_SECONDS, bench.CLIENT_KEYS))
    first, *others = variants
    return {name: [cpu / base for (_, cpu), (_, base) in zip(runs[name], runs[first])] for name in others}


def cpu_ratio_text(r: Dict[str, object]) -> str:
    """"1.12x the proxy's (...)": the median of a variant's ratios over the rounds it took turns with the proxy."""
    ratios = sorted(r.get("cpu_ratios") or [])  # type: ignore[arg-type]
    if not ratios:
        return "not measured against the proxy's"
    return (f"{statistics.median(ratios):.2f}x the proxy's (the median of {len(ratios)} rounds taking turns with it, "
            f"as bench/ab.py does; from {ratios[0]:.2f}x to {ratios[-1]:.2f}x)")


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
    report_scheduler(results)
    report_access_log(results)
    report_calls(results)
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


def call_rows(calls: Dict[str, float]) -> Dict[str, float]:
    """The table's rows: SYSCALLS, each reading call followed by its EAGAIN returns, then other, all, switches."""
    rows: Dict[str, float] = {}
    for name in SYSCALLS:
        rows[name] = calls.get(name, 0.0)
        if name in READS:
            rows[f"{name}: EAGAIN"] = calls.get(f"{name}: EAGAIN", 0.0)
    rows["other"] = calls.get("all", 0.0) - sum(calls.get(name, 0.0) for name in SYSCALLS)
    rows["all"] = calls.get("all", 0.0)
    rows["context switches"] = calls.get("context switches", 0.0)
    return rows


def report_calls(results: Dict[str, Dict[str, object]]) -> None:
    """System calls per request by name, a column per contender; a call none of them makes 0.005 times is left out."""
    counted = {name: call_rows(r["calls"]) for name, r in results.items() if r.get("calls")}  # type: ignore[arg-type]
    if not counted:
        return
    print(f"\nSystem calls per request, counted by `perf stat` over a second run of the same load (about "
          f"{COUNT_SECONDS:.0f} s of requests, every one counted; counting slows each call, so this run is kept out "
          "of the CPU figures above). \"all\" is every call, \"other\" those not named, a read's EAGAIN row those "
          "of its calls that found nothing to read; a blank is fewer than 0.005:\n")
    print("| call | " + " | ".join(counted) + " |")
    print("|---|" + "---:|" * len(counted))
    shown: Set[str] = set()
    for row in next(iter(counted.values())):
        values = [rows[row] for rows in counted.values()]
        call = row.split(": ")[0]  # "read" for "read: EAGAIN", shown whenever its call is: blank or not
        if row in ("other", "all", "context switches"):
            print(f"| {row} | " + " | ".join(f"{v:.2f}" for v in values) + " |")
        elif max(values) >= 0.005 or call in shown:
            shown.add(row)
            print(f"| {row} | " + " | ".join(f"{v:.2f}" if v >= 0.005 else "" for v in values) + " |")
    print("""
Go's poller reads a socket first and waits for epoll only when that read returns EAGAIN, so per request the \
proxy makes one read that finds nothing on the client's connection (its next request is not there yet); nginx \
reads when epoll_wait has said a socket is ready. On the backend's connection the proxy sends a request from \
inside the read of its answer, which then waits before it reads (upstream/send_on_read.go). futex, \
nanosleep, sched_yield, tgkill and getpid are the Go scheduler's: threads waking one another to run a \
goroutine, idle threads spinning before they sleep, preemption signals. nginx's getsockopt checks its backend \
connection for a pending error (SO_ERROR) before it sends each request.""")


def report_access_log(results: Dict[str, Dict[str, object]]) -> None:
    """What the log_level=info row measures: the access lines' cost, against the proxy at warn."""
    proxy, info = results.get("proxy"), results.get(LOG_INFO)
    if not proxy or not info:
        return
    writes = ""
    if proxy.get("calls") and info.get("calls"):
        extra = info["calls"].get("write", 0.0) - proxy["calls"].get("write", 0.0)  # type: ignore[union-attr]
        writes = f", and {extra:.2f} more writes per request: its access lines go out in batches (package linebatch)"
    print(f"""
"{LOG_INFO}" is the same proxy at the default log level, which writes an access line per request (to a pipe \
here, which another process reads, as systemd, docker and Kubernetes read a service's output; the rows above run \
at warn, as make bench does). Its CPU per request is {cpu_ratio_text(info)}{writes}.""")


def report_scheduler(results: Dict[str, Dict[str, object]]) -> None:
    """What the GOMAXPROCS=1 row measures, with its CPU per request against the proxy's."""
    proxy, one = results.get("proxy"), results.get(GOMAXPROCS_1)
    if not proxy or not one:
        return
    print(f"""
"{GOMAXPROCS_1}" is the same proxy with one thread running Go code instead of one per core \
({len(os.sched_getaffinity(0))} here): a measurement, not a setting we recommend (the proxy would use one core of \
many). Its CPU per request is {cpu_ratio_text(one)}; what it saves \
is the Go scheduler's share: threads waking one another and spinning while they look for work, which an event \
loop with one thread per core would not do either.""")


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
        # The info proxy's lines go to a pipe that another process reads into a file, as systemd, docker
        # and Kubernetes take a service's output.
        access_log = open(tmp / "access.log", "wb")
        log_reader = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=access_log)
        procs.append(log_reader)
        try:
            backend_port, backend = bench.start_null_backend()
            procs.append(backend)
            results: Dict[str, Dict[str, object]] = {}
            started: Dict[str, Tuple[int, subprocess.Popen]] = {}
            for name, start in (
                    ("nginx", lambda: bench.start_nginx(backend_port, tmp)),
                    ("proxy", lambda: bench.start_proxy(sys.executable, backend_port)),
                    (GOMAXPROCS_1, lambda: bench.start_proxy(sys.executable, backend_port, {"GOMAXPROCS": "1"})),
                    (LOG_INFO, lambda: bench.start_proxy(sys.executable, backend_port, {"OSP_BENCH_LOG_LEVEL": "info"},
                                                         stderr=log_reader.stdin))):
                port, proc = start()
                procs.append(proc)
                started[name] = (port, proc)
                results[name] = measure(name, port, proc, args, tmp, perf, by_owner=name == "proxy")
            variants = {name: started[name] for name in ("proxy", GOMAXPROCS_1, LOG_INFO)}
            for name, ratios in alternate(variants, args).items():
                results[name]["cpu_ratios"] = ratios
            print(f"4 KiB {args.op.upper()} x{args.conns}, null backend, {args.seconds:.0f} s each\n")
            report(results, args.top)
        finally:
            for p in reversed(procs):  # the log's reader last: the proxy writing to it stops first
                p.terminate()
                p.wait()
            access_log.close()


if __name__ == "__main__":
    main()
