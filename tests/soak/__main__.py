"""The soak's command line: ``PYTHONPATH=tests python -m soak --help``."""

from __future__ import annotations

import argparse
import signal
import sys
from types import FrameType
from typing import Optional, Sequence

import soak
from soak.config import MiB, SoakConfig
from soak.run import format_summary, run_soak


def parse_args(argv: Optional[Sequence[str]]) -> SoakConfig:
    p = argparse.ArgumentParser(prog="python -m soak", description=soak.__doc__.split("\n\n")[0],
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
