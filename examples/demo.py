"""Run object-storage-proxy in front of a local S3 server (versitygw).

    make demo

starts versitygw in a temporary folder, creates the demo buckets, and serves
the proxy on http://127.0.0.1:6190 (OSP_DEMO_PORT) until Ctrl+C. No cloud
account is needed.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parent))

import example_config  # noqa: E402

from object_storage_proxy import ProxyServerConfig, start_server  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_versitygw(data_dir: str, port: int, access_key: str, secret_key: str) -> subprocess.Popen:
    binary = os.environ.get("OSP_VERSITYGW", str(ROOT / "build" / "bin" / "versitygw"))
    env = dict(os.environ, ROOT_ACCESS_KEY=access_key, ROOT_SECRET_KEY=secret_key)
    proc = subprocess.Popen(
        [binary, "--port", f"127.0.0.1:{port}", "--quiet", "posix", data_dir], env=env
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"versitygw did not start on port {port}")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    proxy_port = int(os.environ.get("OSP_DEMO_PORT", "6190"))
    backend_key, backend_secret = "backend-root", secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="osp-demo-") as data_dir:
        backend_port = free_port()
        gateway = start_versitygw(data_dir, backend_port, backend_key, backend_secret)
        try:
            direct = boto3.client(
                "s3",
                endpoint_url=f"http://127.0.0.1:{backend_port}",
                aws_access_key_id=backend_key,
                aws_secret_access_key=backend_secret,
                region_name="us-east-1",
                config=Config(s3={"addressing_style": "path"}),
            )
            cos_map = example_config.cos_map("127.0.0.1", backend_port, backend_key, backend_secret)
            for bucket in cos_map:
                direct.create_bucket(Bucket=bucket)

            client_key = "demo-access-key"
            client_secret = example_config.CLIENT_KEYS[client_key]
            endpoint = f"http://127.0.0.1:{proxy_port}"
            print(
                f"""
object-storage-proxy demo
  endpoint:   {endpoint}
  buckets:    {", ".join(cos_map)}
  access key: {client_key}
  secret key: {client_secret}

An aws cli profile (append to ~/.aws/config):

[profile osp-demo]
aws_access_key_id = {client_key}
aws_secret_access_key = {client_secret}
region = us-east-1
endpoint_url = {endpoint}
s3 =
    addressing_style = path

Then:  aws --profile osp-demo s3 cp README.md s3://demo-bucket/README.md
       aws --profile osp-demo s3 ls s3://demo-bucket/
Ctrl+C stops the demo.
""",
                flush=True,
            )
            config = ProxyServerConfig(
                cos_map,
                validator=example_config.validator,
                http_port=proxy_port,
                hmac_fetcher=example_config.hmac_fetcher,
                bind_address="127.0.0.1",
            )
            start_server(config)
        finally:
            gateway.terminate()
            gateway.wait(timeout=10)


if __name__ == "__main__":
    main()
