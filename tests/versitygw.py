"""The real S3 server under the tests: versitygw (posix backend) in a
temporary directory of its own, on a free 127.0.0.1 port, with the backend's
root keys (helpers.BACKEND_ACCESS_KEY). conftest.py's ``backend`` fixture
runs one per session; a test that needs another kind (versioning) runs its
own with :func:`run_versitygw`."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from typing import Any, Dict, Iterator

from helpers import BACKEND_ACCESS_KEY, BACKEND_SECRET_KEY, free_port, local_entry, stop_process


class Backend:
    """A running versitygw."""

    def __init__(self, port: int, root: str) -> None:
        self.host = "127.0.0.1"
        self.port = port
        self.root = root
        self.endpoint_url = f"http://127.0.0.1:{port}"

    def entry(self, *, creds: bool = True, **overrides: Any) -> Dict[str, Any]:
        """A cos_map entry for a bucket on this versitygw, with its root keys
        unless ``creds=False``."""
        return local_entry(self.port, BACKEND_ACCESS_KEY, BACKEND_SECRET_KEY, creds=creds, **overrides)


def versitygw_binary() -> str:
    """$OSP_VERSITYGW, checked: a missing binary fails (never skips)."""
    binary = os.environ.get("OSP_VERSITYGW")
    if not binary:
        raise RuntimeError(
            "OSP_VERSITYGW is not set: point it at the versitygw binary "
            "(`make test-python` builds build/bin/versitygw and sets it)"
        )
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        raise RuntimeError(f"OSP_VERSITYGW={binary!r} is not an executable file")
    return binary


def _wait_for_port(port: int, proc: "subprocess.Popen[bytes]", log_path: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            with open(log_path, "rb") as f:
                log = f.read()[-2000:].decode(errors="replace")
            raise RuntimeError(f"versitygw exited with code {proc.returncode} before listening:\n{log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.01)
    raise RuntimeError(f"versitygw did not listen on 127.0.0.1:{port} within {timeout}s")


@contextlib.contextmanager
def run_versitygw(*, versioning: bool = False) -> Iterator[Backend]:
    """A versitygw of its own, stopped and its directory removed after.
    ``versioning`` gives it a versioning directory (buckets can then have
    versioning enabled)."""
    binary = versitygw_binary()
    base = tempfile.mkdtemp(prefix="osp-versitygw-")
    root = os.path.join(base, "data")
    os.mkdir(root)
    options = []
    if versioning:
        versions = os.path.join(base, "versions")
        os.mkdir(versions)
        options = ["--versioning-dir", versions]
    log_path = os.path.join(base, "versitygw.log")
    port = free_port()
    env = dict(os.environ, ROOT_ACCESS_KEY=BACKEND_ACCESS_KEY, ROOT_SECRET_KEY=BACKEND_SECRET_KEY)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [binary, "--port", f"127.0.0.1:{port}", "--quiet", "posix", *options, root],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for_port(port, proc, log_path)
        yield Backend(port, root)
    finally:
        stop_process(proc, 10)
        shutil.rmtree(base, ignore_errors=True)
