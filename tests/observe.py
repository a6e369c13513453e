"""Helpers of the production-readiness tests (test_observability.py,
test_https.py, test_scaleout.py): the proxy's admin endpoints, a parser of
the Prometheus text format, a parser of the proxy's access log lines (slog
text or JSON), and an haproxy started as a subprocess.

The admin endpoints live on the proxy's admin listener (``admin_port``,
127.0.0.1 by default), never on its S3 listeners::

    GET /healthz   200 "ok" while the process serves
    GET /readyz    200 once listening with a loaded config, 503 while stopping
    GET /metrics   Prometheus text format (404 with metrics=False)

``admin`` and ``scrape`` take a ProxyServer (its ``admin_url``) or the
admin listener's URL.
"""

from __future__ import annotations

import json
import math
import re
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, TypeVar

import requests

from helpers import debian_binary, free_port

HEALTHZ = "/healthz"
READYZ = "/readyz"
METRICS = "/metrics"

# Fields of every access log record (msg="request").
ACCESS_LOG_FIELDS = ("request_id", "method", "bucket", "operation", "access_key", "status", "bytes_in",
                     "bytes_out", "duration_ms", "backend_ms", "remote")

T = TypeVar("T")


def admin_url(target: Any) -> str:
    """The admin listener's URL: ``target`` itself when it is a URL, else a
    ProxyServer's ``admin_url`` (started with ``admin_port``)."""
    if isinstance(target, str):
        return target
    url = getattr(target, "admin_url", None)
    assert url, f"{target!r} has no admin listener: start it with admin_port=0"
    return str(url)


def admin(target: Any, path: str, *, method: str = "GET", headers: Optional[Mapping[str, str]] = None,
          verify: Any = True, timeout: float = 10) -> requests.Response:
    """``method path`` on the admin listener of ``target`` (a ProxyServer or
    the admin URL), with no S3 credentials."""
    return requests.request(method, admin_url(target).rstrip("/") + path, headers=dict(headers or {}),
                            verify=verify, timeout=timeout, allow_redirects=False)


def eventually(check: Callable[[], T], timeout: float = 3.0, interval: float = 0.05) -> T:
    """Runs ``check`` until it returns without an AssertionError (a metric
    or a log line of a request may be recorded just after its response
    reached the client), then returns its result; re-raises the last
    AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(interval)


# --------------------------------------------------------------------------
# Prometheus text format


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')


def _unescape_label(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "\\": "\\", '"': '"'}.get(m.group(1), "\\" + m.group(1)), value)


def _parse_labels(text: str) -> Dict[str, str]:
    labels: Dict[str, str] = {}
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _LABEL.match(text, pos)
        assert m, f"malformed label set {text!r} at {pos}"
        labels[m.group(1)] = _unescape_label(m.group(2))
        pos = m.end()
    return labels


def _float(text: str) -> float:
    return {"+Inf": math.inf, "-Inf": -math.inf, "NaN": math.nan}.get(text) or float(text)


@dataclass
class Metrics:
    """One scrape of the admin listener's /metrics."""

    text: str
    types: Dict[str, str] = field(default_factory=dict)  # family -> counter, gauge, histogram...
    samples: List[Tuple[str, Dict[str, str], float]] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> "Metrics":
        metrics = cls(text)
        for line in text.splitlines():
            line = line.strip()
            if not line:
                continue
            if line.startswith("#"):
                parts = line.split(None, 3)
                if len(parts) >= 4 and parts[1] == "TYPE":
                    metrics.types[parts[2]] = parts[3].strip()
                continue
            m = _SAMPLE.match(line)
            assert m, f"not a Prometheus sample line: {line!r}"
            metrics.samples.append((m.group(1), _parse_labels(m.group(2) or ""), _float(m.group(3))))
        return metrics

    def series(self, name: str, **labels: str) -> List[Tuple[Dict[str, str], float]]:
        """The samples of ``name`` whose labels include ``labels``."""
        return [(l, v) for n, l, v in self.samples
                if n == name and all(l.get(k, "") == want for k, want in labels.items())]

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples of ``name`` whose labels include ``labels``
        (0 when there is none: a counter never incremented is not exported)."""
        return sum(v for _, v in self.series(name, **labels))

    def label_values(self, name: str, label: str) -> List[str]:
        return sorted({l.get(label, "") for l, _ in self.series(name)})

    def table(self, name: str) -> List[Tuple[Dict[str, str], float]]:
        """For assertion messages."""
        return self.series(name)


def scrape(target: Any, *, verify: Any = True) -> Metrics:
    """GET /metrics of a proxy's admin listener (a ProxyServer or the admin
    URL) and parse it."""
    response = admin(target, METRICS, verify=verify)
    assert response.status_code == 200, (response.status_code, response.text[:500])
    content_type = response.headers.get("Content-Type", "")
    assert content_type.startswith("text/plain"), content_type
    return Metrics.parse(response.text)


# --------------------------------------------------------------------------
# access logs (log/slog: text or JSON)


_TEXT_FIELD = re.compile(r'([^\s=]+)=("(?:[^"\\]|\\.)*"|\S*)')


def _unquote_go(value: str) -> str:
    if not (value.startswith('"') and value.endswith('"')):
        return value
    try:
        return str(json.loads(value))
    except ValueError:
        return value[1:-1]


def parse_log_line(line: str) -> Optional[Dict[str, Any]]:
    """A slog record (JSON object or text key=value line) as a dict, None
    for a line that is neither (e.g. pytest's own output)."""
    line = line.strip()
    if not line:
        return None
    if line.startswith("{"):
        try:
            record = json.loads(line)
        except ValueError:
            return None
        return record if isinstance(record, dict) else None
    fields = {m.group(1): _unquote_go(m.group(2)) for m in _TEXT_FIELD.finditer(line)}
    if "msg" not in fields or "level" not in fields:
        return None
    return fields


def log_records(text: str) -> List[Dict[str, Any]]:
    return [r for r in (parse_log_line(line) for line in text.splitlines()) if r is not None]


def access_records(text: str) -> List[Dict[str, Any]]:
    """The access log records (msg == "request") in captured stderr."""
    return [r for r in log_records(text) if r.get("msg") == "request"]


class Stderr:
    """Accumulates what capfd captured, so a test can poll for log lines
    without losing what it already read."""

    def __init__(self, capfd: Any) -> None:
        self.capfd = capfd
        self.text = ""

    def read(self) -> str:
        out, err = self.capfd.readouterr()
        self.text += err + out
        return self.text

    def records_for(self, request_ids: Iterable[str], timeout: float = 3.0) -> Dict[str, List[Dict[str, Any]]]:
        """The access records of each request id, waiting until each has one."""
        wanted = list(request_ids)

        def check() -> Dict[str, List[Dict[str, Any]]]:
            records = access_records(self.read())
            found = {rid: [r for r in records if str(r.get("request_id")) == rid] for rid in wanted}
            missing = [rid for rid, rs in found.items() if not rs]
            assert not missing, (f"no access log line (msg=request) for request ids {missing}; "
                                 f"captured stderr ends with:\n{self.text[-3000:]}")
            return found

        return eventually(check, timeout)


# --------------------------------------------------------------------------
# haproxy


class Haproxy:
    """haproxy in front of proxies on 127.0.0.1, round robin, HTTP mode,
    run in the foreground (-db) from a generated haproxy.cfg."""

    def __init__(self, directory: Path, servers: Sequence[int], *, http_request_rules: Sequence[str] = (),
                 name: str = "haproxy") -> None:
        self.directory = directory
        self.servers = list(servers)
        self.rules = list(http_request_rules)
        self.port = 0
        self.config_path = directory / f"{name}.cfg"
        self.log_path = directory / f"{name}.log"
        self.proc: Optional["subprocess.Popen[bytes]"] = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config_text(self) -> str:
        lines = [
            "global",
            "    maxconn 512",
            "",
            "defaults",
            "    mode http",
            "    option forwardfor",
            "    timeout connect 5s",
            "    timeout client 60s",
            "    timeout server 60s",
            "",
            "frontend osp_front",
            f"    bind 127.0.0.1:{self.port}",
            *(f"    {rule}" for rule in self.rules),
            "    default_backend osp_proxies",
            "",
            "backend osp_proxies",
            "    balance roundrobin",
            *(f"    server osp{i} 127.0.0.1:{port}" for i, port in enumerate(self.servers, 1)),
            "",
        ]
        return "\n".join(lines)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def start(self) -> "Haproxy":
        binary = debian_binary("haproxy")
        self.port = free_port()
        self.config_path.write_text(self.config_text())
        check = subprocess.run([binary, "-c", "-f", str(self.config_path)], capture_output=True, timeout=30)
        assert check.returncode == 0, (self.config_text(), check.stdout.decode(errors="replace"),
                                       check.stderr.decode(errors="replace"))
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([binary, "-f", str(self.config_path), "-db"], stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"haproxy exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"haproxy did not listen on 127.0.0.1:{self.port}:\n{self.log()}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.kill()  # this process's own child, by its pid
        proc.wait(timeout=10)
