"""A bounded soak test of the proxy: many concurrent boto3 clients for a
fixed duration, every byte verified, the proxy's memory and goroutines
sampled throughout.

    PYTHONPATH=tests build/venv/bin/python -m soak --duration 300 --clients 64 [--json FILE]
    make soak                                   (the same, 5 minutes)

Starts, all on 127.0.0.1 in a temporary directory (removed on exit):

* versitygw (``OSP_VERSITYGW`` or build/bin/versitygw, posix backend,
  ``--keep-alive`` unless ``--no-backend-keep-alive``: the proxy's backend
  connection pool is exercised as against a real S3);
* the proxy as its own process, ``python -m object_storage_proxy serve
  --config soak.toml`` (a generated file granting two client keys), so that
  /proc/<pid>/status is the proxy's alone: VmRSS every second, VmHWM for the
  peak, and ``go_goroutines`` from its admin listener's ``/metrics``.

Each client thread has its own boto3 client (no retries: every failure is
visible) and its own key prefix, and runs a weighted mix of PUT (sometimes
overwriting), GET, ranged GET, HEAD, LIST (paginated, checked against what
the thread stored), presigned GET (fetched with urllib), DELETE (then HEAD
must say 404) and multipart upload (3 parts of 5 MiB and a small last part,
read back after completion). Bodies are generated on the fly from (seed,
offset) and never held whole; downloads are hashed as they stream and
compared with the expected SHA-256. ``--max-size`` bounds single PUTs
(sizes 1 KiB up to it, mostly small); multipart objects are always 3 x 5
MiB + a tail (S3's minimum part size).

After the duration the clients are closed and the proxy left idle until its
goroutines, open file descriptors and RSS are back near where they started
(or ``--settle`` seconds passed: the proxy keeps an idle backend connection
in its pool for 90 s, pruned every 45 s). The run fails (exit 1) on any
client-visible error, if the goroutines or the open fds end more than
``--max-goroutine-growth`` above the start, if RSS ends more than
``--max-rss-growth`` MiB above the start, if an operation kind never ran,
or if the proxy died. Only stdlib and boto3 are used.

The package, a module a concern: config.py (the settings, the operation
mix and the summary), bodies.py (bodies made from a seed), processes.py
(versitygw and the proxy as child processes, readings of /proc and
/metrics), stats.py (counters and checks), worker.py (one client thread),
sampler.py (the proxy's readings over time), run.py (one run and its
report), __main__.py (the command line).
"""

from soak.bodies import BLOCK, SeededBody, body_digest, pick_size
from soak.config import KINDS, KiB, MiB, Summary, SoakConfig
from soak.run import format_summary, run_soak
from soak.stats import Stats
from soak.worker import Worker

__all__ = ["BLOCK", "KINDS", "KiB", "MiB", "SeededBody", "SoakConfig", "Stats", "Summary", "Worker", "body_digest",
           "format_summary", "pick_size", "run_soak"]
