"""Counters the client threads share, and how a wrong answer is told."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any, Dict, List

from botocore.exceptions import ClientError

from soak.config import KINDS


class Stats:
    """Counters shared by the client threads."""

    MAX_MESSAGES = 20

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ops: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.messages: List[str] = []
        self.latencies: Dict[str, List[float]] = {kind: [] for kind in KINDS}
        self.bytes_up = 0
        self.bytes_down = 0

    def ok(self, kind: str, seconds: float) -> None:
        with self.lock:
            self.ops[kind] += 1
            self.latencies[kind].append(seconds)

    def error(self, kind: str, message: str) -> None:
        with self.lock:
            self.errors[kind] += 1
            if len(self.messages) < self.MAX_MESSAGES:
                self.messages.append(f"[{time.strftime('%H:%M:%S')}] {kind}: {message}"[:1000])

    def moved(self, up: int = 0, down: int = 0) -> None:
        with self.lock:
            self.bytes_up += up
            self.bytes_down += down


def describe(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        meta = exc.response.get("ResponseMetadata", {})
        err = exc.response.get("Error", {})
        return (f"ClientError HTTP {meta.get('HTTPStatusCode')} {err.get('Code')}: {err.get('Message')} "
                f"(request id {meta.get('RequestId')})")
    return f"{type(exc).__name__}: {exc}"


class CheckFailed(Exception):
    """A response that arrived but was wrong (status, length, bytes)."""


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def status_of(response: Dict[str, Any]) -> int:
    return int(response["ResponseMetadata"]["HTTPStatusCode"])


def percentile(values: List[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
