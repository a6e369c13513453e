"""The proxy's memory, open fds and goroutines, read over a run."""

from __future__ import annotations

import threading
import time
from typing import Any, Dict, List

from soak.processes import goroutines, open_fds, proc_status_kib
from soak.stats import Stats, describe


class Sampler:
    """The proxy's VmRSS, open fds and goroutines every ``interval`` s."""

    def __init__(self, pid: int, endpoint: str, interval: float, stats: Stats, t0: float) -> None:
        self.pid, self.endpoint, self.interval, self.stats, self.t0 = pid, endpoint, interval, stats, t0
        self.samples: List[Dict[str, Any]] = []
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self.run, name="soak-sampler", daemon=True)

    def sample(self, phase: str) -> Dict[str, Any]:
        reading: Dict[str, Any] = {
            "t": round(time.monotonic() - self.t0, 2),
            "rss_mib": round(proc_status_kib(self.pid, "VmRSS") / 1024, 1),
            "fds": open_fds(self.pid),
        }
        try:
            reading["goroutines"] = goroutines(self.endpoint)
        except Exception as exc:  # noqa: BLE001 - the admin endpoint failing is a proxy failure
            self.stats.error("metrics", describe(exc))
            reading["goroutines"] = -1
        reading["phase"] = phase
        self.samples.append(reading)
        return reading

    def run(self) -> None:
        while not self.stop_event.wait(self.interval):
            self.sample("load")

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join()
