"""versitygw and the proxy as child processes, and what is read about
them: ports, /proc/<pid>, the admin listener's /metrics."""

from __future__ import annotations

import ctypes
import io
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence, Tuple

from soak.config import BACKEND_KEY, BACKEND_SECRET, BUCKET, CLIENT_KEYS, REGION


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _parent_death_signal() -> Optional[Callable[[], None]]:
    """A preexec_fn that has a child killed when this process dies (even
    by SIGKILL), so no versitygw or proxy outlives a killed soak."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None

    def set_pdeathsig() -> None:
        prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG

    return set_pdeathsig


def log_tail(path: Path, size: int = 3000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, io.SEEK_END)
            f.seek(max(0, f.tell() - size))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


class Child:
    """A child process, its output to a log file; stopped by its own pid."""

    def __init__(self, name: str, args: Sequence[str], log_path: Path, env: Dict[str, str]) -> None:
        self.name, self.log_path = name, log_path
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(list(args), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         env=env, preexec_fn=_parent_death_signal())

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 20.0) -> Optional[int]:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def wait_until(what: str, check: Callable[[], bool], child: Child, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.alive():
            raise RuntimeError(f"{child.name} exited ({child.proc.returncode}) before {what}:\n{log_tail(child.log_path)}")
        if check():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{child.name}: no {what} within {timeout:g}s:\n{log_tail(child.log_path)}")


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _toml_string(value: str) -> str:
    return json.dumps(value)  # a JSON string is a TOML basic string


def proxy_config(backend_port: int) -> str:
    lines = [
        "[server]",
        "http_port = 0",
        "admin_port = 0",
        'bind_address = "127.0.0.1"',
        'log_level = "info"',
        "",
        "[keystore]",
        *(f"{_toml_string(k)} = {_toml_string(s)}" for k, s in CLIENT_KEYS.items()),
        "",
        f"[buckets.{BUCKET}]",
        'host = "127.0.0.1"',
        f"port = {backend_port}",
        f"region = {_toml_string(REGION)}",
        'scheme = "http"',
        'addressing_style = "path"',
        f"access_key = {_toml_string(BACKEND_KEY)}",
        f"secret_key = {_toml_string(BACKEND_SECRET)}",
        "",
    ]
    return "\n".join(lines)


# An opener that never goes through an environment HTTP proxy.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_get(url: str, timeout: float = 30.0) -> Tuple[int, bytes]:
    try:
        with OPENER.open(url, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


_GOROUTINES = re.compile(r"^go_goroutines(?:\{[^}]*\})?\s+(\S+)\s*$", re.M)


def goroutines(admin_endpoint: str) -> int:
    """go_goroutines from the /metrics of the proxy's admin listener."""
    status, body = http_get(admin_endpoint + "/metrics", timeout=30)
    if status != 200:
        raise RuntimeError(f"/metrics answered {status}: {body[:200]!r}")
    match = _GOROUTINES.search(body.decode(errors="replace"))
    if not match:
        raise RuntimeError("/metrics has no go_goroutines")
    return int(float(match.group(1)))


def proc_status_kib(pid: int, name: str) -> int:
    """A ``kB`` field of /proc/<pid>/status (VmRSS, VmHWM); 0 once gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def reset_hwm(pid: int) -> None:
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")  # VmHWM := VmRSS
    except OSError:
        pass
