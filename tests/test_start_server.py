"""start_server blocks like the original, loads .env first, and stops
gracefully on Ctrl+C (SIGINT) and SIGTERM; the README's demo command serves
real S3 traffic. Each runs in a child process, as a user's script would."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, List

import pytest

from helpers import CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY, free_port, make_client

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    from object_storage_proxy import ProxyServerConfig, start_server

    cos_map = json.loads(sys.argv[1])
    config = ProxyServerConfig(
        cos_map, http_port=int(sys.argv[2]), hmac_keystore={%r: %r}, bind_address="127.0.0.1"
    )
    start_server(config)
    print("RETURNED", flush=True)
    print("DOTENV", os.environ.get("OSP_TEST_FROM_DOTENV"), flush=True)
    """
    % (CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY)
)


def _wait_listening(port: int, proc: "subprocess.Popen[str]", timeout: float = 15.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"server exited early: {proc.communicate()}"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise AssertionError(f"nothing listened on {port}")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_start_server_blocks_serves_and_stops_on_signal(
    sig: signal.Signals, backend: Any, direct: Any, bucket: str, tmp_path: Path
) -> None:
    import json

    (tmp_path / ".env").write_text("OSP_TEST_FROM_DOTENV=loaded\n")
    port = free_port()
    cos_map = {bucket: backend.entry()}
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, json.dumps(cos_map), str(port)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_listening(port, proc)
        client = make_client(f"http://127.0.0.1:{port}", CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY)
        client.put_object(Bucket=bucket, Key="via-start-server", Body=b"blocking")
        assert direct.get_object(Bucket=bucket, Key="via-start-server")["Body"].read() == b"blocking"
        assert proc.poll() is None, "start_server must block while serving"
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "DOTENV loaded" in out
    assert "RETURNED" in out


def test_demo_command_serves_s3(tmp_path: Path) -> None:
    """What `make demo` runs: versitygw + the example config, then Ctrl+C."""
    port = free_port()
    env = dict(os.environ, OSP_DEMO_PORT=str(port), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "demo.py")],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: List[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Ctrl+C stops the demo"):
                break
        text = "".join(lines)
        access = re.search(r"access key: (\S+)", text)
        secret = re.search(r"secret key: (\S+)", text)
        assert access and secret and f"endpoint:   http://127.0.0.1:{port}" in text, text
        _wait_listening(port, proc)
        client = make_client(f"http://127.0.0.1:{port}", access.group(1), secret.group(1))
        client.put_object(Bucket="demo-bucket", Key="hello.txt", Body=b"hello demo")
        assert client.get_object(Bucket="demo-bucket", Key="hello.txt")["Body"].read() == b"hello demo"
        # The example validator does not grant this bucket to the read-only key.
        readonly = make_client(f"http://127.0.0.1:{port}", "readonly-access-key", "readonly-secret-key")
        with pytest.raises(Exception) as denied:
            readonly.list_objects_v2(Bucket="demo-logs")
        assert "AccessDenied" in str(denied.value)
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
