"""The soak's settings (SoakConfig), its operation mix and its summary."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Tuple

KiB = 1 << 10
MiB = 1 << 20
REGION = "us-east-1"
BUCKET = "soak-bucket"
BACKEND_KEY, BACKEND_SECRET = "soak-backend-root", "soak-backend-root-secret-0123456789"
# The keys the proxy's [keystore] grants its clients; threads alternate them.
CLIENT_KEYS: Dict[str, str] = {
    "SOAKCLIENTAAAAAAAAAA": "soak-client-secret-aaaaaaaaaaaaaaaaaaaa",
    "SOAKCLIENTBBBBBBBBBB": "soak-client-secret-bbbbbbbbbbbbbbbbbbbb",
}
PART_SIZE = 5 * MiB
MULTIPART_PARTS = 3  # of PART_SIZE, plus a small last part
READ_CHUNK = 1 * MiB

# Operation kinds and their weights in the mix.
WEIGHTS: Dict[str, int] = {
    "put": 22,
    "get": 24,
    "range_get": 5,
    "head": 12,
    "list": 7,
    "presign_get": 10,
    "delete": 14,
    "multipart": 3,
}
KINDS: Tuple[str, ...] = tuple(WEIGHTS)
# The first few threads run every kind once before the random mix (and
# finish it even past the deadline), so a short run on a slow machine still
# covers every kind.
TOUR: Tuple[str, ...] = ("put", "get", "range_get", "head", "presign_get", "list", "multipart", "get", "delete")
TOUR_THREADS = 4


@dataclass
class SoakConfig:
    duration: float = 300.0
    clients: int = 64
    max_size: int = 64 * MiB
    seed: int = 1
    versitygw: str = ""
    json_path: Optional[str] = None
    backend_keep_alive: bool = True
    idle: float = 5.0  # idle seconds before the first end reading
    settle: float = 180.0  # longest idle wait for goroutines, fds and RSS to come back
    max_goroutine_growth: int = 5  # also the open fds' limit
    max_rss_growth_mib: float = 64.0
    max_objects_per_client: int = 40
    store_budget: int = 0  # bytes kept per client before deleting; 0: max(3 * max_size, 48 MiB)
    sample_interval: float = 1.0
    tmp_dir: Optional[str] = None
    keep_tmp: bool = False
    quiet: bool = False

    def budget(self) -> int:
        return self.store_budget or max(3 * self.max_size, 48 * MiB)


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class Summary:
    config: Dict[str, Any]
    elapsed_s: float = 0.0
    ops: Dict[str, int] = field(default_factory=dict)
    ops_total: int = 0
    ops_per_s: float = 0.0
    errors: Dict[str, int] = field(default_factory=dict)
    errors_total: int = 0
    error_messages: List[str] = field(default_factory=list)
    bytes_up: int = 0
    bytes_down: int = 0
    throughput_mib_s: float = 0.0
    latency_ms: Dict[str, Dict[str, float]] = field(default_factory=dict)
    rss_mib: Dict[str, float] = field(default_factory=dict)  # start, peak, end
    goroutines: Dict[str, float] = field(default_factory=dict)  # start, peak, end
    open_fds: Dict[str, int] = field(default_factory=dict)  # start, peak, end
    idle_before_end_s: float = 0.0
    proxy_exit_code: Optional[int] = None
    proxy_log: Dict[str, Any] = field(default_factory=dict)
    checks: List[Check] = field(default_factory=list)
    passed: bool = False
    samples: List[Dict[str, Any]] = field(default_factory=list)

    def failed_checks(self) -> List[Check]:
        return [c for c in self.checks if not c.ok]

    def to_json(self) -> Dict[str, Any]:
        return asdict(self)
