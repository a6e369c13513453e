"""Security properties, each proven end to end against versitygw:

1. ``skip_signature_validation=True`` warns loudly and is refused on a
   non-loopback bind unless ``allow_unverified_on_network=True``.
2. (go/internal/sigv4/consttime_test.go: constant-time comparisons.)
3. No request skips authentication: every method, ``Expect:
   100-continue``, query parameters that look like authentication, path
   tricks, and admin-looking paths (``/_osp/...``, ``/metrics``: the admin
   endpoints have their own listener). Nothing reaches the backend.
4. Cached authorization decisions never outlive their TTL and never serve
   another token, bucket, operation or key.
5. No secret, signature, bearer token or API key in the admin listener's
   ``/metrics`` or in an error body.

Every listener here binds 127.0.0.1, except those of section 1 that bind
0.0.0.0: they run in a subprocess inside a fresh network namespace
(``unshare --net``), whose only interface is its own loopback.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple

import pytest
import requests
from botocore.exceptions import ClientError

import awschunked as ac
from bearer_front import BearerFront
from helpers import (
    BACKEND_ACCESS_KEY,
    BACKEND_SECRET_KEY,
    CLIENT_ACCESS_KEY,
    CLIENT_SECRET_KEY,
    OTHER_ACCESS_KEY,
    OTHER_SECRET_KEY,
    REGION,
    CallLog,
    assert_client_error,
    free_port,
    make_client,
    object_exists,
    parse_s3_error,
    sign_request,
    stored_body,
    stored_keys,
    utcnow,
)
from iam_server import IamServer
from object_storage_proxy import ProxyServer, ProxyServerConfig
from object_storage_proxy.configfile import check_config
from observe import Stderr, log_records, scrape
from s3wire import presign_with_botocore, render, send_expect_continue, signing_key

METHODS = ("GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS", "PATCH")
UNVERIFIED_WARNING = "client signatures are NOT verified"
NETWORK_WARNING = "client signatures are NOT verified on a network address"


# --------------------------------------------------------------------------
# helpers


def raw(proxy: ProxyServer, method: str, path: str, headers: Optional[Mapping[str, str]] = None,
        body: Optional[bytes] = None) -> ac.Response:
    """One request sent byte for byte as given (http.client keeps the path:
    no dot-segment removal, no re-encoding), to the proxy on 127.0.0.1."""
    all_headers = {"Host": f"127.0.0.1:{proxy.http_port}", **dict(headers or {})}
    return ac.raw_request("127.0.0.1", int(proxy.http_port or 0), method, path, all_headers, body, timeout=10)


def signed_headers(proxy: ProxyServer, method: str, path: str, body: bytes = b"", *,
                   sign_path: Optional[str] = None, **options: Any) -> Dict[str, str]:
    """Headers of ``method path`` signed by botocore (S3 SigV4: the path is
    signed as written, unnormalized). ``sign_path`` signs another spelling of
    the path than the one sent."""
    url = f"http://127.0.0.1:{proxy.http_port}{sign_path or path}"
    return sign_request(method, url, body=body, **options)


def error_code(response: ac.Response) -> str:
    return parse_s3_error(response.content)["Code"] if response.content else ""


# Refusals of a request's shape, made before authentication: a method S3
# does not have, a path no bucket or key may take. They refuse as surely as
# an authentication failure does (nothing is forwarded).
SHAPE_REFUSALS = {("InvalidURI", 400), ("InvalidBucketName", 400), ("MethodNotAllowed", 405)}


def check_refusal(response: ac.Response, method: str, status: int, code: str) -> Optional[str]:
    """None if ``response`` is the S3 error ``code`` with ``status`` (for
    HEAD, whose answers have no body, the status alone), or one of the
    SHAPE_REFUSALS, else what is wrong."""
    shape = {s for _, s in SHAPE_REFUSALS}
    if response.status_code in shape and response.status_code != status:
        if method == "HEAD":
            return None
        if (error_code(response), response.status_code) in SHAPE_REFUSALS:
            return None
    if response.status_code != status:
        return f"status {response.status_code}, want {status}: {response.content[:300]!r}"
    if method == "HEAD":
        return None
    if "xml" not in response.headers.get("Content-Type", ""):
        return f"not an S3 XML error: Content-Type {response.headers.get('Content-Type')!r}"
    try:
        fields = parse_s3_error(response.content)
    except Exception as exc:  # noqa: BLE001 - an unparsable body is the failure reported
        return f"not an S3 XML error: {exc}: {response.content[:300]!r}"
    if fields["Code"] != code:
        return f"code {fields['Code']}, want {code}: {fields}"
    return None


def expect_continue(proxy: ProxyServer, method: str, path: str, headers: Mapping[str, str], body: bytes,
                    wait: float = 3.0) -> Tuple[bool, ac.Response]:
    """Sends the headers with ``Expect: 100-continue``, then the body only if
    ``100 Continue`` came (or nothing came within ``wait`` seconds). Returns
    whether 100 Continue came, and the final response."""
    port = int(proxy.http_port or 0)
    head = render(method, path, [("Host", f"127.0.0.1:{port}"), ("Expect", "100-continue"),
                                 ("Content-Length", str(len(body))), *headers.items()])
    return send_expect_continue("127.0.0.1", port, head, body, method=method, wait=wait, timeout=10)


def send_forged_upload(upload: ac.Upload, timeout: float = 10.0) -> ac.Response:
    """Sends an aws-chunked upload whose signatures were tampered with: the
    proxy must answer (with its refusal) within ``timeout`` seconds, not
    leave the client hanging on a backend still waiting for the body."""
    try:
        return ac.send(upload, timeout=timeout)
    except (socket.timeout, TimeoutError) as exc:
        raise AssertionError(
            f"no answer within {timeout}s to an aws-chunked upload with a forged signature "
            f"({upload.mode} {upload.path})") from exc


def windows(value: str, size: int = 16) -> List[str]:
    """Every substring of ``value`` of ``size`` characters (the whole value
    if shorter): a leak of any part of a secret is a leak."""
    if len(value) <= size:
        return [value]
    return [value[i:i + size] for i in range(len(value) - size + 1)]


def leaks(text: str, named: Mapping[str, str], size: int = 16) -> Dict[str, str]:
    """What of ``named`` (description -> secret) shows up in ``text``, by
    any ``size``-character piece."""
    found: Dict[str, str] = {}
    lowered = text.lower()
    for what, value in named.items():
        for piece in windows(value, size):
            if piece in text or (piece.lower() in lowered and re.fullmatch(r"[0-9a-f]+", piece.lower())):
                at = text.lower().find(piece.lower())
                found[what] = f"{piece!r} in ...{text[max(0, at - 80):at + len(piece) + 80]!r}..."
                break
    return found


def signing_key_hex(secret: str, date: str, region: str = REGION) -> str:
    return signing_key(secret, date, region).hex()


def signature_of(authorization: str) -> str:
    match = re.search(r"Signature=([0-9a-f]{64})", authorization)
    assert match, authorization
    return match.group(1)


def presign(url: str, access_key: str, secret_key: str, at: datetime.datetime, method: str = "GET") -> str:
    """A presigned URL made by botocore at a fixed time."""
    return presign_with_botocore(url, access_key=access_key, secret_key=secret_key, at=at, method=method)


# --------------------------------------------------------------------------
# 1. skip_signature_validation and the bind address


def test_skip_signature_validation_on_loopback_starts_and_warns(
        start_proxy: Callable[..., Any], client_for: Callable[..., Any], direct: Any, bucket: str, capfd: Any) -> None:
    stderr = Stderr(capfd)
    control = start_proxy(bucket)  # signatures checked: no warning
    control_log = stderr.read()
    assert UNVERIFIED_WARNING not in control_log, control_log[-2000:]

    proxy = start_proxy(bucket, skip_signature_validation=True)  # bind_address="127.0.0.1"
    assert proxy.config.bind_address == "127.0.0.1"
    client = client_for(proxy, CLIENT_ACCESS_KEY, "not-the-secret")
    client.put_object(Bucket=bucket, Key="unchecked", Body=b"let through")
    assert stored_body(direct, bucket, "unchecked") == b"let through"  # the setting is in force

    text = stderr.read()[len(control_log):]
    warnings = [r for r in log_records(text) if UNVERIFIED_WARNING in str(r.get("msg"))]
    assert warnings, f"no warning about skip_signature_validation in:\n{text[-3000:]}"
    assert all(str(r.get("level")).upper().startswith("WARN") for r in warnings), warnings
    assert [r.get("bind") for r in warnings] == ["127.0.0.1"], warnings
    assert NETWORK_WARNING not in text  # loopback: the milder one only

    # The control proxy still refuses the wrong secret.
    bad = client_for(control, CLIENT_ACCESS_KEY, "not-the-secret")
    with pytest.raises(ClientError) as exc:
        bad.put_object(Bucket=bucket, Key="checked", Body=b"x")
    assert_client_error(exc, 403, "SignatureDoesNotMatch", bad)


@pytest.mark.parametrize("bind", ["127.0.0.1", "127.3.4.5", "::1", "localhost"])
def test_skip_signature_validation_accepted_on_loopback_binds(backend: Any, bind: str) -> None:
    config = ProxyServerConfig({"b": backend.entry()}, http_port=0, bind_address=bind,
                               skip_signature_validation=True)
    assert config.skip_signature_validation and not config.allow_unverified_on_network
    assert json.loads(config.to_native_json())["allow_unverified_on_network"] is False


@pytest.mark.parametrize("bind", [None, "0.0.0.0", "::", "192.0.2.10", "2001:db8::7", "proxy.example.com",
                                  "localhost.example.com"])
def test_skip_signature_validation_refused_on_network_binds(backend: Any, bind: Optional[str]) -> None:
    options: Dict[str, Any] = {"http_port": 0, "skip_signature_validation": True}
    if bind is not None:
        options["bind_address"] = bind
    shown = bind or "0.0.0.0"  # the default bind

    with pytest.raises(ValueError) as exc:
        ProxyServerConfig({"b": backend.entry()}, **options)
    message = str(exc.value)
    for part in ("skip_signature_validation", "allow_unverified_on_network", repr(shown), "not a loopback address"):
        assert part in message, message
    assert BACKEND_SECRET_KEY not in message

    # With the explicit consent it is accepted (and sent to libosp).
    config = ProxyServerConfig({"b": backend.entry()}, allow_unverified_on_network=True, **options)
    assert json.loads(config.to_native_json())["allow_unverified_on_network"] is True
    assert "allow_unverified_on_network=True" in repr(config)
    # The consent alone changes nothing for a proxy that checks signatures.
    ProxyServerConfig({"b": backend.entry()}, http_port=0, bind_address=shown, allow_unverified_on_network=True)


def test_allow_unverified_on_network_is_keyword_only_and_typed(backend: Any) -> None:
    with pytest.raises(TypeError, match="allow_unverified_on_network"):
        ProxyServerConfig({"b": backend.entry()}, http_port=0,
                          allow_unverified_on_network="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ProxyServerConfig({"b": backend.entry()}, None, None, 0, None, 1, None, None, True, None,
                          True)  # type: ignore[misc, arg-type]


def test_check_config_reports_unverified_network_bind(tmp_path: Any, backend: Any) -> None:
    def write(*server_lines: str) -> str:
        path = tmp_path / f"osp-{secrets.token_hex(4)}.toml"
        path.write_text("\n".join([
            "[server]", "http_port = 6190", "skip_signature_validation = true", *server_lines, "",
            "[keystore]", 'AK = "a-client-secret"', "",
            "[buckets.data]", 'host = "127.0.0.1"', f"port = {backend.port}", 'scheme = "http"',
            f'access_key = "{BACKEND_ACCESS_KEY}"', f'secret_key = "{BACKEND_SECRET_KEY}"', ""]))
        return str(path)

    config, errors = check_config(write('bind_address = "0.0.0.0"'))
    assert config is None
    assert len(errors) == 1, errors
    assert errors[0].startswith("[server] skip_signature_validation:"), errors
    assert "allow_unverified_on_network" in errors[0] and "'0.0.0.0'" in errors[0], errors
    assert BACKEND_SECRET_KEY not in "\n".join(errors)

    config, errors = check_config(write('bind_address = "0.0.0.0"', "allow_unverified_on_network = true"))
    assert errors == [] and config is not None and config.allow_unverified_on_network
    config, errors = check_config(write('bind_address = "127.0.0.1"'))
    assert errors == [] and config is not None


# Runs inside `unshare --net` (a network namespace with only its own
# loopback): the proxies bound to 0.0.0.0 are reachable from nowhere else.
_NETNS_SCRIPT = r"""
import datetime, json, sys, urllib.request, urllib.error
from object_storage_proxy import ProxyServer, ProxyServerConfig, _native

now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
# Well formed, dated now, with a known access key and a signature of zeros.
forged = {"Authorization": "AWS4-HMAC-SHA256 Credential=AK/%s/us-east-1/s3/aws4_request, "
          "SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=%s" % (now[:8], "0" * 64),
          "x-amz-date": now, "x-amz-content-sha256": "UNSIGNED-PAYLOAD"}

out = {}
cos_map = {"data": {"host": "127.0.0.1", "port": 9, "scheme": "http", "addressing_style": "path",
                    "access_key": "backend", "secret_key": "backend-secret-xyz"}}
keystore = {"AK": "client-secret-xyz"}

def status(url, headers=None):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")

# A: libosp itself refuses skip_signature_validation on 0.0.0.0 (Python's
# check bypassed: the native JSON is edited).
plain = ProxyServerConfig(cos_map, http_port=0, bind_address="0.0.0.0", hmac_keystore=keystore)
doc = json.loads(plain.to_native_json())
doc["skip_signature_validation"] = True
try:
    handle = _native.start(json.dumps(doc))
    _native.stop(handle, 1)
    out["native_start"] = "started"
except RuntimeError as e:
    out["native_start"] = "refused: " + str(e)

# B: a field changed after construction is checked again at start.
late = ProxyServerConfig(cos_map, http_port=0, bind_address="0.0.0.0", hmac_keystore=keystore)
late.skip_signature_validation = True
server = ProxyServer(late)
try:
    server.start()
    out["late_start"] = "started"
    server.stop()
except ValueError as e:
    out["late_start"] = "refused: " + str(e)
out["late_running"] = server.running

# C: with the consent it starts on 0.0.0.0 and skips signatures.
allowed = ProxyServerConfig(cos_map, http_port=0, bind_address="0.0.0.0", hmac_keystore=keystore,
                            skip_signature_validation=True, allow_unverified_on_network=True, admin_port=0)
with ProxyServer(allowed) as server:
    url = "http://127.0.0.1:%d" % server.http_port
    out["allowed_healthz"] = status(server.admin_url + "/healthz")[0]
    out["allowed_forged"] = status(url + "/data/k", forged)

# D: a reload cannot switch skip_signature_validation on for a server on 0.0.0.0.
with ProxyServer(ProxyServerConfig(cos_map, http_port=0, bind_address="0.0.0.0", hmac_keystore=keystore)) as server:
    url = "http://127.0.0.1:%d" % server.http_port
    bad = ProxyServerConfig(cos_map, http_port=0, bind_address="0.0.0.0", hmac_keystore=keystore)
    bad.skip_signature_validation = True
    try:
        server.reload(bad)
        out["reload"] = "reloaded"
    except ValueError as e:
        out["reload"] = "refused: " + str(e)
    doc = json.loads(server.config.to_native_json())
    doc["skip_signature_validation"] = True
    try:
        _native.reload(server._handle, json.dumps(doc))
        out["native_reload"] = "reloaded"
    except ValueError as e:
        out["native_reload"] = "refused: " + str(e)
    out["after_refused_reloads"] = status(url + "/data/k", forged)
    sys.stderr.write("\n--- reload with consent ---\n")
    sys.stderr.flush()
    good = ProxyServerConfig(cos_map, http_port=0, bind_address="0.0.0.0", hmac_keystore=keystore,
                             skip_signature_validation=True, allow_unverified_on_network=True)
    server.reload(good)
    out["after_consented_reload"] = status(url + "/data/k", forged)[0]
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def netns_results() -> Tuple[Dict[str, Any], str]:
    """Runs _NETNS_SCRIPT in a fresh network namespace: its JSON results and
    its stderr (the proxies' logs)."""
    command = ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$0" "$@"', sys.executable, "-c",
               _NETNS_SCRIPT]
    env = dict(os.environ, OSP_LOG_LEVEL="info", OSP_LOG_FORMAT="text")
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, (
        f"the network-namespace run failed ({done.returncode}); it needs root and util-linux's unshare:\n"
        f"{done.stderr[-3000:]}")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, done.stdout[-2000:]
    return json.loads(lines[-1]), done.stderr


def test_libosp_refuses_unverified_network_bind(netns_results: Tuple[Dict[str, Any], str]) -> None:
    results, _ = netns_results
    verdict = results["native_start"]
    assert verdict.startswith("refused: "), verdict
    for part in ("skip_signature_validation", "allow_unverified_on_network", '"0.0.0.0"', "not a loopback address"):
        assert part in verdict, verdict


def test_unverified_network_bind_refused_at_start_after_a_late_change(
        netns_results: Tuple[Dict[str, Any], str]) -> None:
    results, _ = netns_results
    assert results["late_start"].startswith("refused: "), results["late_start"]
    assert "allow_unverified_on_network" in results["late_start"]
    assert results["late_running"] is False


def test_allow_unverified_on_network_starts_and_warns(netns_results: Tuple[Dict[str, Any], str]) -> None:
    results, stderr = netns_results
    assert results["allowed_healthz"] == 200
    # Signatures are not checked: the forged request gets past authentication
    # and fails only at the (absent) backend.
    status, body = results["allowed_forged"]
    assert status in (502, 503, 504), (status, body)
    assert "SignatureDoesNotMatch" not in body and "AccessDenied" not in body, body
    network = [r for r in log_records(stderr) if NETWORK_WARNING in str(r.get("msg"))]
    assert network and all(r.get("bind") == "0.0.0.0" for r in network), stderr[-3000:]
    assert all(str(r.get("level")).upper().startswith("WARN") for r in network), network


def test_reload_cannot_switch_off_signatures_on_a_network_bind(netns_results: Tuple[Dict[str, Any], str]) -> None:
    results, stderr = netns_results
    assert results["reload"].startswith("refused: ") and "allow_unverified_on_network" in results["reload"], results
    assert results["native_reload"].startswith("refused: "), results
    assert "allow_unverified_on_network" in results["native_reload"], results
    # Still checking signatures after both refusals.
    status, body = results["after_refused_reloads"]
    assert status == 403 and "SignatureDoesNotMatch" in body, (status, body)
    # A consented reload takes effect, and says so in the log.
    assert results["after_consented_reload"] in (502, 503, 504), results
    after = stderr.split("--- reload with consent ---", 1)
    assert len(after) == 2 and NETWORK_WARNING in after[1], stderr[-3000:]


# --------------------------------------------------------------------------
# 3. no request skips authentication


@pytest.fixture
def guarded(start_proxy: Callable[..., Any], make_bucket: Callable[..., str], direct: Any
            ) -> Iterator[Tuple[ProxyServer, str, str, CallLog]]:
    """A proxy over two buckets (an object "existing" in each), whose
    validator allows everything and records its calls: a request that got
    past authentication would show up there."""
    first, second = make_bucket("guard"), make_bucket("guard")
    for name in (first, second):
        direct.put_object(Bucket=name, Key="existing", Body=b"original content")
    log = CallLog()

    def validator(token: str, bucket: str) -> bool:
        log.add(token, bucket)
        return True

    proxy = start_proxy(first, second, validator=validator)
    yield proxy, first, second, log
    for name in (first, second):
        assert stored_keys(direct, name) == ["existing"], f"something was stored in {name}"
        assert stored_body(direct, name, "existing") == b"original content"
        assert direct.list_multipart_uploads(Bucket=name).get("Uploads", []) == []


def _targets(bucket: str) -> List[str]:
    return ["/", f"/{bucket}", f"/{bucket}/", f"/{bucket}/new-object", f"/{bucket}/existing",
            f"/{bucket}/existing?uploads", f"/{bucket}/existing?acl", f"/{bucket}?delete"]


def _wrong_secret(proxy: ProxyServer, method: str, path: str, body: bytes) -> Dict[str, str]:
    return signed_headers(proxy, method, path, body, secret_key="not-the-secret")


def _unknown_key(proxy: ProxyServer, method: str, path: str, body: bytes) -> Dict[str, str]:
    return signed_headers(proxy, method, path, body, access_key="NOSUCHKEY0123456789",
                          secret_key="whatever-secret")


def _zero_signature(proxy: ProxyServer, method: str, path: str, body: bytes) -> Dict[str, str]:
    headers = signed_headers(proxy, method, path, body)
    headers["Authorization"] = re.sub(r"Signature=[0-9a-f]{64}", "Signature=" + "0" * 64, headers["Authorization"])
    return headers


def _stale_good_signature(proxy: ProxyServer, method: str, path: str, body: bytes) -> Dict[str, str]:
    """A correct signature of an hour ago (replay)."""
    return signed_headers(proxy, method, path, body, at=utcnow() - datetime.timedelta(hours=1))


AUTH_MODES: Dict[str, Tuple[Optional[Callable[..., Dict[str, str]]], int, str]] = {
    "unsigned": (None, 403, "AccessDenied"),
    "wrong-secret": (_wrong_secret, 403, "SignatureDoesNotMatch"),
    "unknown-key": (_unknown_key, 403, "InvalidAccessKeyId"),
    "zero-signature": (_zero_signature, 403, "SignatureDoesNotMatch"),
    "replayed-an-hour-later": (_stale_good_signature, 403, "RequestTimeTooSkewed"),
}


@pytest.mark.parametrize("mode", list(AUTH_MODES))
@pytest.mark.parametrize("method", METHODS)
def test_every_method_is_authenticated(guarded: Tuple[ProxyServer, str, str, CallLog], method: str,
                                       mode: str) -> None:
    proxy, first, _, log = guarded
    sign, status, code = AUTH_MODES[mode]
    body = b"sneaky body" if method in ("PUT", "POST", "PATCH", "OPTIONS") else b""
    problems = []
    for path in _targets(first):
        headers = {} if sign is None else sign(proxy, method, path, body)
        response = raw(proxy, method, path, headers, body or None)
        problem = check_refusal(response, method, status, code)
        if problem:
            problems.append(f"{method} {path} ({mode}): {problem}")
        if b"original content" in response.content:
            problems.append(f"{method} {path} ({mode}): the object's content was returned")
    assert not problems, "\n".join(problems)
    assert log.calls == [], "a refused request reached the validator"


@pytest.mark.parametrize("method", ["PUT", "POST", "PATCH"])
@pytest.mark.parametrize("mode", ["unsigned", "wrong-secret"])
def test_expect_100_continue_does_not_skip_authentication(guarded: Tuple[ProxyServer, str, str, CallLog],
                                                          method: str, mode: str) -> None:
    proxy, first, _, log = guarded
    sign, status, code = AUTH_MODES[mode]
    body = b"e" * 50_000
    for path in (f"/{first}/expect-object", f"/{first}/expect-object?uploads", f"/{first}/existing"):
        headers = {} if sign is None else sign(proxy, method, path, body)
        got_continue, response = expect_continue(proxy, method, path, headers, body)
        assert check_refusal(response, method, status, code) is None, (path, response.status_code,
                                                                        response.content[:300])
        # The refusal is known from the headers: the body is not asked for.
        assert not got_continue, f"{method} {path}: 100 Continue sent to an unauthenticated client"
    assert log.calls == []


# (query, method, expected status, expected code): S3's answers to
# requests whose query only looks like authentication.
_FAKE_SIG = "a" * 64
AUTH_LOOKING_QUERIES: List[Tuple[str, str, int, str]] = [
    (f"X-Amz-Signature={_FAKE_SIG}", "GET", 400, "AuthorizationQueryParametersError"),
    (f"X-Amz-Signature={_FAKE_SIG}", "PUT", 400, "AuthorizationQueryParametersError"),
    ("X-Amz-Credential=" + urllib.parse.quote(f"{CLIENT_ACCESS_KEY}/20250101/us-east-1/s3/aws4_request", safe=""),
     "GET", 400, "AuthorizationQueryParametersError"),
    ("X-Amz-Algorithm=AWS4-HMAC-SHA256", "DELETE", 400, "AuthorizationQueryParametersError"),
    (f"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature={_FAKE_SIG}&X-Amz-Date=20250101T000000Z",
     "GET", 400, "AuthorizationQueryParametersError"),
    (f"x-amz-signature={_FAKE_SIG}", "GET", 403, "AccessDenied"),  # another name: just a parameter
    ("uploads", "POST", 403, "AccessDenied"),
    ("uploads=", "POST", 403, "AccessDenied"),
    ("acl", "PUT", 403, "AccessDenied"),
    ("acl", "GET", 403, "AccessDenied"),
    ("x-id=GetObject", "GET", 403, "AccessDenied"),
    ("x-id=PutObject", "PUT", 403, "AccessDenied"),
    ("uploadId=x&partNumber=1", "PUT", 403, "AccessDenied"),
    ("AWSAccessKeyId=" + CLIENT_ACCESS_KEY + "&Signature=abc%3D&Expires=9999999999", "GET", 400, "InvalidRequest"),
    ("", "PUT", 403, "AccessDenied"),  # a bare trailing '?'
]


@pytest.mark.parametrize("query, method, status, code", AUTH_LOOKING_QUERIES,
                         ids=[f"{m}?{q[:40]}" for q, m, _, _ in AUTH_LOOKING_QUERIES])
def test_auth_looking_query_parameters_do_not_authenticate(
        guarded: Tuple[ProxyServer, str, str, CallLog], query: str, method: str, status: int, code: str) -> None:
    proxy, first, _, log = guarded
    body = b"x" if method in ("PUT", "POST") else None
    for key in ("existing", "query-object"):
        path = f"/{first}/{key}?{query}"
        response = raw(proxy, method, path, {}, body)
        assert check_refusal(response, method, status, code) is None, (path, response.status_code,
                                                                        response.content[:400])
        assert b"original content" not in response.content
        # With a wrongly signed Authorization header beside them, the
        # signature is checked (or two auth mechanisms refused).
        headers = _wrong_secret(proxy, method, path, body or b"")
        response = raw(proxy, method, path, headers, body)
        assert response.status_code in (400, 403), (path, response.status_code, response.content[:400])
        assert error_code(response) in ("SignatureDoesNotMatch", "InvalidArgument", "InvalidRequest",
                                        "AuthorizationQueryParametersError"), (path, response.content[:400])
    assert log.calls == []


def test_presigned_url_with_a_wrong_signature_or_both_mechanisms(
        guarded: Tuple[ProxyServer, str, str, CallLog]) -> None:
    proxy, first, _, log = guarded
    url = f"http://127.0.0.1:{proxy.http_port}/{first}/existing"
    now = utcnow()
    for access_key, secret_key, code in ((CLIENT_ACCESS_KEY, "not-the-secret", "SignatureDoesNotMatch"),
                                         ("NOSUCHKEY0123456789", "x", "InvalidAccessKeyId")):
        for method in ("GET", "PUT", "DELETE"):
            signed_url = presign(url, access_key, secret_key, now, method)
            parts = urllib.parse.urlsplit(signed_url)
            response = raw(proxy, method, f"{parts.path}?{parts.query}", {}, b"x" if method == "PUT" else None)
            assert check_refusal(response, method, 403, code) is None, (method, response.content[:300])
    good = urllib.parse.urlsplit(presign(url, CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY, now))
    both = signed_headers(proxy, "GET", f"/{first}/existing")
    response = raw(proxy, "GET", f"{good.path}?{good.query}", both)
    assert check_refusal(response, "GET", 400, "InvalidArgument") is None, response.content[:300]
    assert log.calls == []


PATH_TRICKS = [
    "//{b}/trick-1",
    "/{b}/./trick-2",
    "/{b}/%2e%2e/{o}/trick-3",
    "/{b}/../{o}/trick-4",
    "/{b}/trick-5?",
    "/%2F{b}/trick-6",
    "/{b}%2Ftrick-7",
    "/{B}/trick-8",
    "/{b_enc}/trick-9",
    "/{b}//trick-10",
    "/{b}/trick-11/..",
    "/./{b}/trick-12",
    "/{b}/%00trick-13",
    "/{b}/existing;x=y",
]


@pytest.mark.parametrize("mode", ["unsigned", "wrong-secret", "zero-signature"])
@pytest.mark.parametrize("method", ["PUT", "GET", "DELETE", "POST"])
def test_path_tricks_do_not_skip_authentication(guarded: Tuple[ProxyServer, str, str, CallLog],
                                                method: str, mode: str) -> None:
    proxy, first, second, log = guarded
    sign, status, code = AUTH_MODES[mode]
    body = b"tricky" if method in ("PUT", "POST") else b""
    problems = []
    for template in PATH_TRICKS:
        path = template.format(b=first, o=second, B=first.upper(), b_enc=f"%{ord(first[0]):02X}{first[1:]}")
        headers = {} if sign is None else sign(proxy, method, path, body)
        response = raw(proxy, method, path, headers, body or None)
        problem = check_refusal(response, method, status, code)
        if problem:
            problems.append(f"{method} {path} ({mode}): {problem}")
    assert not problems, "\n".join(problems)
    assert log.calls == []


def test_admin_paths_are_no_way_around(guarded: Tuple[ProxyServer, str, str, CallLog]) -> None:
    """The S3 listener has no admin paths (they live on the admin
    listener): /_osp/..., /healthz, /metrics are S3 requests like any
    other, authenticated, whatever the method or spelling."""
    proxy, first, _, log = guarded
    problems = []
    paths = ("/_osp/metrics", "/_osp/healthz", "/_osp/readyz", "/metrics", "/healthz", "/readyz",
             f"/_osp/../{first}/existing", f"/_osp/metrics/../../{first}/existing", f"/_osp/{first}/existing",
             "/_osp//metrics", "/_osp/metrics%2F..%2F..%2F" + first + "%2Fexisting", "/%5Fosp/../" + first + "/existing",
             "/_osp/", "/_OSP/metrics", "//_osp/metrics", f"//_osp/../{first}/existing", "/_osp/metrics?uploads")
    for method in ("GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS", "PATCH"):
        for path in paths:
            response = raw(proxy, method, path, {}, b"x" if method in ("PUT", "POST", "PATCH") else None)
            problem = check_refusal(response, method, 403, "AccessDenied")
            if problem:
                problems.append(f"{method} {path}: {problem}")
            if b"original content" in response.content or b"go_goroutines" in response.content:
                problems.append(f"{method} {path}: answered {response.content[:100]!r}")
    assert not problems, "\n".join(problems)
    # A correctly signed PUT to /_osp/... is an S3 request for bucket "_osp":
    # not in cos_map, so nothing is stored anywhere.
    response = raw(proxy, "PUT", "/_osp/metrics", signed_headers(proxy, "PUT", "/_osp/metrics", b"x"), b"x")
    assert check_refusal(response, "PUT", 404, "NoSuchBucket") is None, response.content[:300]
    # The admin listener itself answers only its three GET paths.
    assert proxy.admin_url, "the fixture's proxy has an admin listener"
    for path in ("/" + first + "/existing", f"/healthz/../{first}/existing", "/_osp/metrics"):
        response = requests.get(proxy.admin_url + path, timeout=10)
        assert response.status_code == 404 and b"original content" not in response.content, (path, response.status_code)
    assert log.calls == []


@pytest.fixture
def traversal(start_proxy: Callable[..., Any], make_bucket: Callable[..., str], direct: Any
              ) -> Tuple[ProxyServer, str, str]:
    """Buckets A (allowed) and B (forbidden) and a proxy whose identity-aware
    validator lets a client read anything in A but write only keys under
    incoming/ in A, and do nothing in B."""
    allowed, forbidden = make_bucket("trav-a"), make_bucket("trav-b")
    direct.put_object(Bucket=forbidden, Key="secret-object", Body=b"B's secret content")
    direct.put_object(Bucket=allowed, Key="outside", Body=b"A's unwritable object")

    def validator(token: str, bucket: str, method: str, key: str, operation: str) -> bool:
        if bucket != allowed:
            return False
        return method in ("GET", "HEAD") or key.startswith("incoming/")

    return start_proxy(allowed, forbidden, validator=validator), allowed, forbidden


def _signed_put(proxy: ProxyServer, sent: str, signed: Optional[str] = None) -> ac.Response:
    """PUT ``sent``, correctly signed (over ``signed``, the proxy's canonical
    spelling, when the two differ)."""
    return raw(proxy, "PUT", sent, signed_headers(proxy, "PUT", sent, b"planted", sign_path=signed), b"planted")


def test_signed_dot_segments_do_not_leave_the_authorized_bucket(
        traversal: Tuple[ProxyServer, str, str], direct: Any) -> None:
    """Correctly signed paths that climb from A into B with '..' (plain or
    percent-encoded): the validator is asked about A, so nothing may happen
    in B."""
    proxy, a, b = traversal
    problems = []
    for sent, signed in ((f"/{a}/../{b}/planted", None),
                         (f"/{a}/%2e%2e/{b}/planted-2", f"/{a}/../{b}/planted-2"),
                         (f"/{a}/incoming/../../{b}/planted-3", None),
                         (f"/{a}/incoming/%2E%2E/%2E%2E/{b}/planted-4", f"/{a}/incoming/../../{b}/planted-4")):
        if _signed_put(proxy, sent, signed).status_code == 200:
            problems.append(f"PUT {sent} was accepted")
    for sent in (f"/{a}/../{b}/secret-object", f"/{a}/incoming/../../{b}/secret-object",
                 f"/{a}/%2E%2E/{b}/secret-object"):
        signed = sent.replace("%2E", ".")
        response = raw(proxy, "GET", sent, signed_headers(proxy, "GET", sent, sign_path=signed))
        if b"B's secret content" in response.content:
            problems.append(f"GET {sent} returned bucket B's object")
    assert stored_keys(direct, b) == ["secret-object"], problems
    assert not problems, "\n".join(problems)


def test_signed_dot_segments_do_not_escape_a_key_prefix_policy(
        traversal: Tuple[ProxyServer, str, str], direct: Any) -> None:
    """The validator allows writes under incoming/ only. The client writes
    incoming/../outside: the validator sees a key under incoming/ and says
    yes; the backend must then not act on "outside". (The key the validator
    decides on must be the key the backend acts on.)"""
    proxy, a, _ = traversal
    problems = []
    for sent, signed in ((f"/{a}/incoming/../outside", None),
                         (f"/{a}/incoming/%2E%2E/outside", f"/{a}/incoming/../outside"),
                         (f"/{a}/incoming/./../outside", None)):
        response = _signed_put(proxy, sent, signed)
        if response.status_code == 200:
            problems.append(f"PUT {sent} was accepted ({response.status_code})")
    body = stored_body(direct, a, "outside")
    assert body == b"A's unwritable object", (
        f"object 'outside' overwritten through incoming/../ (a write the validator never allowed): {problems}")
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------
# 4. cached decisions: keyed per token, never past their TTL


class CountingValidator:
    """validator(token, bucket): the policy decides (changeable), every call
    is counted, and calls may be slowed down."""

    def __init__(self, policy: Callable[[str, str], bool], delay: float = 0.0) -> None:
        self.policy = policy
        self.delay = delay
        self.log = CallLog()

    def __call__(self, token: str, bucket: str) -> bool:
        self.log.add(token, bucket)
        if self.delay:
            time.sleep(self.delay)
        return self.policy(token, bucket)

    def count(self, token: str, bucket: str) -> int:
        return self.log.calls.count((token, bucket))


def test_cached_allow_of_one_key_never_serves_another(start_proxy: Callable[..., Any],
                                                       client_for: Callable[..., Any], direct: Any,
                                                       bucket: str) -> None:
    validator = CountingValidator(lambda token, b: token == CLIENT_ACCESS_KEY)
    proxy = start_proxy(bucket, entry={"ttl": 300}, validator=validator)
    a, b = client_for(proxy), client_for(proxy, OTHER_ACCESS_KEY, OTHER_SECRET_KEY)

    a.put_object(Bucket=bucket, Key="a-0", Body=b"a")  # A's allow is cached now
    for i in range(1, 6):
        for call in (lambda: b.put_object(Bucket=bucket, Key=f"b-{i}", Body=b"b"),
                     lambda: b.get_object(Bucket=bucket, Key="a-0"),
                     lambda: b.list_objects_v2(Bucket=bucket),
                     lambda: b.delete_object(Bucket=bucket, Key="a-0")):
            with pytest.raises(ClientError) as exc:
                call()
            assert_client_error(exc, 403, "AccessDenied", b)
        a.put_object(Bucket=bucket, Key=f"a-{i}", Body=b"a")  # B's cached denial does not hit A
        assert a.get_object(Bucket=bucket, Key="a-0")["Body"].read() == b"a"

    assert stored_keys(direct, bucket) == [f"a-{i}" for i in range(6)]
    # Each answer was asked once and cached under its own token.
    assert validator.count(CLIENT_ACCESS_KEY, bucket) == 1
    assert validator.count(OTHER_ACCESS_KEY, bucket) == 1
    assert len(validator.log) == 2


def test_concurrent_first_requests_of_two_keys_get_their_own_answers(
        start_proxy: Callable[..., Any], client_for: Callable[..., Any], direct: Any, bucket: str) -> None:
    """Misses are collapsed per (token, bucket) only: B's first request,
    arriving while A's validator call is running, gets B's own answer."""
    validator = CountingValidator(lambda token, b: token == CLIENT_ACCESS_KEY, delay=0.4)
    proxy = start_proxy(bucket, validator=validator)
    results: Dict[str, List[Any]] = {"a": [], "b": []}
    lock = threading.Lock()

    def run(name: str, access_key: str, secret_key: str, key: str) -> None:
        client = client_for(proxy, access_key, secret_key)
        try:
            client.put_object(Bucket=bucket, Key=key, Body=b"x")
            outcome: Any = 200
        except ClientError as e:
            outcome = (e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"])
        with lock:
            results[name].append(outcome)

    threads = [threading.Thread(target=run, args=("a", CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY, f"a-{i}"))
               for i in range(3)]
    threads += [threading.Thread(target=run, args=("b", OTHER_ACCESS_KEY, OTHER_SECRET_KEY, f"b-{i}"))
                for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert results == {"a": [200] * 3, "b": [(403, "AccessDenied")] * 3}, results
    assert sorted(stored_keys(direct, bucket)) == ["a-0", "a-1", "a-2"]
    assert validator.count(CLIENT_ACCESS_KEY, bucket) == 1 and validator.count(OTHER_ACCESS_KEY, bucket) == 1


def test_cache_keys_do_not_collide_when_names_concatenate_alike(
        start_proxy: Callable[..., Any], client_for: Callable[..., Any], direct: Any,
        new_bucket_name: Callable[..., str]) -> None:
    """token + bucket of one pair spells token + bucket of another:
    ("KEYAB", "c<rest>") and ("KEYABc", "<rest>")."""
    rest = new_bucket_name("x")
    b1, b2 = "c" + rest, rest
    for name in (b1, b2):
        direct.create_bucket(Bucket=name)
    k1, k2 = "COLLIDEKEYAB", "COLLIDEKEYABc"
    assert k1 + b1 == k2 + b2
    keystore = {k1: "secret-one-" + secrets.token_hex(8), k2: "secret-two-" + secrets.token_hex(8)}
    validator = CountingValidator(lambda token, b: (token, b) == (k1, b1), delay=0.3)
    proxy = start_proxy(b1, b2, validator=validator, hmac_keystore=keystore)
    one, two = client_for(proxy, k1, keystore[k1]), client_for(proxy, k2, keystore[k2])
    outcomes: Dict[str, Any] = {}

    def put(name: str, client: Any, target: str) -> None:
        try:
            client.put_object(Bucket=target, Key="k", Body=b"x")
            outcomes[name] = 200
        except ClientError as e:
            outcomes[name] = e.response["Error"]["Code"]

    threads = [threading.Thread(target=put, args=("one", one, b1)), threading.Thread(target=put, args=("two", two, b2))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    put("two-again", two, b2)
    assert outcomes == {"one": 200, "two": "AccessDenied", "two-again": "AccessDenied"}, outcomes
    assert stored_keys(direct, b2) == [] and stored_keys(direct, b1) == ["k"]
    assert validator.count(k1, b1) == 1 and validator.count(k2, b2) == 1


def test_identity_decisions_are_keyed_by_operation_and_key(
        start_proxy: Callable[..., Any], client_for: Callable[..., Any], direct: Any, bucket: str) -> None:
    direct.put_object(Bucket=bucket, Key="readable", Body=b"r")
    direct.put_object(Bucket=bucket, Key="other", Body=b"o")
    log = CallLog()

    def validator(token: str, bucket: str, method: str, key: str, operation: str) -> bool:
        log.add(token, bucket, method, key, operation)
        return token == CLIENT_ACCESS_KEY and operation == "GetObject" and key == "readable"

    proxy = start_proxy(bucket, entry={"ttl": 300}, validator=validator)
    a, b = client_for(proxy), client_for(proxy, OTHER_ACCESS_KEY, OTHER_SECRET_KEY)
    for _ in range(2):
        assert a.get_object(Bucket=bucket, Key="readable")["Body"].read() == b"r"
        for call, client in ((lambda: a.put_object(Bucket=bucket, Key="readable", Body=b"overwritten"), a),
                             (lambda: a.delete_object(Bucket=bucket, Key="readable"), a),
                             (lambda: a.get_object(Bucket=bucket, Key="other"), a),
                             (lambda: b.get_object(Bucket=bucket, Key="readable"), b)):
            with pytest.raises(ClientError) as exc:
                call()
            assert_client_error(exc, 403, "AccessDenied", client)
    assert stored_body(direct, bucket, "readable") == b"r"
    counts: Dict[Tuple[str, ...], int] = {}
    for c in log.calls:
        counts[c] = counts.get(c, 0) + 1
    assert all(n == 1 for n in counts.values()), counts
    assert len(counts) == 5, counts


def test_decision_is_asked_again_once_its_ttl_is_over(start_proxy: Callable[..., Any],
                                                      client_for: Callable[..., Any], direct: Any, backend: Any,
                                                      make_bucket: Callable[..., str]) -> None:
    """An allow cached for ttl=1 s: once the validator says no, the proxy
    refuses within the TTL (plus a little), and asks again to do so; a
    bucket with ttl=300 keeps its answer meanwhile. A denial expires alike."""
    short, long_ = make_bucket("ttl-short"), make_bucket("ttl-long")
    allowed = {(CLIENT_ACCESS_KEY, short): True, (CLIENT_ACCESS_KEY, long_): True, (OTHER_ACCESS_KEY, short): False}
    validator = CountingValidator(lambda token, b: allowed.get((token, b), False))
    proxy = start_proxy(short, validator=validator, entry={"ttl": 1}, cos_map={long_: backend.entry(ttl=300)})
    a, b = client_for(proxy), client_for(proxy, OTHER_ACCESS_KEY, OTHER_SECRET_KEY)

    cached_at = time.monotonic()
    a.put_object(Bucket=short, Key="before", Body=b"x")
    a.put_object(Bucket=long_, Key="before", Body=b"x")
    with pytest.raises(ClientError) as exc:
        b.put_object(Bucket=short, Key="b-before", Body=b"x")
    assert_client_error(exc, 403, "AccessDenied", b)
    allowed.update({(CLIENT_ACCESS_KEY, short): False, (CLIENT_ACCESS_KEY, long_): False,
                    (OTHER_ACCESS_KEY, short): True})

    refused_at = None
    deadline = cached_at + 5
    while time.monotonic() < deadline:
        try:
            a.head_bucket(Bucket=short)
        except ClientError as e:
            assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 403, e.response
            refused_at = time.monotonic()
            break
        time.sleep(0.05)
    assert refused_at is not None, "the cached allow outlived its 1 s TTL by more than 4 s"
    assert refused_at - cached_at <= 1.0 + 0.5, f"refused only {refused_at - cached_at:.2f}s after caching (ttl 1s)"
    with pytest.raises(ClientError) as exc:
        a.put_object(Bucket=short, Key="after", Body=b"x")
    assert_client_error(exc, 403, "AccessDenied", a)
    assert validator.count(CLIENT_ACCESS_KEY, short) == 2  # asked again, once, after the TTL

    # The denial of B (cached just after A's allow) expired the same way:
    # B is allowed now.
    time.sleep(max(0.0, cached_at + 1.6 - time.monotonic()))
    b.put_object(Bucket=short, Key="b-after", Body=b"x")
    assert validator.count(OTHER_ACCESS_KEY, short) == 2
    # The ttl=300 bucket still has A's allow: one call only.
    a.put_object(Bucket=long_, Key="after", Body=b"x")
    assert validator.count(CLIENT_ACCESS_KEY, long_) == 1
    assert sorted(stored_keys(direct, short)) == ["b-after", "before"]


def test_creds_fetcher_answer_is_asked_again_once_its_ttl_is_over(
        start_proxy: Callable[..., Any], client_for: Callable[..., Any], direct: Any, backend: Any,
        bucket: str) -> None:
    answers: Dict[str, Optional[Dict[str, str]]] = {
        CLIENT_ACCESS_KEY: {"access_key": BACKEND_ACCESS_KEY, "secret_key": BACKEND_SECRET_KEY},
        OTHER_ACCESS_KEY: None,
    }
    log = CallLog()

    def fetcher(token: str, name: str) -> Optional[Dict[str, str]]:
        log.add(token, name)
        return answers[token]

    proxy = start_proxy(cos_map={bucket: backend.entry(creds=False, ttl=1)}, bucket_creds_fetcher=fetcher)
    a, b = client_for(proxy), client_for(proxy, OTHER_ACCESS_KEY, OTHER_SECRET_KEY)
    a.put_object(Bucket=bucket, Key="a", Body=b"x")
    with pytest.raises(ClientError) as exc:  # B's "no credentials" is B's alone
        b.put_object(Bucket=bucket, Key="b", Body=b"x")
    assert_client_error(exc, 403, "AccessDenied", b)
    a.put_object(Bucket=bucket, Key="a2", Body=b"x")  # cached
    assert log.calls.count((CLIENT_ACCESS_KEY, bucket)) == 1
    answers[CLIENT_ACCESS_KEY] = None  # revoked
    time.sleep(1.3)
    with pytest.raises(ClientError) as exc:
        a.put_object(Bucket=bucket, Key="a3", Body=b"x")
    assert_client_error(exc, 403, "AccessDenied", a)
    assert log.calls.count((CLIENT_ACCESS_KEY, bucket)) == 2
    assert sorted(stored_keys(direct, bucket)) == ["a", "a2"]


# --------------------------------------------------------------------------
# 5. no secret in metrics or error bodies


API_KEY = "apikey-sec-" + secrets.token_hex(16)
BAD_API_KEY = "apikey-sec-revoked-" + secrets.token_hex(16)


@pytest.fixture
def iam() -> Iterator[IamServer]:
    with IamServer({API_KEY}) as server:
        yield server


def test_metrics_hold_no_secret_after_a_hostile_workload(
        start_proxy: Callable[..., Any], make_bucket: Callable[..., str], backend: Any, iam: IamServer,
        front: BearerFront) -> None:
    plain, fetched_b, ibm, ibm_bad, wrong_backend, down = (
        make_bucket("m-plain"), make_bucket("m-fetched"), make_bucket("m-ibm"), make_bucket("m-ibmbad"),
        make_bucket("m-wrongbe"), make_bucket("m-down"))
    fetched_key = "FETCHEDKEY" + secrets.token_hex(5).upper()
    fetched_secret = "fetched-secret-" + secrets.token_hex(16)
    wrong_secret = "wrong-secret-" + secrets.token_hex(16)
    wrong_backend_secret = "wrong-backend-secret-" + secrets.token_hex(16)
    client_bearer = "client-bearer-" + secrets.token_hex(16)
    unknown_key = "NOSUCHKEY" + secrets.token_hex(5).upper()
    secret_looking_bucket = "s3cr3t-" + secrets.token_hex(12)
    secret_object_key = "object-key-" + secrets.token_hex(12)

    cos_map = {
        fetched_b: backend.entry(creds=False),
        ibm: front.entry(API_KEY),
        ibm_bad: front.entry(BAD_API_KEY),
        wrong_backend: backend.entry(secret_key=wrong_backend_secret),
        down: {**backend.entry(), "port": free_port()},
    }
    proxy = start_proxy(
        plain, cos_map=cos_map, iam_url=iam.url, log_level="debug",
        hmac_fetcher=lambda ak: fetched_secret if ak == fetched_key else None,
        bucket_creds_fetcher=lambda token, name: {"access_key": BACKEND_ACCESS_KEY, "secret_key": BACKEND_SECRET_KEY},
        validator=lambda token, name: not (token == OTHER_ACCESS_KEY and name == plain))
    url = proxy.endpoint_url
    good = make_client(url, CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY)
    other = make_client(url, OTHER_ACCESS_KEY, OTHER_SECRET_KEY)
    fetched = make_client(url, fetched_key, fetched_secret)
    wrong = make_client(url, CLIENT_ACCESS_KEY, wrong_secret)
    unknown = make_client(url, unknown_key, "unknown-secret-" + secrets.token_hex(8))
    signatures: List[str] = []

    def attempt(call: Callable[[], Any]) -> None:
        try:
            call()
        except ClientError:
            pass

    for name in (plain, fetched_b, ibm):
        good.put_object(Bucket=name, Key=secret_object_key, Body=b"payload")
        good.get_object(Bucket=name, Key=secret_object_key)["Body"].read()
        fetched.list_objects_v2(Bucket=name)
    for name in (plain, ibm_bad, wrong_backend, down, secret_looking_bucket):
        for client in (good, wrong, unknown, other):
            attempt(lambda: client.get_object(Bucket=name, Key=secret_object_key))
            attempt(lambda: client.put_object(Bucket=name, Key=secret_object_key, Body=b"x"))
    for headers in ({"Authorization": f"Bearer {client_bearer}"}, {"X-Api-Key": API_KEY},
                    {"Authorization": f"AWS {CLIENT_ACCESS_KEY}:{wrong_secret}"}):
        raw(proxy, "GET", f"/{plain}/{secret_object_key}", headers)
    now = utcnow()
    for secret in (wrong_secret, CLIENT_SECRET_KEY):
        signed_url = presign(f"{url}/{plain}/{secret_object_key}", CLIENT_ACCESS_KEY, secret, now)
        parts = urllib.parse.urlsplit(signed_url)
        tampered = re.sub(r"(X-Amz-Signature=)([0-9a-f]{64})", lambda m: m.group(1) + ac.flip(m.group(2)), parts.query)
        for query in (parts.query, tampered):
            raw(proxy, "GET", f"{parts.path}?{query}")
        signatures += urllib.parse.parse_qs(parts.query)["X-Amz-Signature"]
    forged = ac.build_upload("PUT", f"{url}/{plain}/chunked", secrets.token_bytes(20000), ac.STREAMING_SIGNED)
    signatures += [c.signature for c in forged.chunks if c.signature]
    forged.chunks[1].signature = ac.flip(forged.chunks[1].signature or "")
    send_forged_upload(forged)
    for method, path in (("GET", f"/{plain}/{secret_object_key}"), ("PUT", f"/{plain}/x")):
        for secret in (wrong_secret, CLIENT_SECRET_KEY):
            headers = signed_headers(proxy, method, path, b"", secret_key=secret)
            signatures.append(signature_of(headers["Authorization"]))
            raw(proxy, method, path, headers)

    metrics = scrape(proxy)
    # Not vacuous: the workload is in the metrics.
    assert metrics.value("osp_requests_total") >= 50, metrics.table("osp_requests_total")
    reasons = set(metrics.label_values("osp_auth_failures_total", "reason"))
    assert {"SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied"} <= reasons, reasons
    assert metrics.value("osp_iam_token_fetches_total", outcome="error") >= 1
    statuses = set(metrics.label_values("osp_requests_total", "status"))
    assert {"200", "403"} <= statuses and statuses & {"502", "503", "504"}, statuses

    tokens = iam.tokens_of(API_KEY)
    assert tokens, "the IBM bucket was never reached with a bearer token"
    named = {
        "client secret": CLIENT_SECRET_KEY, "other client secret": OTHER_SECRET_KEY,
        "fetched client secret": fetched_secret, "wrong secret": wrong_secret,
        "backend secret": BACKEND_SECRET_KEY, "wrong backend secret": wrong_backend_secret,
        "API key": API_KEY, "revoked API key": BAD_API_KEY, "client's bearer token": client_bearer,
        "signing key": signing_key_hex(CLIENT_SECRET_KEY, now.strftime("%Y%m%d")),
        # Identifiers that are no metric's business either.
        "client access key": CLIENT_ACCESS_KEY, "fetched access key": fetched_key, "unknown access key": unknown_key,
        "backend access key": BACKEND_ACCESS_KEY, "object key": secret_object_key,
        "unconfigured bucket name": secret_looking_bucket,
    }
    named.update({f"IAM token {i}": t for i, t in enumerate(tokens)})
    named.update({f"signature {s[:12]}": s for s in set(signatures)})
    found = leaks(metrics.text, named)
    assert not found, f"/metrics leaks: {found}"
    # Unconfigured bucket names are one label value, not one each.
    assert "_unknown" in metrics.label_values("osp_requests_total", "bucket")


def test_signature_error_bodies_hold_no_secret_or_expected_signature(
        start_proxy: Callable[..., Any], make_bucket: Callable[..., str], backend: Any, iam: IamServer,
        front: BearerFront, direct: Any) -> None:
    plain, ibm_bad, wrong_backend = make_bucket("e-plain"), make_bucket("e-ibmbad"), make_bucket("e-wrongbe")
    wrong_backend_secret = "wrong-backend-secret-" + secrets.token_hex(16)
    proxy = start_proxy(plain, iam_url=iam.url, log_level="debug",
                        cos_map={ibm_bad: front.entry(BAD_API_KEY),
                                 wrong_backend: backend.entry(secret_key=wrong_backend_secret)})
    direct.put_object(Bucket=plain, Key="obj", Body=b"content")
    wrong_secret = "wrong-secret-" + secrets.token_hex(16)
    at = utcnow()
    date = at.strftime("%Y%m%d")
    bodies: List[Tuple[str, ac.Response]] = []
    expected: Dict[str, str] = {}

    # Header auth signed with a wrong secret: the expected signature is the
    # one the right secret gives for the same request at the same time.
    for method, path, body in (("GET", f"/{plain}/obj", b""), ("PUT", f"/{plain}/new", b"new body"),
                               ("GET", f"/{plain}?list-type=2", b""), ("DELETE", f"/{plain}/obj", b"")):
        bad = signed_headers(proxy, method, path, body, secret_key=wrong_secret, at=at)
        right = signed_headers(proxy, method, path, body, at=at)
        expected[f"expected signature of {method} {path}"] = signature_of(right["Authorization"])
        response = raw(proxy, method, path, bad, body or None)
        assert response.status_code == 403 and error_code(response) == "SignatureDoesNotMatch", response.content
        bodies.append((f"{method} {path}", response))
    # Presigned with a wrong secret.
    url = f"{proxy.endpoint_url}/{plain}/obj"
    bad_url, right_url = presign(url, CLIENT_ACCESS_KEY, wrong_secret, at), presign(url, CLIENT_ACCESS_KEY,
                                                                                   CLIENT_SECRET_KEY, at)
    expected["expected presigned signature"] = urllib.parse.parse_qs(
        urllib.parse.urlsplit(right_url).query)["X-Amz-Signature"][0]
    parts = urllib.parse.urlsplit(bad_url)
    response = raw(proxy, "GET", f"{parts.path}?{parts.query}")
    assert error_code(response) == "SignatureDoesNotMatch", response.content
    bodies.append(("presigned", response))
    # aws-chunked: a forged chunk signature and a forged trailer signature;
    # the expected ones are those the correct signer computed.
    for mode, forge_trailer in ((ac.STREAMING_SIGNED, False), (ac.STREAMING_SIGNED_TRAILER, True)):
        upload = ac.build_upload("PUT", f"{proxy.endpoint_url}/{plain}/chunked", secrets.token_bytes(20000), mode)
        if forge_trailer:
            expected[f"expected trailer signature ({mode})"] = upload.trailer_signature or ""
            upload.trailer_signature = ac.flip(upload.trailer_signature or "")
        else:
            expected[f"expected chunk signature ({mode})"] = upload.chunks[1].signature or ""
            upload.chunks[1].signature = ac.flip(upload.chunks[1].signature or "")
        response = send_forged_upload(upload)
        assert error_code(response) == "SignatureDoesNotMatch", (mode, response.status_code, response.content)
        bodies.append((f"aws-chunked {mode}", response))
    assert not object_exists(direct, plain, "chunked")
    # The backend refusing the proxy's signature, and IAM refusing the API key.
    for path in (f"/{wrong_backend}/obj", f"/{ibm_bad}/obj"):
        response = raw(proxy, "GET", path, signed_headers(proxy, "GET", path))
        assert response.status_code == 403, (path, response.status_code, response.content)
        bodies.append((f"backend {path}", response))

    named = {"client secret": CLIENT_SECRET_KEY, "wrong secret": wrong_secret,
             "signing key": signing_key_hex(CLIENT_SECRET_KEY, date),
             "backend secret": BACKEND_SECRET_KEY, "wrong backend secret": wrong_backend_secret,
             "backend signing key": signing_key_hex(BACKEND_SECRET_KEY, date),
             "API key": BAD_API_KEY, **expected}
    problems = {}
    for what, response in bodies:
        text = response.content.decode(errors="replace") + "\n" + "\n".join(
            f"{k}: {v}" for k, v in response.headers.items())
        found = leaks(text, named)
        if found:
            problems[what] = found
    assert not problems, f"error responses leak: {json.dumps(problems, indent=1)}"


def test_backend_signature_errors_give_the_client_nothing_to_replay(
        start_proxy: Callable[..., Any], make_bucket: Callable[..., str], backend: Any, direct: Any) -> None:
    """When the backend refuses the proxy's signature, its
    SignatureDoesNotMatch (AWSAccessKeyId, StringToSign, CanonicalRequest,
    SignatureProvided) is not passed on: the client gets the proxy's own 403
    AccessDenied, with neither the backend's secret nor its signing key, nor
    any of those details, nor a signature the backend would accept (issue 12,
    item 11; more in test_backend_path.py)."""
    name = make_bucket("e-besig")
    direct.put_object(Bucket=name, Key="obj", Body=b"backend content")
    wrong = "wrong-backend-secret-" + secrets.token_hex(8)
    proxy = start_proxy(cos_map={name: backend.entry(secret_key=wrong)})
    response = raw(proxy, "GET", f"/{name}/obj", signed_headers(proxy, "GET", f"/{name}/obj"))
    assert response.status_code == 403, response.content
    fields = parse_s3_error(response.content)
    assert fields["Code"] == "AccessDenied", fields
    assert fields["RequestId"] == response.headers["x-amz-request-id"], fields
    text = response.content.decode(errors="replace")
    at = utcnow()
    named = {"backend secret": BACKEND_SECRET_KEY, "configured backend secret": wrong,
             "backend signing key": signing_key_hex(BACKEND_SECRET_KEY, at.strftime("%Y%m%d")),
             "configured signing key": signing_key_hex(wrong, at.strftime("%Y%m%d"))}
    assert not leaks(text, named), leaks(text, named)
    for detail in ("StringToSign", "CanonicalRequest", "SignatureProvided", "AWSAccessKeyId", BACKEND_ACCESS_KEY,
                   "AWS4-HMAC-SHA256"):
        assert detail not in text, f"{detail!r} reached the client: {text}"
    assert b"backend content" not in response.content
