"""Shared bits of the real-client tests (test_clients_*.py and others):
running a client binary with an isolated environment, a scenario with the
newest boto3 in a child process (run_boto3_latest), fetching presigned
URLs with urllib, and checking what versitygw stored. (The self-signed
certificate for the proxy's HTTPS listener is conftest.py's ``tls_cert``.)

Each client test skips, saying why, only when its client is not installed
(`make deps` installs awscli, s3cmd, rclone and openssl from Debian; the
newest boto3 and aws cli v1 come from the pyenv interpreter).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import ssl
import subprocess
import textwrap
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import pytest

from helpers import CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY, stored_body

# The newest boto3/botocore and aws cli v1 live in this interpreter (not our
# package: it is only the client).
PYENV_PYTHON = "/root/.pyenv/versions/3.11.7/bin/python"
AWS_CLI_V1 = "/root/.pyenv/versions/3.11.7/bin/aws"
# Debian's awscli package is aws cli v2.
AWS_CLI_V2 = "/usr/bin/aws"

MIB = 1024 * 1024

# Environment variables a client must not inherit: real AWS/rclone/s3cmd
# settings of whoever runs the tests, HTTP proxies, our venv's Python.
_DROPPED_PREFIXES = ("AWS_", "RCLONE_", "S3CMD", "BOTO_")
_DROPPED = {
    "http_proxy", "https_proxy", "all_proxy", "no_proxy",
    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY",
    "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP",
    "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR", "CURL_CA_BUNDLE",
}


def require_executable(path: str, what: str) -> str:
    """``path`` if it is an executable file, else skips the test."""
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.skip(f"{what} is not installed ({path} is missing; `make deps` installs it)")
    return path


def require_command(name: str, what: str) -> str:
    """The absolute path of ``name`` in /usr/bin or /bin (not a pyenv shim),
    else skips the test."""
    for directory in ("/usr/bin", "/bin", "/usr/local/bin"):
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{what} is not installed (no `{name}` on PATH; `make deps` installs it)")
    return found


def isolated_env(home: Path, extra: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """An environment for a client process: HOME is a fresh directory (no
    ~/.aws, ~/.s3cfg or rclone config of the user), no AWS_*/RCLONE_* or
    proxy variables leak in, localhost never goes through a proxy."""
    home.mkdir(parents=True, exist_ok=True)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in _DROPPED and not k.startswith(_DROPPED_PREFIXES)
    }
    env.update(
        HOME=str(home),
        NO_PROXY="127.0.0.1,localhost,.osp.test",
        no_proxy="127.0.0.1,localhost,.osp.test",
        LC_ALL="C.UTF-8",
        LANG="C.UTF-8",
    )
    env.update(extra or {})
    return env


@dataclass
class Result:
    args: Sequence[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def describe(self) -> str:
        return (
            f"$ {' '.join(a if len(a) < 300 else a[:60] + '...' for a in self.args)}\nexit code {self.returncode}\n"
            f"--- stdout ---\n{self.stdout[-3000:]}\n--- stderr ---\n{self.stderr[-3000:]}"
        )


def run(args: Sequence[str], env: Mapping[str, str], *, cwd: Optional[Path] = None, timeout: float = 120) -> Result:
    proc = subprocess.run(
        list(args),
        env=dict(env),
        cwd=str(cwd) if cwd else None,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        timeout=timeout,
    )
    return Result(list(args), proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace"))


def assert_ok(result: Result) -> Result:
    assert result.returncode == 0, result.describe()
    return result


def assert_failed(result: Result) -> Result:
    assert result.returncode != 0, "the client succeeded but should have failed:\n" + result.describe()
    return result


# --------------------------------------------------------------------------
# data


def write_random(path: Path, size: int) -> bytes:
    """Writes ``size`` random bytes to ``path`` and returns them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = os.urandom(size)
    path.write_bytes(data)
    return data


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def assert_stored_exactly(direct: Any, bucket: str, key: str, expected: bytes) -> None:
    """versitygw holds exactly ``expected`` under bucket/key: same length,
    same sha256 (an aws-chunked framing stored by mistake shows as a longer
    body starting with a hex chunk size)."""
    stored = stored_body(direct, bucket, key)
    assert (len(stored), sha256(stored)) == (len(expected), sha256(expected)), (
        f"s3://{bucket}/{key} at versitygw differs from what the client sent: "
        f"{len(stored)} bytes stored (starting {stored[:40]!r}), {len(expected)} sent"
    )


def part_count(direct: Any, bucket: str, key: str) -> int:
    """The number of parts of a stored object from its ETag ("...-N" for a
    multipart upload, 1 otherwise)."""
    etag = direct.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')
    return int(etag.rsplit("-", 1)[1]) if "-" in etag else 1


# --------------------------------------------------------------------------
# TLS


def https_endpoint(server: Any) -> str:
    assert server.https_port, "the proxy did not report its HTTPS port"
    return f"https://127.0.0.1:{server.https_port}"


# --------------------------------------------------------------------------
# plain HTTP with urllib (presigned URLs: no headers but the URL)


def fetch(url: str, *, method: str = "GET", data: Optional[bytes] = None, cafile: Optional[str] = None) -> Tuple[int, bytes]:
    """Sends ``method url`` with urllib and no extra headers; returns
    (status, body) for success and HTTP errors alike."""
    context = ssl.create_default_context(cafile=cafile) if url.startswith("https:") else None
    request = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60, context=context) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


# --------------------------------------------------------------------------
# the newest boto3, in a child process (the venv's boto3 is Debian's, older)

PREAMBLE = '''
import json, os, socket, sys
import boto3, botocore
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

P = json.loads(os.environ["OSP_PARAMS"])
SENT = []

if P.get("resolve_to_localhost"):
    # Virtual-host tests: every *.<domain> name is 127.0.0.1 for this process.
    _getaddrinfo = socket.getaddrinfo
    def _local(host, *args, **kwargs):
        if isinstance(host, str) and host.endswith(P["resolve_to_localhost"]):
            host = "127.0.0.1"
        return _getaddrinfo(host, *args, **kwargs)
    socket.getaddrinfo = _local

def _record(request, **kwargs):
    h = request.headers
    def get(name):
        v = h.get(name)
        return v.decode() if isinstance(v, bytes) else v
    SENT.append({
        "method": request.method,
        "url": request.url,
        "content_sha256": get("x-amz-content-sha256"),
        "content_encoding": get("Content-Encoding"),
        "trailer": get("x-amz-trailer"),
        "checksum_crc32": get("x-amz-checksum-crc32"),
        "decoded_length": get("x-amz-decoded-content-length"),
    })

def _no_expect_for_empty_bodies(request, **kwargs):
    # boto/botocore#3755, as in tests/helpers.py
    if request.headers.get("Content-Length") == "0":
        request.headers.pop("Expect", None)

def make_client(addressing_style="path", endpoint=None):
    c = boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint or P["endpoint"],
        aws_access_key_id=P["access_key"],
        aws_secret_access_key=P["secret_key"],
        region_name="us-east-1",
        verify=P.get("ca") or None,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": addressing_style},
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=5,
            read_timeout=60,
        ),
    )
    c.meta.events.register("before-send.s3", _record)
    c.meta.events.register("before-send.s3", _no_expect_for_empty_bodies)
    return c

def error_of(e):
    return {
        "status": e.response["ResponseMetadata"]["HTTPStatusCode"],
        "code": e.response["Error"].get("Code"),
        "message": e.response["Error"].get("Message"),
    }

def emit(**result):
    result["sent"] = SENT
    result["versions"] = [boto3.__version__, botocore.__version__]
    print("OSP-RESULT " + json.dumps(result, default=str))

s3 = make_client()
bucket = P["bucket"]
'''


def sent_for(out: Dict[str, Any], method: str, *, query: str = "", exclude_query: Tuple[str, ...] = ()) -> List[Dict[str, Any]]:
    """The requests run_boto3_latest recorded with this method and query."""
    return [
        s for s in out["sent"]
        if s["method"] == method and query in s["url"] and not any(q in s["url"] for q in exclude_query)
    ]


def run_boto3_latest(tmp_path: Path, code: str, **params: Any) -> Dict[str, Any]:
    """Runs ``code`` with the newest boto3 in a child process and returns
    what it passed to emit(); fails with the child's output otherwise."""
    python = require_executable(PYENV_PYTHON, "the pyenv Python with the newest boto3")
    params.setdefault("access_key", CLIENT_ACCESS_KEY)
    params.setdefault("secret_key", CLIENT_SECRET_KEY)
    env = isolated_env(tmp_path / "home", {"OSP_PARAMS": json.dumps(params)})
    script = PREAMBLE + textwrap.dedent(code)
    result = run([python, "-c", script], env, cwd=tmp_path, timeout=120)
    lines = [line for line in result.stdout.splitlines() if line.startswith("OSP-RESULT ")]
    assert result.returncode == 0 and lines, "the boto3 child failed:\n" + result.describe()
    out: Dict[str, Any] = json.loads(lines[-1][len("OSP-RESULT "):])
    major, minor = (int(x) for x in out["versions"][1].split(".")[:2])
    if (major, minor) < (1, 36):
        pytest.skip(f"the pyenv botocore is {out['versions'][1]}, older than 1.36 (no default checksums)")
    return out
