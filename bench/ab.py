"""Two builds of the proxy against each other: the A/B of a change on the request path.

    build/venv/bin/python bench/ab.py --base OLD/build/venv/bin/python [--new build/venv/bin/python]

OLD is a checkout of the revision to compare with, after `make venv` there
(`git worktree add /tmp/osp-base REV && make -C /tmp/osp-base venv`). Both
proxies run, each in its own Python process with its own libosp.so, in front
of one null backend (bench/cmd/nullbackend), configured as `make bench`
configures its proxy; the Go load generator drives them in turn, base then
new, for ROUNDS rounds of each scenario (make bench's GETs and PUTs on the
null backend, chosen by --only: "64 MiB,1 GiB" for the bulk ones). Reported:
medians of req/s (MB/s for bulk) and of the proxy process's CPU per request,
and new/base ratios. Alternating in the same run is what makes the ratio
hold on a shared machine, where absolute figures move by 10% from one run to
the next.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from typing import Dict, List, Tuple

import run as bench

# make bench's scenarios on the null backend; these unless --only says otherwise.
DEFAULT_ONLY = "GET 4 KiB x32,GET 4 KiB x4,PUT 4 KiB x16"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the Python of the base build's venv")
    parser.add_argument("--new", default=sys.executable, help="the Python of the new build's venv (default: this one)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=4.0, help="per run of a timed scenario")
    parser.add_argument("--only", default=DEFAULT_ONLY,
                        help=f"comma-separated substrings of make bench's scenario names (default {DEFAULT_ONLY!r})")
    args = parser.parse_args()
    wanted = [w.strip() for w in args.only.split(",") if w.strip()]
    scenarios = [s for s in bench.SCENARIOS if s.op in ("get", "put") and any(w in s.name for w in wanted)]
    bench.build_tools()
    backend_port, backend = bench.start_null_backend()
    procs: List[subprocess.Popen] = [backend]
    try:
        builds: Dict[str, Tuple[int, subprocess.Popen]] = {}
        for name, python in (("base", args.base), ("new", args.new)):
            builds[name] = bench.start_proxy(python, backend_port)
            procs.append(builds[name][1])
        print("| scenario | unit | base | new | new/base | base CPU us/req | new CPU us/req | new/base |"
              " rounds' CPU new/base |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        for s in scenarios:
            if not s.count:
                for port, _ in builds.values():  # warm: connections, caches
                    bench.load_scenario(port, s, bench.CLIENT_KEYS, seconds=1)

            def run(build: str, port: int) -> dict:
                out = bench.load_scenario(port, s, bench.CLIENT_KEYS, seconds=None if s.count else args.seconds)
                if out["errors"]:
                    raise SystemExit(f"{build}: {out['errors']} errors in {s.name}")
                return out

            # base then new, then new then base (bench.take_turns)
            runs = {build: [(bench.throughput(out, s.name), cpu * 1e6) for out, cpu in turns]
                    for build, turns in bench.take_turns(builds, args.rounds, run).items()}
            speed = {b: statistics.median(r for r, _ in v) for b, v in runs.items()}
            cpu = {b: statistics.median(c for _, c in v) for b, v in runs.items()}
            # The spread of the rounds' own new/base ratios: what noise this run had.
            cpu_ratios = sorted(n[1] / b[1] for b, n in zip(runs["base"], runs["new"]))
            unit = "MB/s" if bench.is_bulk(s.name) else "req/s"
            print(f"| {s.name} | {unit} | {speed['base']:,.0f} | {speed['new']:,.0f} | {speed['new'] / speed['base']:.2f}x"
                  f" | {cpu['base']:,.1f} | {cpu['new']:,.1f} | {cpu['new'] / cpu['base']:.2f}x"
                  f" | {cpu_ratios[0]:.2f}-{cpu_ratios[-1]:.2f} |", flush=True)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()


if __name__ == "__main__":
    main()
