"""The ``osp`` command in a child process: a TOML configuration for it
(config_text, toml_document), its environment (child_env) and the running
process with its output (Osp). conftest.py's ``osp_processes`` fixture kills
what a test left running."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional

from helpers import BACKEND_ACCESS_KEY, BACKEND_SECRET_KEY, CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY, REGION


def toml_value(value: Any) -> str:
    """A Python value as TOML (JSON strings, numbers and arrays are TOML)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)


def toml_document(tables: Mapping[str, Mapping[str, Any]]) -> str:
    lines: List[str] = []
    for table, values in tables.items():
        lines.append(f"[{table}]")
        lines += [f"{json.dumps(k)} = {toml_value(v)}" for k, v in values.items()]
        lines.append("")
    return "\n".join(lines)


def config_text(
    backend: Any,
    buckets: Iterable[str],
    *,
    port: int,
    keystore: Optional[Mapping[str, Any]] = None,
    callables: Optional[Mapping[str, Any]] = None,
    **server: Any,
) -> str:
    tables: Dict[str, Dict[str, Any]] = {
        "server": {"http_port": port, "bind_address": "127.0.0.1", **server},
        "keystore": dict(keystore if keystore is not None else {CLIENT_ACCESS_KEY: CLIENT_SECRET_KEY}),
    }
    if callables:
        tables["callables"] = dict(callables)
    for bucket in buckets:
        tables[f"buckets.{bucket}"] = {
            "host": backend.host,
            "port": backend.port,
            "region": REGION,
            "scheme": "http",
            "addressing_style": "path",
            "access_key": BACKEND_ACCESS_KEY,
            "secret_key": BACKEND_SECRET_KEY,
        }
    return toml_document(tables)


def write_module(directory: Path, prefix: str, source: str) -> str:
    """Writes ``source`` as a new module in ``directory`` (made if need be;
    give it to child_env) under a unique name starting with ``prefix``, and
    returns that name (modules stay imported: a name is never reused)."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.py").write_text(source)
    return name


def child_env(*python_path: Path, **extra: str) -> Dict[str, str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1", **extra)
    env["PYTHONPATH"] = os.pathsep.join([*map(str, python_path), *filter(None, [env.get("PYTHONPATH")])])
    return env


class Osp:
    """``python -m object_storage_proxy ARGS`` in a child process, its
    output (stdout and stderr) collected line by line."""

    def __init__(self, args: List[str], env: Mapping[str, str], cwd: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "object_storage_proxy", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=dict(env),
            cwd=cwd,
        )
        self.lines: List[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def output(self) -> str:
        with self._changed:
            return "".join(self.lines)

    def mark(self) -> int:
        with self._changed:
            return len(self.lines)

    def wait_for(self, text: str, after: int = 0, timeout: float = 20.0) -> str:
        """Waits for a line holding ``text`` among the lines from ``after``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines[after:]:
                    if text in line:
                        return line
                if self.proc.poll() is not None and not self._reader.is_alive():
                    raise AssertionError(f"osp exited ({self.proc.returncode}) before {text!r}:\n{''.join(self.lines)}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {text!r} within {timeout}s:\n{''.join(self.lines)}")
                self._changed.wait(min(left, 0.2))

    def send(self, sig: int, expect: str, timeout: float = 20.0) -> str:
        """Sends ``sig`` and waits for the next line holding ``expect``."""
        mark = self.mark()
        self.proc.send_signal(sig)
        return self.wait_for(expect, mark, timeout)

    def finish(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=5)
        return code
