"""The leak check every fault test ends with (:class:`LeakGuard`, the
``leaks`` fixture of conftest.py): the proxy's goroutines (``go_goroutines``
of its admin metrics) and this process's file descriptors (the proxy runs
inside pytest) come back to their level before the fault."""

from __future__ import annotations

import gc
import os
import time
from typing import Any, Dict, Tuple

from observe import eventually, scrape

GOROUTINE_SLACK = 2
FD_SLACK = 1
# Go splices response bodies through pipes it keeps in a pool (two
# descriptors each) until its garbage collector empties the pool: up to
# two more pairs after a fault are that pool, not a leak.
PIPE_SLACK = 4
LEAK_WAIT = 5.0


def open_fds() -> Tuple[int, int]:
    """File descriptors of this process (the proxy's sockets among them),
    as (pipes, all others); garbage is collected first so that a socket
    only an unreachable cycle still holds does not count."""
    gc.collect()
    kinds = _fd_summary()
    pipes = kinds.get("pipe", 0)
    return pipes, sum(kinds.values()) - pipes


def goroutines(url: str) -> int:
    """The proxy's goroutines, as its admin listener's metrics (at
    ``url``) report them."""
    return int(scrape(url).value("go_goroutines"))


def sockets_to(port: int) -> int:
    """Sockets of this process connected to 127.0.0.1:``port`` (any TCP
    state but LISTEN): the proxy's connections to a backend."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    with open("/proc/self/net/tcp") as f:
        next(f)
        for line in f:
            parts = line.split()
            remote, state, inode = parts[2], parts[3], parts[9]
            if inode in inodes and state != "0A" and int(remote.split(":")[1], 16) == port:
                count += 1
    return count


class LeakGuard:
    """Goroutines and descriptors before a fault, checked after it.

    ``baseline(proxy)`` is taken once the proxy has served a request (lazy
    goroutines started, pools filled); it is the lowest of a few samples, so
    a connection that was just closing does not raise it. ``check()`` waits
    up to LEAK_WAIT seconds for both counts to be back within a small slack.
    """

    def __init__(self) -> None:
        self.url = ""
        self.goroutines = 0
        self.fds = 0
        self.pipes = 0

    def baseline(self, proxy: Any) -> None:
        self.url = proxy.admin_url
        samples = []
        for _ in range(3):
            samples.append((goroutines(self.url), *open_fds()))
            time.sleep(0.02)
        self.goroutines = min(g for g, _, _ in samples)
        self.pipes = min(p for _, p, _ in samples)
        self.fds = min(f for _, _, f in samples)

    def now(self) -> Tuple[int, int, int]:
        return (goroutines(self.url), *open_fds())

    def check(self, timeout: float = LEAK_WAIT) -> None:
        assert self.url, "LeakGuard.check() without a baseline"

        def back() -> None:
            g, p, f = self.now()
            assert (g <= self.goroutines + GOROUTINE_SLACK and f <= self.fds + FD_SLACK
                    and p <= self.pipes + PIPE_SLACK), (
                f"not back to the baseline after {timeout}s: goroutines {g} (baseline {self.goroutines}), "
                f"file descriptors {f} (baseline {self.fds}), pipes {p} (baseline {self.pipes}); "
                f"open fds: {_fd_summary()}")

        eventually(back, timeout=timeout, interval=0.1)


def _fd_summary() -> Dict[str, int]:
    kinds: Dict[str, int] = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        kind = target.split(":", 1)[0] if ":" in target else "file"
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds
