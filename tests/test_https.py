"""The HTTPS listener: boto3 verifying the proxy's certificate, HTTP/1.1
and HTTP/2 negotiated with ALPN (checked with Python's ssl and with curl
--http2), HTTP and HTTPS on one server at once, and a bad certificate
refused when the server starts, naming the file.

The certificate is the session's self-signed one for 127.0.0.1 (clients.py,
made with openssl); it is also the clients' CA bundle.
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple

import boto3
import pytest
from botocore.config import Config

from clients import (
    Result,
    assert_ok,
    https_endpoint,
    isolated_env,
    require_command,
    run,
)
from helpers import (
    CLIENT_ACCESS_KEY,
    CLIENT_KEYSTORE,
    CLIENT_SECRET_KEY,
    REGION,
    _no_expect_for_empty_bodies,
    free_port,
    make_client,
    stored_body,
    stored_keys,
)
from object_storage_proxy import ProxyServer, ProxyServerConfig
from observe import HEALTHZ, READYZ, admin, scrape

MIB = 1024 * 1024


def https_client(server: Any, cafile: Any) -> Any:
    """boto3 over the proxy's HTTPS listener, verifying with ``cafile``
    (True: the system's CAs)."""
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=https_endpoint(server),
        aws_access_key_id=CLIENT_ACCESS_KEY,
        aws_secret_access_key=CLIENT_SECRET_KEY,
        region_name=REGION,
        verify=cafile,
        config=Config(region_name=REGION, signature_version="s3v4", s3={"addressing_style": "path"},
                      retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=30),
    )
    client.meta.events.register("before-send.s3", _no_expect_for_empty_bodies)
    return client


@pytest.fixture
def tls_proxy(start_proxy: Callable[..., Any], bucket: str, tls_cert: Tuple[str, str]) -> Any:
    """A proxy with an HTTP and an HTTPS listener."""
    cert, key = tls_cert
    return start_proxy(bucket, https_port=0, tls_cert_path=cert, tls_key_path=key)


def curl(tmp_path: Path, *args: str) -> Result:
    binary = require_command("curl", "curl")
    return run([binary, "-sS", "--max-time", "30", *args], isolated_env(tmp_path / "curl-home"), timeout=60)


# --------------------------------------------------------------------------
# boto3


def test_boto3_over_https(tls_proxy: Any, bucket: str, direct: Any, tls_cert: Tuple[str, str]) -> None:
    s3 = https_client(tls_proxy, tls_cert[0])
    s3.put_object(Bucket=bucket, Key="small", Body=b"over TLS")
    assert s3.get_object(Bucket=bucket, Key="small")["Body"].read() == b"over TLS"
    assert s3.head_object(Bucket=bucket, Key="small")["ContentLength"] == 8

    first, last = os.urandom(5 * MIB), os.urandom(1000)
    upload = s3.create_multipart_upload(Bucket=bucket, Key="multi")
    parts = []
    for number, data in enumerate((first, last), 1):
        etag = s3.upload_part(Bucket=bucket, Key="multi", UploadId=upload["UploadId"], PartNumber=number,
                              Body=data)["ETag"]
        parts.append({"ETag": etag, "PartNumber": number})
    s3.complete_multipart_upload(Bucket=bucket, Key="multi", UploadId=upload["UploadId"],
                                 MultipartUpload={"Parts": parts})
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert listed == ["multi", "small"]
    s3.delete_object(Bucket=bucket, Key="small")

    assert stored_keys(direct, bucket) == ["multi"]
    assert stored_body(direct, bucket, "multi") == first + last


def test_the_certificate_is_the_configured_one(tls_proxy: Any, bucket: str) -> None:
    """Verifying against the system's CAs fails: the proxy really serves
    the self-signed certificate it was given (and is not plain HTTP)."""
    s3 = https_client(tls_proxy, True)
    with pytest.raises(Exception) as failure:
        s3.list_objects_v2(Bucket=bucket)
    assert "certificate verify failed" in str(failure.value).lower() or "ssl" in type(failure.value).__name__.lower(), \
        repr(failure.value)


def test_http_and_https_at_once(tls_proxy: Any, bucket: str, tls_cert: Tuple[str, str]) -> None:
    assert tls_proxy.http_port and tls_proxy.https_port and tls_proxy.http_port != tls_proxy.https_port
    assert tls_proxy.endpoint_url == f"http://127.0.0.1:{tls_proxy.http_port}"
    plain = make_client(tls_proxy.endpoint_url, CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY)
    secure = https_client(tls_proxy, tls_cert[0])
    plain.put_object(Bucket=bucket, Key="from-http", Body=b"plain")
    secure.put_object(Bucket=bucket, Key="from-https", Body=b"secure")
    assert secure.get_object(Bucket=bucket, Key="from-http")["Body"].read() == b"plain"
    assert plain.get_object(Bucket=bucket, Key="from-https")["Body"].read() == b"secure"

    # One server: one admin listener, whose metrics count both; neither S3
    # listener answers admin paths (they are S3 requests there).
    https_url = https_endpoint(tls_proxy)
    response = admin(tls_proxy, HEALTHZ)
    assert (response.status_code, response.text.strip()) == (200, "ok"), response.status_code
    assert admin(tls_proxy, READYZ).status_code == 200
    for url in (tls_proxy.endpoint_url, https_url):
        response = admin(url, HEALTHZ, verify=tls_cert[0])
        assert response.status_code == 403 and "<Code>AccessDenied</Code>" in response.text, (url, response.status_code)
    metrics = scrape(tls_proxy)
    assert metrics.value("osp_requests_total", bucket=bucket, operation="PutObject", status="200") == 2, \
        metrics.table("osp_requests_total")


def test_https_only(backend: Any, bucket: str, tls_cert: Tuple[str, str]) -> None:
    cert, key = tls_cert
    server = ProxyServer(ProxyServerConfig({bucket: backend.entry()}, https_port=0, bind_address="127.0.0.1",
                                           hmac_keystore=dict(CLIENT_KEYSTORE), tls_cert_path=cert,
                                           tls_key_path=key))
    with server:
        assert server.http_port is None and server.https_port
        assert server.endpoint_url == f"https://127.0.0.1:{server.https_port}"
        s3 = https_client(server, cert)
        s3.put_object(Bucket=bucket, Key="k", Body=b"only TLS")
        assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"only TLS"


# --------------------------------------------------------------------------
# ALPN and HTTP/2


def alpn(port: int, cafile: str, offered: Any) -> Optional[str]:
    context = ssl.create_default_context(cafile=cafile)
    context.set_alpn_protocols(list(offered))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        with context.wrap_socket(sock, server_hostname="127.0.0.1") as tls:
            return tls.selected_alpn_protocol()


def test_alpn_negotiates_h2_and_http11(tls_proxy: Any, tls_cert: Tuple[str, str]) -> None:
    assert alpn(tls_proxy.https_port, tls_cert[0], ["h2", "http/1.1"]) == "h2"
    assert alpn(tls_proxy.https_port, tls_cert[0], ["http/1.1"]) == "http/1.1"


@pytest.mark.parametrize("version, flag, expected", [("h2", "--http2", "2"), ("h1", "--http1.1", "1.1")])
def test_curl_presigned_get_over_https(tls_proxy: Any, bucket: str, tls_cert: Tuple[str, str],
                                       tmp_path: Path, version: str, flag: str, expected: str) -> None:
    s3 = https_client(tls_proxy, tls_cert[0])
    data = os.urandom(300_000)
    s3.put_object(Bucket=bucket, Key="blob.bin", Body=data)
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "blob.bin"}, ExpiresIn=300)
    out, headers = tmp_path / "out.bin", tmp_path / "headers.txt"
    result = assert_ok(curl(tmp_path, flag, "--cacert", tls_cert[0], "-o", str(out), "-D", str(headers),
                            "-w", "%{http_version} %{http_code}", url))
    assert result.stdout.strip() == f"{expected} 200", result.describe()
    assert out.read_bytes() == data
    received = headers.read_text().lower()
    assert "x-amz-request-id:" in received, received


def test_curl_head_shows_http2(tls_proxy: Any, bucket: str, tls_cert: Tuple[str, str],
                               tmp_path: Path) -> None:
    s3 = https_client(tls_proxy, tls_cert[0])
    s3.put_object(Bucket=bucket, Key="h", Body=b"x" * 4321)
    url = s3.generate_presigned_url("head_object", Params={"Bucket": bucket, "Key": "h"}, ExpiresIn=300)
    result = assert_ok(curl(tmp_path, "-I", "--http2", "--cacert", tls_cert[0], url))
    lines = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    assert lines and lines[0] == "HTTP/2 200", result.describe()
    headers: Dict[str, str] = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    headers = {k.lower(): v for k, v in headers.items()}
    assert headers.get("content-length") == "4321", headers


def test_curl_presigned_put_over_http2(tls_proxy: Any, bucket: str, direct: Any,
                                       tls_cert: Tuple[str, str], tmp_path: Path) -> None:
    s3 = https_client(tls_proxy, tls_cert[0])
    data = os.urandom(2 * MIB + 7)
    source = tmp_path / "upload.bin"
    source.write_bytes(data)
    url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "up.bin"}, ExpiresIn=300)
    result = assert_ok(curl(tmp_path, "--http2", "--cacert", tls_cert[0], "-T", str(source),
                            "-o", str(tmp_path / "resp.txt"), "-w", "%{http_version} %{http_code}", url))
    assert result.stdout.strip() == "2 200", result.describe() + (tmp_path / "resp.txt").read_text(errors="replace")
    assert stored_body(direct, bucket, "up.bin") == data


def test_curl_admin_paths_over_http2_are_s3(tls_proxy: Any, tls_cert: Tuple[str, str],
                                            tmp_path: Path) -> None:
    """Over HTTP/2 too, the HTTPS listener answers only S3: /healthz is an
    unauthenticated S3 request (the admin endpoints have their own listener)."""
    result = assert_ok(curl(tmp_path, "--http2", "--cacert", tls_cert[0], "-w", "\n%{http_version} %{http_code}",
                            https_endpoint(tls_proxy) + HEALTHZ))
    body, _, status = result.stdout.rpartition("\n")
    assert status.strip() == "2 403" and "<Code>AccessDenied</Code>" in body, result.describe()


def test_curl_http2_flag_on_the_plain_http_port(tls_proxy: Any, bucket: str, tmp_path: Path) -> None:
    """curl --http2 on http:// asks for an h2c upgrade (Upgrade, HTTP2-Settings,
    Connection headers): the proxy answers over HTTP/1.1 and never forwards
    those hop-by-hop headers (versitygw checks the re-signature)."""
    s3 = make_client(tls_proxy.endpoint_url, CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY)
    s3.put_object(Bucket=bucket, Key="p", Body=b"plain h1")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "p"}, ExpiresIn=300)
    result = assert_ok(curl(tmp_path, "--http2", "-w", "\n%{http_code}", url))
    body, _, status = result.stdout.rpartition("\n")
    assert (body, status) == ("plain h1", "200"), result.describe()


# --------------------------------------------------------------------------
# bad certificates fail at start


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def other_key(tmp_path_factory: Any) -> str:
    path = tmp_path_factory.mktemp("otherkey") / "other.key"
    _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(path))
    return str(path)


@pytest.mark.parametrize("case", ["missing cert", "missing key", "cert is a directory", "cert is not PEM",
                                  "key is not PEM", "key of another cert"])
def test_bad_certificate_fails_at_start(backend: Any, bucket: str, tls_cert: Tuple[str, str],
                                        other_key: str, tmp_path: Path, case: str) -> None:
    cert, key = tls_cert
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("this is not a certificate\n")
    (tmp_path / "a-directory").mkdir()
    cert_path, key_path, named = {
        "missing cert": (str(tmp_path / "no-such-cert.pem"), key, str(tmp_path / "no-such-cert.pem")),
        "missing key": (cert, str(tmp_path / "no-such-key.pem"), str(tmp_path / "no-such-key.pem")),
        "cert is a directory": (str(tmp_path / "a-directory"), key, str(tmp_path / "a-directory")),
        "cert is not PEM": (str(garbage), key, str(garbage)),
        "key is not PEM": (cert, str(garbage), str(garbage)),
        "key of another cert": (cert, other_key, None),
    }[case]
    http_port = free_port()
    server = ProxyServer(ProxyServerConfig({bucket: backend.entry()}, http_port=http_port, https_port=0,
                                           bind_address="127.0.0.1", hmac_keystore=dict(CLIENT_KEYSTORE),
                                           tls_cert_path=cert_path, tls_key_path=key_path))
    with pytest.raises((RuntimeError, ValueError)) as failure:
        server.start()
    message = str(failure.value)
    if named is not None:
        assert named in message, message
    else:
        assert cert_path in message or key_path in message, message
    assert not server.running and server.http_port is None and server.https_port is None
    # Nothing was left listening: the HTTP port is free again.
    with socket.socket() as s:
        s.bind(("127.0.0.1", http_port))
