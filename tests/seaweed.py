"""SeaweedFS as a second, independent S3 backend for the end-to-end tests.

``start_seaweedfs()`` runs ``weed server -s3`` (master, volume server, filer
and S3 gateway in one process) bound to 127.0.0.1 on free ports, in a
temporary directory, with SigV4 turned on: its S3 identities file knows one
admin identity (SEAWEED_ACCESS_KEY / SEAWEED_SECRET_KEY) and no anonymous
one, so every request must be signed with that key. Telemetry, the Iceberg
and Lance catalogs and the embedded IAM API are off; buckets are not created
on upload (as on S3).

The binary is OSP_SEAWEEDFS (set by `make test-python`, which builds
build/bin/weed), else build/bin/weed. A missing binary is an error, never a
skip: the second backend is part of the suite.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List

from botocore.exceptions import ClientError, EndpointConnectionError

from helpers import free_port, local_entry, make_client, stop_process

# The only identity SeaweedFS knows: only the proxy and the direct client
# hold it (distinct from versitygw's root keys, so a mix-up shows).
SEAWEED_ACCESS_KEY = "seaweedadmin"
SEAWEED_SECRET_KEY = "seaweed-admin-secret-0123456789"

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BINARY = REPO_ROOT / "build" / "bin" / "weed"

# Cold start on a busy 2-core machine: master election, the volume server's
# first heartbeat, the filer's store, then the S3 gateway's first answer.
START_TIMEOUT = 90.0


def seaweedfs_binary() -> str:
    """The weed binary to run; raises (never skips) when there is none."""
    binary = os.environ.get("OSP_SEAWEEDFS") or str(DEFAULT_BINARY)
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        raise RuntimeError(
            f"the SeaweedFS binary {binary!r} is missing: `make build/bin/weed` builds it "
            "(`make test-python` does, and sets OSP_SEAWEEDFS)"
        )
    return binary


class SeaweedFS:
    """A running SeaweedFS S3 gateway."""

    def __init__(self, port: int, base: str, log_path: str) -> None:
        self.host = "127.0.0.1"
        self.port = port
        self.base = base
        self.log_path = log_path
        self.endpoint_url = f"http://127.0.0.1:{port}"

    def entry(self, *, creds: bool = True, **overrides: Any) -> Dict[str, Any]:
        """A cos_map entry for a bucket on this SeaweedFS, with its admin
        keys unless ``creds=False``. Its upload_framing is "plain": SeaweedFS
        refuses the proxy's default framing (STREAMING-UNSIGNED-PAYLOAD-TRAILER)
        when it has no trailer (docs/compatibility.md)."""
        return local_entry(self.port, SEAWEED_ACCESS_KEY, SEAWEED_SECRET_KEY, creds=creds,
                           **{"upload_framing": "plain", **overrides})

    def client(self, access_key: str = SEAWEED_ACCESS_KEY, secret_key: str = SEAWEED_SECRET_KEY) -> Any:
        """boto3 straight to SeaweedFS (its admin keys by default)."""
        return make_client(self.endpoint_url, access_key, secret_key)

    def log_tail(self, size: int = 3000) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - size))
                return f.read().decode(errors="replace")
        except OSError as e:
            return f"(no log: {e})"


def identities_config() -> Dict[str, Any]:
    """SeaweedFS's S3 identities file: one admin, no anonymous identity."""
    return {
        "identities": [
            {
                "name": "osp_backend_admin",
                "credentials": [{"accessKey": SEAWEED_ACCESS_KEY, "secretKey": SEAWEED_SECRET_KEY}],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            }
        ]
    }


def _distinct_free_ports(count: int) -> List[int]:
    """``count`` different free ports, none of them 10000 above another
    (SeaweedFS derives gRPC ports that way when not told)."""
    ports: List[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports and port + 10000 < 65536:
            ports.append(port)
    return ports


def server_command(binary: str, base: str, config_path: str, ports: Dict[str, int]) -> List[str]:
    data = os.path.join(base, "data")
    os.makedirs(data, exist_ok=True)
    return [
        binary,
        "-logtostderr=true",
        "-v=0",
        "server",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-dir={data}",
        "-master.peers=none",
        "-master.telemetry=false",  # no traffic off this machine
        "-master.volumeSizeLimitMB=64",
        "-volume.max=0",  # as many volumes as the disk allows
        f"-master.port={ports['master']}",
        f"-master.port.grpc={ports['master_grpc']}",
        f"-volume.port={ports['volume']}",
        f"-volume.port.grpc={ports['volume_grpc']}",
        "-volume.preStopSeconds=0",
        f"-filer.port={ports['filer']}",
        f"-filer.port.grpc={ports['filer_grpc']}",
        f"-filer.localSocket={os.path.join(base, 'filer.sock')}",
        "-s3",
        f"-s3.port={ports['s3']}",
        f"-s3.port.grpc={ports['s3_grpc']}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.localSocket={os.path.join(base, 's3.sock')}",
        f"-s3.config={config_path}",
        "-s3.iam=false",
        "-s3.autoCreateBucket=false",
    ]


def _wait_until_serving(server: SeaweedFS, proc: "subprocess.Popen[bytes]", timeout: float) -> None:
    """Until a signed ListBuckets answers and an object can be written and
    read (the volume layout is grown on the first write)."""
    client = server.client()
    warm = f"osp-warmup-{uuid.uuid4().hex[:12]}"
    deadline = time.monotonic() + timeout
    last: Any = None
    created = False
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"weed exited with code {proc.returncode} before serving:\n{server.log_tail()}")
        try:
            if not created:
                client.list_buckets()
                client.create_bucket(Bucket=warm)
                created = True
            client.put_object(Bucket=warm, Key="warm", Body=b"warm")
            assert client.get_object(Bucket=warm, Key="warm")["Body"].read() == b"warm"
            client.delete_object(Bucket=warm, Key="warm")
            client.delete_bucket(Bucket=warm)
            return
        except (ClientError, EndpointConnectionError, ConnectionError, socket.error, AssertionError) as e:
            last = e
            time.sleep(0.25)
        except Exception as e:  # botocore wraps transport failures in many types
            last = e
            time.sleep(0.25)
    raise RuntimeError(f"SeaweedFS did not serve S3 within {timeout}s (last: {last!r}):\n{server.log_tail()}")


@contextmanager
def start_seaweedfs(timeout: float = START_TIMEOUT) -> Iterator[SeaweedFS]:
    """Runs SeaweedFS for the duration of the ``with`` block."""
    binary = seaweedfs_binary()
    base = tempfile.mkdtemp(prefix="osp-seaweedfs-")
    config_path = os.path.join(base, "s3.json")
    with open(config_path, "w") as f:
        json.dump(identities_config(), f)
    names = ["master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc", "s3", "s3_grpc"]
    ports = dict(zip(names, _distinct_free_ports(len(names))))
    log_path = os.path.join(base, "weed.log")
    home = os.path.join(base, "home")  # no ~/.seaweedfs of whoever runs the tests
    os.mkdir(home)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WEED_", "AWS_"))}
    env.update(HOME=home, TMPDIR=base)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            server_command(binary, base, config_path, ports),
            cwd=base,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = SeaweedFS(ports["s3"], base, log_path)
    try:
        _wait_until_serving(server, proc, timeout)
        yield server
    finally:
        stop_process(proc, 20)
        for name in ("master", "volume", "filer", "s3"):  # its gRPC sockets
            port = ports[f"{name}_grpc"]
            try:
                os.unlink(f"/tmp/seaweedfs-{name}-grpc-{port}.sock")
            except OSError:
                pass
        shutil.rmtree(base, ignore_errors=True)
