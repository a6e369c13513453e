"""versitygw's own integration suite (`versitygw test ... full-flow`), run
straight at a versitygw and through the proxy in front of an identical one,
and compared test by test.

    python tests/conformance.py --versitygw build/bin/versitygw [--versioning]
        [--markdown FILE] [--json FILE]

prints the comparison and exits 1 when a test that passed direct did not
pass through the proxy, unless it is one of DELIBERATE (the proxy differs on
purpose; each entry says why). tests/test_conformance.py runs the same
comparison from pytest; `make conformance` runs every configuration.

How it is run:
- two fresh versitygw servers, started alike (posix backend, --iam-dir, the
  same root keys; with --versioning also --versioning-dir): the suite names
  its buckets test-bucket-1, -2, ... in each run, so two runs on one server
  would collide; a fresh server each also keeps one run's leftovers out of
  the other;
- the proxy in front of the second one with a single cos_map entry "*"
  holding versitygw's root keys, and the suite given the proxy's client key
  (from hmac_keystore), so every bucket the suite creates is served;
- the suite runs in a directory holding ./versitygw, which its multi-account
  tests execute to create users (`versitygw admin`);
- `--parallel` (as versitygw's own CI runs it): about a minute per run.

The suite prints "RUN  name", then "PASS name", "FAIL name: why" or "SKIP
name" per test (with ANSI colours). A test left without a result means the
suite process died in it (a panic in the suite); the tests it never reached
are then run one by one (`versitygw test NAME`), so one crash does not hide
the rest.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

# The keys are the tests' own (tests/helpers.py), repeated here so that the
# script runs without the test package on sys.path.
BACKEND_ACCESS_KEY = "backendroot"
BACKEND_SECRET_KEY = "backend-root-secret-0123456789"
CLIENT_ACCESS_KEY = "CLIENTAKIDAAAAAAAAAA"
CLIENT_SECRET_KEY = "client-secret-aaaaaaaaaaaaaaaaaaaaaaaaa"
REGION = "us-east-1"

# A whole run's limit: a wedged suite must fail the run, not hang CI.
RUN_TIMEOUT = 900.0
# One test re-run by name after a crash.
SINGLE_TIMEOUT = 120.0

PASS, FAIL, SKIP, CRASH = "pass", "fail", "skip", "crash"


# --------------------------------------------------------------------------
# the tests the proxy fails on purpose


def _names(*names: str) -> Tuple[str, ...]:
    return names


# Why each group differs. A test listed here may fail through the proxy
# without failing the comparison; one not listed may not. Keep it exact
# (names, not patterns): a new suite version's new tests must be looked at.
DELIBERATE_GROUPS: Tuple[Tuple[str, Tuple[str, ...]], ...] = ()

DELIBERATE: Dict[str, str] = {name: reason for reason, names in DELIBERATE_GROUPS for name in names}


# --------------------------------------------------------------------------
# parsing the suite's output

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# A result marker in colour. The suite sometimes prints a message without a
# newline ("...: failed to delete the bucket: ..."), so the next marker can
# be mid-line: each marker is moved to a line of its own before parsing.
_MARKER = re.compile(r"\x1b\[3[0-9]m(RUN |PASS|FAIL|SKIP) \x1b\[0m")
_LINE = re.compile(r"^(RUN|PASS|FAIL|SKIP) {1,2}([A-Za-z0-9_]+)(?::\s?(.*))?$")
_SUMMARY = re.compile(r"^RAN: (\d+) PASS: (\d+) FAIL: (\d+) SKIP: (\d+)$")


@dataclass
class Outcome:
    status: str
    detail: str = ""


@dataclass
class RunResult:
    """One run of the suite: each test's outcome, in the order they ran."""

    label: str
    outcomes: Dict[str, Outcome] = field(default_factory=dict)
    summary: Optional[Tuple[int, int, int, int]] = None
    crashed: bool = False
    crash_text: str = ""
    returncode: int = 0
    seconds: float = 0.0
    rerun: List[str] = field(default_factory=list)

    def names(self, status: str) -> List[str]:
        return [n for n, o in self.outcomes.items() if o.status == status]

    def counts(self) -> Dict[str, int]:
        return {s: len(self.names(s)) for s in (PASS, FAIL, SKIP, CRASH)}


def parse_output(text: str, label: str = "") -> RunResult:
    """Reads the suite's per-test lines. A FAIL's reason is its first line
    (the suite prints long diffs); a test that RAN without a result before a
    panic is CRASH. A test may print FAIL and then PASS (some report a
    sub-check and go on): any FAIL wins."""
    result = RunResult(label)
    pending: List[str] = []
    text = _MARKER.sub(lambda m: "\n" + m.group(1) + " ", text)
    for raw in text.splitlines():
        line = _ANSI.sub("", raw).rstrip("\r")
        summary = _SUMMARY.match(line.strip())
        if summary:
            result.summary = tuple(int(g) for g in summary.groups())  # type: ignore[assignment]
            continue
        if line.startswith("panic:") or line.startswith("fatal error:"):
            result.crashed = True
            result.crash_text = line
            continue
        m = _LINE.match(line)
        if not m:
            continue
        kind, name, detail = m.group(1), m.group(2), (m.group(3) or "").strip()
        if kind == "RUN":
            pending.append(name)
            continue
        if name in pending:
            pending.remove(name)
        previous = result.outcomes.get(name)
        if kind == "FAIL":
            if previous is None or previous.status != FAIL:
                result.outcomes[name] = Outcome(FAIL, detail[:500])
        elif kind == "PASS":
            if previous is None:
                result.outcomes[name] = Outcome(PASS)
        elif kind == "SKIP":
            if previous is None:
                result.outcomes[name] = Outcome(SKIP, detail[:500])
    for name in pending:
        if name not in result.outcomes:
            result.outcomes[name] = Outcome(CRASH, result.crash_text or "no result: the suite stopped in this test")
    return result


# --------------------------------------------------------------------------
# servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, proc: "subprocess.Popen[bytes]", log_path: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"versitygw exited with code {proc.returncode}:\n{log_path.read_text(errors='replace')[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"versitygw did not listen on 127.0.0.1:{port} within {timeout}s")


class Versitygw:
    """A versitygw posix server in its own directory, set up as versitygw's
    own CI sets it up for the suite (root keys, --iam-dir, optionally
    --versioning-dir)."""

    def __init__(self, binary: str, base: Path, *, versioning: bool) -> None:
        self.base = base
        for sub in ("data", "iam", "versions"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        args = [binary, "--port", f"127.0.0.1:{self.port}", "--quiet", "--iam-dir", str(base / "iam"), "posix"]
        if versioning:
            args += ["--versioning-dir", str(base / "versions")]
        args.append(str(base / "data"))
        env = _clean_env(base / "home")
        env.update(ROOT_ACCESS_KEY=BACKEND_ACCESS_KEY, ROOT_SECRET_KEY=BACKEND_SECRET_KEY)
        self.log_path = base / "versitygw.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_for_port(self.port, self.proc, self.log_path)
        except Exception:
            self.stop()
            raise

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def entry(self) -> Dict[str, Any]:
        return {
            "host": "127.0.0.1",
            "port": self.port,
            "region": REGION,
            "scheme": "http",
            "addressing_style": "path",
            "access_key": BACKEND_ACCESS_KEY,
            "secret_key": BACKEND_SECRET_KEY,
        }


def start_proxy(backend: Versitygw) -> Any:
    """The proxy in front of ``backend``: one "*" entry, the tests' client
    keystore. Returns the started ProxyServer."""
    from object_storage_proxy import ProxyServer, ProxyServerConfig

    server = ProxyServer(
        ProxyServerConfig(
            {"*": backend.entry()},
            hmac_keystore={CLIENT_ACCESS_KEY: CLIENT_SECRET_KEY},
            http_port=0,
            bind_address="127.0.0.1",
        )
    )
    server.start()
    return server


# --------------------------------------------------------------------------
# running the suite

_DROPPED_PREFIXES = ("AWS_", "VGW_", "ROOT_")


def _clean_env(home: Path) -> Dict[str, str]:
    """The suite's environment: no AWS_* of whoever runs it (AWS_CA_BUNDLE
    alone makes the suite's SDK refuse to start), no HTTP proxies."""
    home.mkdir(parents=True, exist_ok=True)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(_DROPPED_PREFIXES) and k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
    }
    env.update(HOME=str(home), NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost", LC_ALL="C.UTF-8")
    return env


def _workdir(binary: str, base: Path) -> Path:
    """A directory holding ./versitygw (the suite runs it for admin calls)."""
    work = base / "work"
    work.mkdir(parents=True, exist_ok=True)
    link = work / "versitygw"
    if not link.exists():
        link.symlink_to(os.path.abspath(binary))
    return work


def _run(args: Sequence[str], cwd: Path, env: Mapping[str, str], timeout: float) -> Tuple[int, str]:
    proc = subprocess.Popen(
        list(args), cwd=str(cwd), env=dict(env), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return -1, out.decode(errors="replace") + f"\npanic: the suite did not finish within {timeout:.0f}s\n"
    return proc.returncode, out.decode(errors="replace")


def run_suite(
    binary: str,
    endpoint: str,
    access_key: str,
    secret_key: str,
    base: Path,
    *,
    label: str,
    group: str = "full-flow",
    versioning: bool = False,
    parallel: bool = True,
    log: Optional[Path] = None,
) -> RunResult:
    """Runs one group of the suite at ``endpoint`` and parses it."""
    env = _clean_env(base / "home")
    work = _workdir(binary, base)
    common = [os.path.abspath(binary), "test", "-a", access_key, "-s", secret_key, "-e", endpoint]
    args = common + [group] + (["--versioning-enabled"] if versioning else []) + (["--parallel"] if parallel else [])
    started = time.monotonic()
    code, text = _run(args, work, env, RUN_TIMEOUT)
    result = parse_output(text, label)
    result.returncode = code
    result.seconds = time.monotonic() - started
    if log is not None:
        log.write_text(text)
    return result


# --------------------------------------------------------------------------
# comparing


@dataclass
class Comparison:
    direct: RunResult
    proxy: RunResult
    # passed direct, not through the proxy, not deliberate: each fails the run
    regressions: Dict[str, Outcome]
    # passed direct, not through the proxy, listed in DELIBERATE
    deliberate: Dict[str, Outcome]
    # listed in DELIBERATE but passed through the proxy (the list is stale)
    stale: List[str]
    # did not pass direct (nothing to compare against)
    not_direct: List[str]

    @property
    def ok(self) -> bool:
        return not self.regressions and bool(self.direct.names(PASS))


def compare(direct: RunResult, proxy: RunResult, deliberate: Mapping[str, str] = DELIBERATE) -> Comparison:
    regressions: Dict[str, Outcome] = {}
    allowed: Dict[str, Outcome] = {}
    for name in direct.names(PASS):
        got = proxy.outcomes.get(name, Outcome(CRASH, "never ran through the proxy"))
        if got.status == PASS:
            continue
        (allowed if name in deliberate else regressions)[name] = got
    stale = sorted(n for n in deliberate if proxy.outcomes.get(n, Outcome(FAIL)).status == PASS)
    not_direct = sorted(n for n, o in direct.outcomes.items() if o.status != PASS)
    return Comparison(direct, proxy, regressions, allowed, stale, not_direct)


def report(c: Comparison, title: str) -> str:
    d, p = c.direct.counts(), c.proxy.counts()
    passed_both = sum(1 for n in c.direct.names(PASS) if c.proxy.outcomes.get(n, Outcome(FAIL)).status == PASS)
    lines = [
        f"== {title}",
        f"direct:      {len(c.direct.outcomes)} tests, {d[PASS]} passed, {d[FAIL]} failed, {d[SKIP]} skipped,"
        f" {d[CRASH]} crashed ({c.direct.seconds:.0f} s)",
        f"proxy:       {len(c.proxy.outcomes)} tests, {p[PASS]} passed, {p[FAIL]} failed, {p[SKIP]} skipped,"
        f" {p[CRASH]} crashed ({c.proxy.seconds:.0f} s"
        + (f"; {len(c.proxy.rerun)} re-run one by one after the suite crashed" if c.proxy.rerun else "")
        + ")",
        f"passed direct and through the proxy: {passed_both} of {d[PASS]}",
        f"passed direct, deliberately not through the proxy: {len(c.deliberate)}",
        f"passed direct, NOT through the proxy (regressions): {len(c.regressions)}",
    ]
    for name, o in sorted(c.regressions.items()):
        lines.append(f"  REGRESSION {name}: {o.status}: {o.detail[:300]}")
    if c.stale:
        lines.append(f"listed as deliberate but passing through the proxy (remove from DELIBERATE): {', '.join(c.stale)}")
    if c.not_direct:
        lines.append(f"did not pass direct: {', '.join(c.not_direct)}")
    return "\n".join(lines)


def markdown(comparisons: Sequence[Tuple[str, Comparison]]) -> str:
    """The numbers and the reasons, for docs/compatibility.md."""
    out = ["| configuration | tests | passed direct | passed through the proxy | deliberate differences | other differences |",
           "|---|---|---|---|---|---|"]
    for title, c in comparisons:
        out.append(
            f"| {title} | {len(c.direct.outcomes)} | {len(c.direct.names(PASS))} | {len(c.proxy.names(PASS))} |"
            f" {len(c.deliberate)} | {len(c.regressions)} |"
        )
    seen = {n for _, c in comparisons for n in c.deliberate}
    out.append("")
    for reason, names in DELIBERATE_GROUPS:
        hit = [n for n in names if n in seen]
        if not hit:
            continue
        out.append(f"- **{reason}** ({len(hit)}): " + ", ".join(f"`{n}`" for n in hit))
    return "\n".join(out)


# --------------------------------------------------------------------------
# one configuration, both ways


def run_both(binary: str, workdir: Path, *, group: str = "full-flow", versioning: bool = False) -> Comparison:
    """The suite direct at one versitygw and through the proxy at another,
    both at once (they share nothing). The proxy run's re-runs after a crash
    use the direct run's test list."""
    gw_direct = Versitygw(binary, workdir / "direct-gw", versioning=versioning)
    gw_proxied = Versitygw(binary, workdir / "proxied-gw", versioning=versioning)
    proxy = None
    try:
        proxy = start_proxy(gw_proxied)
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            fut_direct = pool.submit(
                run_suite, binary, gw_direct.endpoint_url, BACKEND_ACCESS_KEY, BACKEND_SECRET_KEY,
                workdir / "direct", label="direct", group=group, versioning=versioning,
                log=workdir / "direct.log",
            )
            fut_proxy = pool.submit(
                run_suite, binary, proxy.endpoint_url, CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY,
                workdir / "proxy", label="proxy", group=group, versioning=versioning,
                log=workdir / "proxy.log",
            )
            direct = fut_direct.result()
            through = fut_proxy.result()
        if through.crashed:
            # Run what the crash hid, now that the direct list is known.
            through = _fill_after_crash(binary, proxy.endpoint_url, workdir, through, direct, versioning)
        return compare(direct, through)
    finally:
        if proxy is not None:
            proxy.stop()
        gw_direct.stop()
        gw_proxied.stop()


def _fill_after_crash(
    binary: str, endpoint: str, workdir: Path, through: RunResult, direct: RunResult, versioning: bool
) -> RunResult:
    """Runs alone each test the direct run had that the crashed proxy run
    never finished (the suite's own single-test commands): the tests in
    flight when it died get their own result, the one that killed it dies
    again alone."""
    missing = [n for n in direct.outcomes if n not in through.outcomes or through.outcomes[n].status == CRASH]
    base = workdir / "proxy"
    env = _clean_env(base / "home")
    work = _workdir(binary, base)
    common = [os.path.abspath(binary), "test", "-a", CLIENT_ACCESS_KEY, "-s", CLIENT_SECRET_KEY, "-e", endpoint]
    started = time.monotonic()
    for name in missing:
        _, out = _run(common + [name] + (["--versioning-enabled"] if versioning else []), work, env, SINGLE_TIMEOUT)
        with open(workdir / "proxy.log", "a") as log:
            log.write(out)
        one = parse_output(out, "proxy")
        through.outcomes[name] = one.outcomes.get(name, Outcome(CRASH, one.crash_text or "no result when run alone"))
        through.rerun.append(name)
    through.seconds += time.monotonic() - started
    return through


CONFIGURATIONS: Dict[str, Dict[str, Any]] = {
    "full-flow": {"group": "full-flow", "versioning": False},
    "full-flow-versioning": {"group": "full-flow", "versioning": True},
}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--versitygw", default=os.environ.get("OSP_VERSITYGW", "build/bin/versitygw"))
    parser.add_argument("--config", action="append", choices=sorted(CONFIGURATIONS),
                        help="configurations to run (default: all)")
    parser.add_argument("--markdown", type=Path, help="write the docs/compatibility.md table here")
    parser.add_argument("--json", type=Path, help="write every test's outcome here")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = parser.parse_args(argv)
    if not (os.path.isfile(args.versitygw) and os.access(args.versitygw, os.X_OK)):
        print(f"versitygw not found at {args.versitygw} (`make conformance` builds it)", file=sys.stderr)
        return 2
    results: List[Tuple[str, Comparison]] = []
    workdir = Path(tempfile.mkdtemp(prefix="osp-conformance-"))
    try:
        for name in args.config or list(CONFIGURATIONS):
            c = run_both(args.versitygw, workdir / name, **CONFIGURATIONS[name])
            results.append((name, c))
            print(report(c, name), flush=True)
    finally:
        if args.keep:
            print(f"logs in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.markdown:
        args.markdown.write_text(markdown(results) + "\n")
    if args.json:
        args.json.write_text(json.dumps({
            name: {
                "direct": {n: o.status for n, o in c.direct.outcomes.items()},
                "proxy": {n: [o.status, o.detail] for n, o in c.proxy.outcomes.items()},
                "deliberate": {n: DELIBERATE[n] for n in c.deliberate},
                "regressions": sorted(c.regressions),
            }
            for name, c in results
        }, indent=1, sort_keys=True))
    return 0 if all(c.ok for _, c in results) else 1


if __name__ == "__main__":
    sys.exit(main())
