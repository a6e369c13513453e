"""The ``osp`` command (``python -m object_storage_proxy``) and its TOML file:
check-config reports every error at once and never a secret; serve carries
boto3 traffic to versitygw, reloads on SIGHUP (a bad file keeps the running
config), stops on SIGTERM/SIGINT, and calls callables named module:function.
Also the config fields the file exposes (log_format, log_level,
trusted_forwarded_host)."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import pytest
from botocore.exceptions import ClientError

from helpers import (
    BACKEND_SECRET_KEY,
    CLIENT_ACCESS_KEY,
    CLIENT_SECRET_KEY,
    assert_client_error,
    free_port,
    make_client,
    sign_request,
    stored_body,
)
from object_storage_proxy import ProxyServerConfig
from object_storage_proxy.cli import main
from object_storage_proxy.configfile import ConfigFileError, load_config
from observe import scrape
from osp_cli import Osp, child_env, config_text, toml_document, write_module

ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------
# check-config

SECRETS = ["keystore-SECRET-1f2e3d", "bucket-SECRET-4c5b6a", "env-SECRET-778899", "file-SECRET-aabbcc"]

BAD_FILE = """
[server]
http_port = "6190"
threads = 0
log_level = "loud"
bind_adress = "127.0.0.1"
tls_cert_path = "no-such-cert.pem"
tls_key_path = "no-such-key.pem"

[keystore]
good-key = "keystore-SECRET-1f2e3d"
from-env = { env = "OSP_TEST_SECRET_SET" }
unset-env = { env = "OSP_TEST_SECRET_NOT_SET_ANYWHERE" }
from-file = { file = "secret.txt" }
missing-file = { file = "no-such-secret.txt" }

[callables]
validator = "osp_no_such_module_anywhere:validator"
hmac_fetcher = "json:no_such_function"
bucket_creds = "x:y"

[buckets.data]
host = "https://s3.example.com"
port = 0
access_key = "AKID"
secret_key = "bucket-SECRET-4c5b6a"
tll = 5

[buckets."dotted.name"]
host = "127.0.0.1"
port = 9000
secret_key = "bucket-SECRET-4c5b6a"

[buckets.nocreds]
host = "s3.example.com"
port = 443

[bukets.typo]
host = "x"
"""

# Each problem of BAD_FILE, as check-config words it.
BAD_FILE_ERRORS = [
    "unknown table [bukets] (did you mean 'buckets'?)",
    "[server] unknown key 'bind_adress' (did you mean 'bind_address'?)",
    "[server] http_port: expected int, got str",
    "[server] threads: 0 is out of range",
    "[server] log_level: 'loud' is not one of",
    "[server] tls_cert_path: ",
    "no-such-cert.pem: no such file",
    "[server] tls_key_path: ",
    "[keystore] unset-env: environment variable OSP_TEST_SECRET_NOT_SET_ANYWHERE is not set",
    "[keystore] missing-file: cannot read secret file",
    "[callables] validator: cannot import module 'osp_no_such_module_anywhere'",
    "[callables] hmac_fetcher: module 'json' has no attribute 'no_such_function'",
    "[callables] unknown key 'bucket_creds' (did you mean 'bucket_creds_fetcher'?)",
    "[buckets.data] unknown key 'tll' (did you mean 'ttl'?)",
    "[buckets.data] host: give a bare host name",
    "[buckets.data] port: 0 is out of range (1-65535)",
    """[buckets."dotted.name"] 'access_key' and 'secret_key' must be given together""",
    "[buckets.nocreds] no credentials",
]


def write_bad_file(tmp_path: Path) -> Path:
    (tmp_path / "secret.txt").write_text("file-SECRET-aabbcc\n")
    path = tmp_path / "bad.toml"
    path.write_text(BAD_FILE)
    return path


def test_check_config_reports_every_error_and_no_secret(tmp_path: Path) -> None:
    path = write_bad_file(tmp_path)
    env = child_env(OSP_TEST_SECRET_SET="env-SECRET-778899")
    result = subprocess.run(
        [sys.executable, "-m", "object_storage_proxy", "check-config", str(path)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60,
    )
    assert result.returncode == 1, result
    output = result.stdout + result.stderr
    for expected in BAD_FILE_ERRORS:
        assert expected in output, f"{expected!r} missing from:\n{output}"
    errors = [line for line in result.stderr.splitlines() if line.startswith("  ")]
    assert f"{len(errors)} errors" in result.stderr.splitlines()[0], result.stderr
    assert len(errors) >= len(BAD_FILE_ERRORS) - 1
    for secret in SECRETS:
        assert secret not in output, f"a secret was printed:\n{output}"


def test_check_config_good_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "osp.toml"
    path.write_text(
        toml_document(
            {
                "server": {"http_port": 6190, "https_port": 6443, "tls_cert_path": "c.pem", "tls_key_path": "k.pem",
                           "threads": 2, "log_format": "json", "trusted_forwarded_host": True,
                           "metrics": False, "verify": "c.pem"},
                "keystore": {CLIENT_ACCESS_KEY: CLIENT_SECRET_KEY},
                "buckets.one": {"host": "s3.example.com", "port": 443, "apikey": "an-api-key-SECRET"},
                "buckets.two": {"host": "s3.example.com", "port": 443, "accessKey": "AK", "secretKey": "SK-SECRET"},
            }
        )
    )
    (tmp_path / "c.pem").write_text("cert")
    (tmp_path / "k.pem").write_text("key")
    assert main(["check-config", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "OK (2 buckets, 1 client key" in out and not err
    assert "SECRET" not in out + err and CLIENT_SECRET_KEY not in out + err
    config = load_config(str(path))
    assert config.tls_cert_path == str(tmp_path / "c.pem"), "relative paths are relative to the file"
    assert (config.threads, config.log_format, config.trusted_forwarded_host, config.metrics) == (2, "json", True, False)
    assert config.verify == str(tmp_path / "c.pem")
    assert config.cos_map["one"]["api_key"] == "an-api-key-SECRET"


def test_check_config_of_the_example_file(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "object_storage_proxy", "check-config", str(ROOT / "examples" / "osp.toml")],
        capture_output=True, text=True, env=child_env(), cwd=tmp_path, timeout=60,
    )
    assert result.returncode == 0, result
    assert "OK (2 buckets, 2 client keys, callables: validator" in result.stdout


@pytest.mark.parametrize(
    "text, message",
    [
        ("[server\nhttp_port = 1\n", "is not valid TOML"),
        ("[server]\nhttp_port = 6190\n", "[buckets] no bucket"),
        ("[buckets.b]\nhost = 'h'\nport = 1\naccess_key = 'a'\nsecret_key = 's'\n", "[server] no port configured"),
        ("server = 5\n[buckets.b]\nhost = 'h'\nport = 1\n", "server must be a table"),
    ],
    ids=["syntax", "no-bucket", "no-port", "not-a-table"],
)
def test_check_config_file_level_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str) -> None:
    path = tmp_path / "osp.toml"
    path.write_text(text)
    assert main(["check-config", str(path)]) == 1
    assert message in capsys.readouterr().err


def test_check_config_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(tmp_path / "absent.toml")]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_secret_references_and_keystore_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OSP_TEST_BACKEND_SECRET", "from-the-environment")
    (tmp_path / "apikey").write_text("api-key-from-a-file\n")
    (tmp_path / "keys.toml").write_text('file-key = "file-secret"\nenv-key = { env = "OSP_TEST_BACKEND_SECRET" }\n')
    path = tmp_path / "osp.toml"
    path.write_text(
        toml_document(
            {
                "server": {"http_port": 0, "keystore_file": "keys.toml"},
                "keystore": {"inline-key": "inline-secret"},
                "buckets.hmac": {"host": "h", "port": 1, "access_key": "AK",
                                 "secret_key": {"env": "OSP_TEST_BACKEND_SECRET"}},
                "buckets.ibm": {"host": "h", "port": 1, "apikey": {"file": "apikey"}},
            }
        )
    )
    config = load_config(str(path))
    assert config.hmac_keystore == {"inline-key": "inline-secret", "file-key": "file-secret",
                                    "env-key": "from-the-environment"}
    assert config.cos_map["hmac"]["secret_key"] == "from-the-environment"
    assert config.cos_map["ibm"]["api_key"] == "api-key-from-a-file", "one trailing newline is dropped"

    # A key in both places, and a reference of the wrong shape.
    (tmp_path / "keys.toml").write_text('inline-key = "again"\n')
    path.write_text(path.read_text().replace('{ "file" = "apikey" }', '{ "file" = "apikey", "env" = "X" }'))
    with pytest.raises(ConfigFileError) as problems:
        load_config(str(path))
    text = str(problems.value)
    assert "access key 'inline-key' is given twice" in text
    assert "[buckets.ibm] apikey: a secret reference is" in text
    assert "inline-secret" not in text and "again" not in text


def test_callables_from_python_path(tmp_path: Path) -> None:
    hooks = tmp_path / "hooks"
    name = write_module(
        hooks, "osp_hooks",
        "class Policies:\n"
        "    @staticmethod\n"
        "    def validator(token, bucket, operation):\n"
        "        return operation.startswith('Get')\n"
        "def fetcher(token, bucket):\n"
        "    return None\n"
        "NOT_CALLABLE = 5\n"
    )
    path = tmp_path / "osp.toml"
    path.write_text(
        toml_document(
            {
                "server": {"http_port": 0},
                "callables": {"python_path": ["hooks"], "validator": f"{name}:Policies.validator",
                              "bucket_creds_fetcher": f"{name}:fetcher"},
                "buckets.b": {"host": "h", "port": 1},
            }
        )
    )
    config = load_config(str(path))
    assert config.validator is sys.modules[name].Policies.validator
    assert config.bucket_creds_fetcher is sys.modules[name].fetcher
    assert json.loads(config.to_native_json({"validator": 1, "bucket_creds_fetcher": 2}))["validator_identity"]

    path.write_text(path.read_text().replace(f"{name}:fetcher", f"{name}:NOT_CALLABLE"))
    with pytest.raises(ConfigFileError, match="is a int, not a callable"):
        load_config(str(path))


# --------------------------------------------------------------------------
# serve


def test_serve_reloads_on_sighup_and_stops_on_sigterm(
    tmp_path: Path, backend: Any, direct: Any, make_bucket: Callable[..., str], osp_processes: List[Osp]
) -> None:
    first, second = make_bucket(), make_bucket()
    port = free_port()
    path = tmp_path / "osp.toml"
    path.write_text(config_text(backend, [first], port=port))
    osp = Osp(["serve", "--config", str(path)], child_env(), tmp_path)
    osp_processes.append(osp)
    osp.wait_for("serving")
    client = make_client(f"http://127.0.0.1:{port}", CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY)
    client.put_object(Bucket=first, Key="k", Body=b"first")
    assert stored_body(direct, first, "k") == b"first"
    with pytest.raises(ClientError) as missing:
        client.put_object(Bucket=second, Key="k", Body=b"second")
    assert_client_error(missing, 404, "NoSuchBucket", client)

    # SIGHUP: the file now has a second bucket.
    path.write_text(config_text(backend, [first, second], port=port))
    osp.send(signal.SIGHUP, "reloaded")
    client.put_object(Bucket=second, Key="k", Body=b"second")
    assert stored_body(direct, second, "k") == b"second"
    assert client.get_object(Bucket=first, Key="k")["Body"].read() == b"first"

    # A broken file is logged and the running config kept.
    good = path.read_text()
    path.write_text(good + '\n[buckets.broken]\nport = "many"\n')
    line = osp.send(signal.SIGHUP, "reload failed")
    assert "keeping the running configuration" in line
    assert "[buckets.broken]" in osp.output
    assert client.get_object(Bucket=second, Key="k")["Body"].read() == b"second"

    # So is one that moves the listener.
    path.write_text(config_text(backend, [first], port=free_port()))
    osp.send(signal.SIGHUP, "reload failed")
    assert client.get_object(Bucket=second, Key="k")["Body"].read() == b"second"

    assert osp.finish(signal.SIGTERM) == 0, osp.output
    assert "stopped" in osp.output
    for secret in (BACKEND_SECRET_KEY, CLIENT_SECRET_KEY):
        assert secret not in osp.output


def test_serve_calls_a_module_function_callable(
    tmp_path: Path, backend: Any, direct: Any, make_bucket: Callable[..., str], osp_processes: List[Osp]
) -> None:
    allowed, denied = make_bucket(), make_bucket()
    calls = tmp_path / "calls.txt"
    module = write_module(
        tmp_path / "modules", "osp_policies",
        "import os\n"
        "def validator(token, bucket):\n"
        "    with open(os.environ['OSP_TEST_CALLS'], 'a') as f:\n"
        "        f.write(f'{token} {bucket}\\n')\n"
        "    return bucket == os.environ['OSP_TEST_ALLOWED']\n"
    )
    port = free_port()
    path = tmp_path / "osp.toml"
    path.write_text(config_text(backend, [allowed, denied], port=port, callables={"validator": f"{module}:validator"}))
    env = child_env(tmp_path / "modules", OSP_TEST_CALLS=str(calls), OSP_TEST_ALLOWED=allowed)
    osp = Osp(["serve", "--config", str(path)], env, tmp_path)
    osp_processes.append(osp)
    osp.wait_for("serving")
    client = make_client(f"http://127.0.0.1:{port}", CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY)
    client.put_object(Bucket=allowed, Key="k", Body=b"allowed")
    assert stored_body(direct, allowed, "k") == b"allowed"
    with pytest.raises(ClientError) as refused:
        client.put_object(Bucket=denied, Key="k", Body=b"denied")
    assert_client_error(refused, 403, "AccessDenied", client)
    assert set(calls.read_text().splitlines()) == {f"{CLIENT_ACCESS_KEY} {allowed}", f"{CLIENT_ACCESS_KEY} {denied}"}

    # SIGHUP with the same file: the same function, still in charge.
    osp.send(signal.SIGHUP, "reloaded")
    with pytest.raises(ClientError):
        client.put_object(Bucket=denied, Key="k2", Body=b"denied")
    assert osp.finish(signal.SIGINT) == 0, osp.output


def test_serve_refuses_a_bad_file(tmp_path: Path) -> None:
    path = write_bad_file(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "object_storage_proxy", "serve", "--config", str(path)],
        capture_output=True, text=True, env=child_env(OSP_TEST_SECRET_SET="env-SECRET-778899"),
        cwd=tmp_path, timeout=60,
    )
    assert result.returncode == 1
    assert "not starting" in result.stderr
    assert "[buckets.data] port: 0 is out of range" in result.stderr
    for secret in SECRETS:
        assert secret not in result.stdout + result.stderr


def test_serve_json_logs(tmp_path: Path, backend: Any, bucket: str, osp_processes: List[Osp]) -> None:
    port = free_port()
    path = tmp_path / "osp.toml"
    path.write_text(config_text(backend, [bucket], port=port, log_format="json"))
    osp = Osp(["serve", "--config", str(path)], child_env(), tmp_path)
    osp_processes.append(osp)
    record = json.loads(osp.wait_for("serving"))
    assert record["level"] == "INFO" and record["http_port"] == port and "time" in record
    assert osp.finish() == 0


def test_serve_access_lines_through_a_pipe_arrive_whole(tmp_path: Path, backend: Any, bucket: str,
                                                       osp_processes: List[Osp]) -> None:
    """The output of osp serve is a pipe here, as under systemd, docker or Kubernetes, so its lines
    go by raw non-blocking writes (package nowait): those of many concurrent requests all arrive,
    whole, one per request, with the Python side's lines in the same pipe."""
    port = free_port()
    path = tmp_path / "osp.toml"
    path.write_text(config_text(backend, [bucket], port=port, log_format="json", log_level="info"))
    osp = Osp(["serve", "--config", str(path)], child_env(), tmp_path)
    osp_processes.append(osp)
    osp.wait_for("serving")
    client = make_client(f"http://127.0.0.1:{port}", CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY)
    keys = [f"pipe/{i}" for i in range(300)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda key: client.put_object(Bucket=bucket, Key=key, Body=b"z" * 1024), keys))
    assert osp.finish() == 0  # stopping writes the lines still waiting
    records = [json.loads(line) for line in osp.lines if line.startswith("{")]  # a cut line would not parse
    puts = [r for r in records if r.get("msg") == "request" and r.get("operation") == "PutObject"]
    assert len(puts) == len(keys), osp.output[-2000:]
    assert all(r["status"] == 200 and r["bytes_in"] == 1024 for r in puts)
    assert len({r["request_id"] for r in puts}) == len(keys)


@pytest.mark.parametrize("gogc, percent", [(None, 400), ("", 400), ("150", 150)])
def test_collector_pace_and_gogc(tmp_path: Path, backend: Any, direct: Any, bucket: str, osp_processes: List[Osp],
                                 gogc: Optional[str], percent: int) -> None:
    """While little of its heap is live the proxy lets it reach 16 MiB before Go's collector
    runs: GOGC 400 over Go's 4 MiB floor, as /metrics shows an operator; GOGC in the
    environment replaces that, unless it is empty, which Go's runtime reads as its default."""
    port, admin_port = free_port(), free_port()
    path = tmp_path / "osp.toml"
    path.write_text(config_text(backend, [bucket], port=port, admin_port=admin_port))
    env = child_env()
    env.pop("GOGC", None)
    if gogc is not None:
        env["GOGC"] = gogc
    osp = Osp(["serve", "--config", str(path)], env, tmp_path)
    osp_processes.append(osp)
    osp.wait_for("serving")
    client = make_client(f"http://127.0.0.1:{port}", CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY)
    for i in range(20):
        client.put_object(Bucket=bucket, Key=f"pace/{i}", Body=b"x" * 4096)
        assert client.get_object(Bucket=bucket, Key=f"pace/{i}")["Body"].read() == b"x" * 4096
    assert stored_body(direct, bucket, "pace/19") == b"x" * 4096
    assert scrape(f"http://127.0.0.1:{admin_port}").value("go_gc_gogc_percent") == percent
    assert osp.finish() == 0


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in ([], ["serve"], ["frobnicate"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
    capsys.readouterr()


def test_osp_console_script() -> None:
    """``pip install`` puts an ``osp`` script beside the interpreter."""
    script = Path(sys.executable).parent / "osp"
    assert script.is_file(), f"{script} is missing: is the package installed (make venv)?"
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith("osp "), result


# --------------------------------------------------------------------------
# config fields the file exposes


def _config(**kwargs: Any) -> ProxyServerConfig:
    return ProxyServerConfig({"b": {"host": "h", "port": 1, "access_key": "a", "secret_key": "s"}}, http_port=0, **kwargs)


def test_log_settings_default_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OSP_LOG_FORMAT", raising=False)
    monkeypatch.delenv("OSP_LOG_LEVEL", raising=False)
    config = _config()
    assert (config.log_format, config.log_level, config.trusted_forwarded_host) == ("text", "info", False)
    monkeypatch.setenv("OSP_LOG_FORMAT", "JSON")
    monkeypatch.setenv("OSP_LOG_LEVEL", "warning")
    config = _config()
    assert (config.log_format, config.log_level) == ("json", "warn")
    assert (_config(log_format="text", log_level="debug").log_format, _config(log_level="error").log_level) == ("text", "error")
    document = json.loads(_config(trusted_forwarded_host=True).to_native_json())
    assert (document["log_format"], document["log_level"], document["trusted_forwarded_host"]) == ("json", "warn", True)
    monkeypatch.setenv("OSP_LOG_LEVEL", "chatty")
    with pytest.raises(ValueError, match=r"log_level \(from \$OSP_LOG_LEVEL\)"):
        _config()


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"log_format": "xml"}, ValueError),
        ({"log_format": 1}, TypeError),
        ({"log_level": "trace"}, ValueError),
        ({"trusted_forwarded_host": "yes"}, TypeError),
    ],
)
def test_log_settings_are_checked(kwargs: Dict[str, Any], error: type) -> None:
    with pytest.raises(error, match=next(iter(kwargs))):
        _config(**kwargs)


def test_sighup_during_a_running_upload(
    tmp_path: Path, backend: Any, direct: Any, make_bucket: Callable[..., str], osp_processes: List[Osp]
) -> None:
    """An upload whose body is still arriving when `osp serve` reloads on
    SIGHUP completes with every byte stored."""
    first, second = make_bucket(), make_bucket()
    port = free_port()
    path = tmp_path / "osp.toml"
    path.write_text(config_text(backend, [first], port=port))
    osp = Osp(["serve", "--config", str(path)], child_env(), tmp_path)
    osp_processes.append(osp)
    osp.wait_for("serving")

    body = os.urandom(8 * 1024 * 1024)
    url = f"http://127.0.0.1:{port}/{first}/during-sighup"
    headers = sign_request("PUT", url, body=body)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest("PUT", f"/{first}/during-sighup", skip_host=True, skip_accept_encoding=True)
        for name, value in {**headers, "Host": f"127.0.0.1:{port}", "Content-Length": str(len(body))}.items():
            conn.putheader(name, value)
        conn.endheaders()
        half = len(body) // 2
        conn.send(body[:half])
        path.write_text(config_text(backend, [first, second], port=port))
        osp.send(signal.SIGHUP, "reloaded")
        conn.send(body[half:])
        response = conn.getresponse()
        status, payload = response.status, response.read()
    finally:
        conn.close()
    assert status == 200, payload[:300]
    assert hashlib.sha256(stored_body(direct, first, "during-sighup")).digest() == hashlib.sha256(body).digest()
    assert osp.finish(signal.SIGTERM) == 0, osp.output
