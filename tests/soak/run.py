"""One soak run, start to end, and its report."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, List, Optional

import boto3
from botocore.config import Config

from soak.bodies import human_bytes
from soak.config import (
    BACKEND_KEY,
    BACKEND_SECRET,
    BUCKET,
    CLIENT_KEYS,
    KINDS,
    REGION,
    Check,
    KiB,
    MiB,
    SoakConfig,
    Summary,
)
from soak.processes import (
    Child,
    free_port,
    http_get,
    log_tail,
    port_open,
    proc_status_kib,
    proxy_config,
    reset_hwm,
    wait_until,
)
from soak.sampler import Sampler
from soak.stats import Stats, percentile
from soak.worker import Worker, make_client

ROOT = Path(__file__).resolve().parents[2]


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
