"""A real redis-server for the limits' tests: on 127.0.0.1, a free port, in a
temporary directory of its own, with AOF and ``appendfsync always`` (what
docs/limits.md recommends: a count is on disk before the proxy hears it), so
a restart keeps every acknowledged count. ``make deps`` installs the Debian
package redis-server; a missing one fails, never skips."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from typing import Iterator, Optional

from helpers import debian_binary, free_port, stop_process

class RedisServer:
    """One redis-server process; ``stop`` and ``start`` keep its port and
    directory, so a restart finds its AOF."""

    def __init__(self, directory: str, port: int, password: str = "") -> None:
        self.directory = directory
        self.port = port
        self.password = password
        self.proc: Optional["subprocess.Popen[bytes]"] = None
        self.log_path = os.path.join(directory, "redis.log")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        args = [
            debian_binary("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.directory,
            "--save", "", "--appendonly", "yes", "--appendfsync", "always",
            "--maxmemory-policy", "noeviction", "--protected-mode", "no",
            *(["--requirepass", self.password] if self.password else []),
        ]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}:\n{self.log()}")
            if self.ping():
                return self
            time.sleep(0.02)
        raise RuntimeError(f"redis-server did not answer on 127.0.0.1:{self.port}:\n{self.log()}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            stop_process(proc, 10)  # SIGTERM: redis-server flushes its AOF and exits

    def ping(self) -> bool:
        # A server that wants a password answers, too.
        return self.command("PING").startswith((b"+PONG", b"-NOAUTH"))

    def command(self, *words: str) -> bytes:
        """One command in RESP; its raw reply (b"" when nothing answers)."""
        request = f"*{len(words)}\r\n".encode() + b"".join(f"${len(w)}\r\n{w}\r\n".encode() for w in words)
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(request)
                return s.recv(65536)
        except OSError:
            return b""

    def log(self) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-3000:]
        except OSError:
            return ""


@contextlib.contextmanager
def run_redis(password: str = "") -> Iterator[RedisServer]:
    """A redis-server of its own (wanting ``password`` if given), stopped
    and its directory removed after."""
    directory = tempfile.mkdtemp(prefix="osp-redis-")
    server = RedisServer(directory, free_port(), password)
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)
