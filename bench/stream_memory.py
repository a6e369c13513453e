"""Memory and throughput of a 1 GiB aws-chunked upload through the proxy.

    build/venv/bin/python bench/stream_memory.py [--gib 1]

Starts versitygw and the proxy (in its own process, so its RSS is its
own), streams a generated body through it in each streaming mode, samples the
proxy's RSS from /proc every 20 ms, and checks the stored size at versitygw.
Nothing is held in memory on the client side either: chunks are generated
and signed on the fly.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import hmac
import http.client
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import zlib
from base64 import b64encode
from pathlib import Path
from typing import Iterator, List, Tuple

import boto3
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))
from demo import free_port, start_versitygw  # noqa: E402

CLIENT_KEY, CLIENT_SECRET = "bench-client", "bench-client-secret"
BACKEND_KEY, BACKEND_SECRET = "bench-backend", "bench-backend-secret"
CHUNK = 1 << 20
EMPTY = hashlib.sha256(b"").hexdigest()

PROXY = textwrap.dedent(
    """
    import json, sys
    from object_storage_proxy import ProxyServerConfig, start_server
    start_server(ProxyServerConfig(json.loads(sys.argv[1]), http_port=int(sys.argv[2]),
                                   hmac_keystore={sys.argv[3]: sys.argv[4]}, bind_address="127.0.0.1"))
    """
)


class ModeAuth(S3SigV4Auth):
    """Signs the headers with the streaming mode as the payload hash."""

    def __init__(self, mode: str, *args: object) -> None:
        super().__init__(*args)
        self.mode = mode

    def payload(self, request: AWSRequest) -> str:
        return self.mode


def chunks(total: int) -> Iterator[bytes]:
    block = os.urandom(CHUNK)
    sent = 0
    while sent < total:
        n = min(CHUNK, total - sent)
        yield block[:n]
        sent += n


def body(mode: str, total: int, headers: dict, key: bytes, scope: str, amz_date: str) -> Iterator[bytes]:
    signed = not mode.startswith("STREAMING-UNSIGNED")
    previous = headers["Authorization"].rsplit("Signature=", 1)[1]
    crc = 0

    def sign(data_hash: str, kind: str = "AWS4-HMAC-SHA256-PAYLOAD", tail: str = "") -> str:
        nonlocal previous
        sts = f"{kind}\n{amz_date}\n{scope}\n{previous}\n" + (tail or f"{EMPTY}\n{data_hash}")
        previous = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
        return previous

    for data in chunks(total):
        crc = zlib.crc32(data, crc)
        ext = f";chunk-signature={sign(hashlib.sha256(data).hexdigest())}" if signed else ""
        yield f"{len(data):x}{ext}\r\n".encode() + data + b"\r\n"
    ext = f";chunk-signature={sign(EMPTY)}" if signed else ""
    trailer = f"x-amz-checksum-crc32:{b64encode(crc.to_bytes(4, 'big')).decode()}"
    end = f"0{ext}\r\n{trailer}\r\n"
    if signed:
        tail = hashlib.sha256((trailer + "\n").encode()).hexdigest()
        end += f"x-amz-trailer-signature:{sign('', 'AWS4-HMAC-SHA256-TRAILER', tail)}\r\n"
    yield (end + "\r\n").encode()


def framed_length(mode: str, total: int) -> int:
    signed = not mode.startswith("STREAMING-UNSIGNED")
    n, sig = 0, len(";chunk-signature=") + 64 if signed else 0
    for size in [CHUNK] * (total // CHUNK) + ([total % CHUNK] if total % CHUNK else []):
        n += len(f"{size:x}") + sig + 2 + size + 2
    n += 1 + sig + 2 + len("x-amz-checksum-crc32:AAAAAA==\r\n") + 2
    if signed:
        n += len("x-amz-trailer-signature:") + 64 + 2
    return n


def rss_sampler(pid: int, samples: List[int], stop: threading.Event) -> None:
    while not stop.is_set():
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    samples.append(int(line.split()[1]) // 1024)
        time.sleep(0.02)


def upload(port: int, bucket: str, key: str, mode: str, total: int) -> Tuple[int, float]:
    url = f"http://127.0.0.1:{port}/{bucket}/{key}"
    headers = {
        "x-amz-content-sha256": mode,
        "content-encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(total),
        "x-amz-trailer": "x-amz-checksum-crc32",
        "content-length": str(framed_length(mode, total)),
    }
    request = AWSRequest("PUT", url, headers=headers)
    ModeAuth(mode, Credentials(CLIENT_KEY, CLIENT_SECRET), "s3", "us-east-1").add_auth(request)
    amz_date = request.headers["X-Amz-Date"]
    scope = f"{amz_date[:8]}/us-east-1/s3/aws4_request"
    key_bytes = f"AWS4{CLIENT_SECRET}".encode()
    for part in (amz_date[:8], "us-east-1", "s3", "aws4_request"):
        key_bytes = hmac.new(key_bytes, part.encode(), hashlib.sha256).digest()
    conn = http.client.HTTPConnection("127.0.0.1", port)
    start = time.monotonic()
    conn.putrequest("PUT", f"/{bucket}/{key}", skip_accept_encoding=True)
    for name, value in request.headers.items():
        conn.putheader(name, value)
    conn.endheaders()
    for piece in body(mode, total, dict(request.headers), key_bytes, scope, amz_date):
        conn.send(piece)
    response = conn.getresponse()
    response.read()
    return response.status, time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=1.0)
    args = parser.parse_args()
    total = int(args.gib * (1 << 30))
    with tempfile.TemporaryDirectory(prefix="osp-bench-") as data:
        backend_port = free_port()
        gateway = start_versitygw(data, backend_port, BACKEND_KEY, BACKEND_SECRET)
        direct = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{backend_port}", region_name="us-east-1",
                              aws_access_key_id=BACKEND_KEY, aws_secret_access_key=BACKEND_SECRET,
                              config=Config(s3={"addressing_style": "path"}))
        direct.create_bucket(Bucket="bench")
        cos_map = {"bench": {"host": "127.0.0.1", "port": backend_port, "scheme": "http", "addressing_style": "path",
                             "access_key": BACKEND_KEY, "secret_key": BACKEND_SECRET}}
        port = free_port()
        proxy = subprocess.Popen([sys.executable, "-c", PROXY, json.dumps(cos_map), str(port), CLIENT_KEY, CLIENT_SECRET])
        try:
            time.sleep(1.0)
            print(f"| mode | size | status | MB/s | proxy RSS before | proxy RSS peak |\n|---|---|---|---|---|---|")
            for mode in ("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"):
                samples: List[int] = []
                stop = threading.Event()
                sampler = threading.Thread(target=rss_sampler, args=(proxy.pid, samples, stop))
                sampler.start()
                time.sleep(0.1)
                before = samples[-1]
                status, seconds = upload(port, "bench", mode.lower(), mode, total)
                stop.set()
                sampler.join()
                stored = direct.head_object(Bucket="bench", Key=mode.lower())["ContentLength"]
                assert status == 200 and stored == total, (status, stored)
                print(f"| {mode} | {total >> 20} MiB | {status} | {total / seconds / 1e6:.0f} | {before} MiB | {max(samples)} MiB |")
        finally:
            proxy.terminate()
            proxy.wait()
            gateway.terminate()
            gateway.wait()


if __name__ == "__main__":
    main()
