"""Security property 1 (see security_requests.py for the others):
``skip_signature_validation=True`` warns loudly and is refused on a
non-loopback bind unless ``allow_unverified_on_network=True``.

Every listener here binds 127.0.0.1, except those that bind 0.0.0.0: they
run in a subprocess inside a fresh network namespace (``unshare --net``),
whose only interface is its own loopback.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from typing import Any, Callable, Dict, Optional, Tuple

import pytest
from botocore.exceptions import ClientError

from helpers import BACKEND_ACCESS_KEY, BACKEND_SECRET_KEY, CLIENT_ACCESS_KEY, assert_client_error, stored_body
from object_storage_proxy import ProxyServerConfig
from object_storage_proxy.configfile import check_config
from observe import Stderr, log_records

UNVERIFIED_WARNING = "client signatures are NOT verified"
NETWORK_WARNING = "client signatures are NOT verified on a network address"


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
