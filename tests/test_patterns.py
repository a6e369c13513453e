"""Bucket patterns in cos_map: a key ``"team-a-*"`` serves every bucket whose
name starts with ``team-a-``, ``"*"`` every other bucket. A bucket's own
entry wins over a pattern, a longer pattern over a shorter one.

Every test makes its own prefix (``p<hex>``), so that the buckets the shared
versitygw holds for other tests never match its patterns. The patterns use
versitygw's root keys, so buckets created through the proxy are real and
checked with the ``direct`` client.
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest
from botocore.exceptions import ClientError

import awschunked as ac
from helpers import (
    CLIENT_ACCESS_KEY,
    CLIENT_SECRET_KEY,
    OTHER_ACCESS_KEY,
    OTHER_SECRET_KEY,
    assert_client_error,
    assert_s3_error,
    bucket_exists,
    free_port,
    stored_body,
    stored_keys,
)
from object_storage_proxy import ProxyServer, ProxyServerConfig
from object_storage_proxy.cli import main
from object_storage_proxy.config import config_errors
from object_storage_proxy.configfile import ConfigFileError, load_config
from observe import eventually, scrape
from s3wire import amz_now, authorization, sign_raw

S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
DOMAIN = "s3.osp.test"


@pytest.fixture
def prefix() -> str:
    """A bucket-name prefix no other test uses."""
    return f"p{uuid.uuid4().hex[:10]}"


def closed(backend: Any) -> Dict[str, Any]:
    """An entry whose backend port has nothing listening: a request it serves
    gets 503 ServiceUnavailable, which tells which entry served it."""
    return backend.entry(port=free_port())


def signed(proxy: ProxyServer, method: str, path: str, *, host: Optional[str] = None, body: bytes = b"",
           headers: Optional[Dict[str, str]] = None, access_key: str = CLIENT_ACCESS_KEY,
           secret_key: str = CLIENT_SECRET_KEY) -> Any:
    """``method path`` signed (s3wire.sign_raw: S3's canonical URI, each
    segment decoded once and encoded once, as the proxy verifies it) for
    ``host`` (default the proxy's) and sent to the proxy byte for byte: the
    path keeps any percent-encoding it has."""
    host = host or f"127.0.0.1:{proxy.http_port}"
    amz_date = amz_now()
    payload = hashlib.sha256(body).hexdigest()
    request_headers = [("Host", host), ("x-amz-date", amz_date), ("x-amz-content-sha256", payload),
                       *(headers or {}).items()]
    credential, names, signature = sign_raw(method, path, request_headers, payload, amz_date,
                                            access_key=access_key, secret_key=secret_key)
    request_headers.append(("Authorization", authorization(credential, names, signature)))
    return ac.raw_request("127.0.0.1", proxy.http_port, method, path, dict(request_headers), body or None)


def listed(response: Any) -> Tuple[List[str], Optional[str]]:
    assert response.status_code == 200, response.content[:600]
    root = ET.fromstring(response.content)
    names = [b.findtext(f"{S3_NS}Name") or "" for b in root.findall(f"{S3_NS}Buckets/{S3_NS}Bucket")]
    return names, root.findtext(f"{S3_NS}ContinuationToken")


def list_all(proxy: ProxyServer, query: str = "", **options: Any) -> List[str]:
    names, _ = listed(signed(proxy, "GET", "/" + query, **options))
    return names


class Calls:
    """An identity-aware validator that records what it is asked and allows
    all but the (bucket, operation) pairs in ``deny``."""

    def __init__(self, *deny: Tuple[str, str]) -> None:
        self.deny = set(deny)
        self.lock = threading.Lock()
        self.calls: List[Tuple[str, str, str, str]] = []

    def __call__(self, token: str, bucket: str, method: str, key: str, operation: str) -> bool:
        with self.lock:
            self.calls.append((bucket, method, key, operation))
        return (bucket, operation) not in self.deny and (bucket, "*") not in self.deny

    def buckets(self) -> List[str]:
        with self.lock:
            return [c[0] for c in self.calls]


# --------------------------------------------------------------------------
# a pattern entry serves buckets end to end


def test_pattern_serves_create_put_get_list_delete(start_proxy: Callable[..., ProxyServer],
                                                  client_for: Callable[..., Any], backend: Any, direct: Any,
                                                  prefix: str) -> None:
    validator = Calls()
    proxy = start_proxy(cos_map={f"{prefix}-a-*": backend.entry()}, validator=validator)
    client = client_for(proxy)
    name = f"{prefix}-a-data"

    client.create_bucket(Bucket=name)
    assert bucket_exists(direct, name), "CreateBucket reached versitygw"
    body = b"pattern-served " * 1000
    client.put_object(Bucket=name, Key="dir/one two+ü", Body=body)
    assert stored_body(direct, name, "dir/one two+ü") == body
    got = client.get_object(Bucket=name, Key="dir/one two+ü")["Body"].read()
    assert hashlib.sha256(got).digest() == hashlib.sha256(body).digest()
    listing = client.list_objects_v2(Bucket=name, Prefix="dir/")
    assert [o["Key"] for o in listing["Contents"]] == ["dir/one two+ü"]
    client.delete_object(Bucket=name, Key="dir/one two+ü")
    assert stored_keys(direct, name) == []
    client.delete_bucket(Bucket=name)
    assert not bucket_exists(direct, name), "DeleteBucket reached versitygw"

    # The validator saw the real bucket name and the real operations.
    operations = [(b, op) for b, _, _, op in validator.calls]
    assert (name, "CreateBucket") in operations and (name, "DeleteBucket") in operations
    assert set(validator.buckets()) == {name}, validator.calls


def test_create_and_delete_bucket_need_the_validator(start_proxy: Callable[..., ProxyServer],
                                                    client_for: Callable[..., Any], backend: Any, direct: Any,
                                                    prefix: str) -> None:
    denied, kept = f"{prefix}-a-denied", f"{prefix}-a-kept"
    direct.create_bucket(Bucket=kept)
    validator = Calls((denied, "CreateBucket"), (kept, "DeleteBucket"))
    proxy = start_proxy(cos_map={f"{prefix}-a-*": backend.entry()}, validator=validator)
    client = client_for(proxy)

    with pytest.raises(ClientError) as refused:
        client.create_bucket(Bucket=denied)
    assert_client_error(refused, 403, "AccessDenied", client)
    assert not bucket_exists(direct, denied)
    with pytest.raises(ClientError) as refused:
        client.delete_bucket(Bucket=kept)
    assert_client_error(refused, 403, "AccessDenied", client)
    assert bucket_exists(direct, kept)


def test_catch_all_serves_every_other_bucket(start_proxy: Callable[..., ProxyServer],
                                            client_for: Callable[..., Any], backend: Any, direct: Any,
                                            make_bucket: Callable[..., str]) -> None:
    anywhere = make_bucket("anywhere")
    proxy = start_proxy(cos_map={"*": backend.entry()})
    client = client_for(proxy)
    client.put_object(Bucket=anywhere, Key="k", Body=b"through the catch-all")
    assert stored_body(direct, anywhere, "k") == b"through the catch-all"
    # A name no S3 rule allows is still refused before any lookup.
    response = signed(proxy, "GET", "/bad%20name/k")
    assert_s3_error(response, 400, "InvalidBucketName")
    response = signed(proxy, "GET", "/" + "a" * 256 + "/k")
    assert_s3_error(response, 400, "InvalidBucketName")


def test_unmatched_bucket_is_no_such_bucket(start_proxy: Callable[..., ProxyServer],
                                           client_for: Callable[..., Any], backend: Any, direct: Any,
                                           prefix: str) -> None:
    proxy = start_proxy(cos_map={f"{prefix}-a-*": backend.entry()})
    client = client_for(proxy)
    with pytest.raises(ClientError) as missing:
        client.create_bucket(Bucket=f"{prefix}-b-new")
    assert_client_error(missing, 404, "NoSuchBucket", client)
    assert not bucket_exists(direct, f"{prefix}-b-new")
    assert_s3_error(signed(proxy, "GET", "/bad%20name/k"), 400, "InvalidBucketName")


def test_exact_beats_pattern_and_longer_beats_shorter(start_proxy: Callable[..., ProxyServer],
                                                      client_for: Callable[..., Any], backend: Any,
                                                      direct: Any, prefix: str) -> None:
    # Good entries reach versitygw; closed ones answer 503, so the answer
    # says which entry served each name.
    cos_map = {
        f"{prefix}-*": closed(backend),
        f"{prefix}-a-*": backend.entry(),
        f"{prefix}-a-x-*": closed(backend),
        f"{prefix}-a-exact": closed(backend),
        f"{prefix}-a-x-exact": backend.entry(),
    }
    served = [f"{prefix}-a-1", f"{prefix}-a-x1", f"{prefix}-a-x-exact", f"{prefix}-a-exact2"]
    unreachable_names = [f"{prefix}-b-1", f"{prefix}-a-x-1", f"{prefix}-a-exact"]
    for name in served + unreachable_names:
        direct.create_bucket(Bucket=name)
    proxy = start_proxy(cos_map=cos_map)
    client = client_for(proxy)

    for name in served:
        client.put_object(Bucket=name, Key="k", Body=name.encode())
        assert stored_body(direct, name, "k") == name.encode()
    for name in unreachable_names:
        with pytest.raises(ClientError) as unreachable:
            client.put_object(Bucket=name, Key="k", Body=b"x")
        assert_client_error(unreachable, 503, "ServiceUnavailable", client)
        assert stored_keys(direct, name) == []


def test_metrics_label_a_pattern_served_bucket_with_the_pattern(start_proxy: Callable[..., ProxyServer],
                                                                client_for: Callable[..., Any], backend: Any,
                                                                direct: Any, prefix: str) -> None:
    pattern = f"{prefix}-a-*"
    names = [f"{prefix}-a-{i}" for i in range(3)]
    for name in names:
        direct.create_bucket(Bucket=name)
    proxy = start_proxy(cos_map={pattern: backend.entry()})
    client = client_for(proxy)
    for name in names:
        client.put_object(Bucket=name, Key="k", Body=b"x")
    with pytest.raises(ClientError):
        client.get_object(Bucket=f"{prefix}-zz", Key="k")

    def labels() -> List[str]:
        values = scrape(proxy).label_values("osp_requests_total", "bucket")
        assert pattern in values and "_unknown" in values, values
        return values

    values = eventually(labels)
    assert not any(v in values for v in names), values


# --------------------------------------------------------------------------
# a pattern never reaches a bucket outside it


def test_pattern_never_reaches_a_bucket_outside_it(start_proxy: Callable[..., ProxyServer], backend: Any,
                                                  direct: Any, prefix: str) -> None:
    inside, outside, no_dash = f"{prefix}-a-x", f"{prefix}-b-x", f"{prefix}-a"
    for name in (inside, outside, no_dash):
        direct.create_bucket(Bucket=name)
        direct.put_object(Bucket=name, Key="k", Body=name.encode())
    validator = Calls()
    proxy = start_proxy(cos_map={f"{prefix}-a-*": backend.entry()}, validator=validator,
                        virtual_host_domains=[DOMAIN])

    # Path style: the bucket outside, the prefix without its dash, upper
    # case (S3 names are case-sensitive; legacy names may have upper case).
    for path in (f"/{outside}/k", f"/{no_dash}/k", f"/{inside.upper()}/k", f"/{prefix}-A-x/k"):
        assert_s3_error(signed(proxy, "GET", path), 404, "NoSuchBucket")
    # Percent-encoded: decoded once, then matched; the validator and the
    # backend see the decoded name.
    encoded_outside = f"/{prefix}-b%2Dx/k"
    assert_s3_error(signed(proxy, "GET", encoded_outside), 404, "NoSuchBucket")
    response = signed(proxy, "GET", f"/{prefix}-a-%78/k")
    assert response.status_code == 200 and response.content == inside.encode(), response.content[:300]
    for path in (f"/{prefix}-a-x%2F..%2F{prefix}-b-x/k", f"/{prefix}-a-x%2f{prefix}-b-x/k", f"/{prefix}-a-%2578/k"):
        assert signed(proxy, "GET", path).status_code in (400, 404), path
        assert stored_body(direct, outside, "k") == outside.encode()
    # Virtual-host style.
    response = signed(proxy, "GET", "/k", host=f"{outside}.{DOMAIN}:{proxy.http_port}")
    assert_s3_error(response, 404, "NoSuchBucket")
    response = signed(proxy, "GET", "/k", host=f"{inside}.{DOMAIN}:{proxy.http_port}")
    assert response.status_code == 200 and response.content == inside.encode()
    # A copy from outside the pattern into it.
    response = signed(proxy, "PUT", f"/{inside}/copied", headers={"x-amz-copy-source": f"/{outside}/k"})
    assert_s3_error(response, 404, "NoSuchBucket")
    assert "copied" not in stored_keys(direct, inside)

    assert set(validator.buckets()) == {inside}, validator.calls


def test_copy_between_buckets_of_one_pattern(start_proxy: Callable[..., ProxyServer],
                                            client_for: Callable[..., Any], backend: Any, direct: Any,
                                            prefix: str) -> None:
    source, destination = f"{prefix}-a-src", f"{prefix}-a-dst"
    for name in (source, destination):
        direct.create_bucket(Bucket=name)
    validator = Calls()
    proxy = start_proxy(cos_map={f"{prefix}-a-*": backend.entry()}, validator=validator)
    client = client_for(proxy)
    client.put_object(Bucket=source, Key="a b+ü", Body=b"copied across")
    client.copy_object(Bucket=destination, Key="copy", CopySource={"Bucket": source, "Key": "a b+ü"})
    assert stored_body(direct, destination, "copy") == b"copied across"
    assert (source, "GET", "a b+ü", "GetObject") in validator.calls

    # The source's pattern entry decides: on another store, the copy is
    # refused before anything is sent.
    other = f"{prefix}-c-src"
    direct.create_bucket(Bucket=other)
    proxy2 = start_proxy(cos_map={f"{prefix}-a-*": backend.entry(), f"{prefix}-c-*": closed(backend)})
    client2 = client_for(proxy2)
    with pytest.raises(ClientError) as refused:
        client2.copy_object(Bucket=destination, Key="copy2", CopySource={"Bucket": other, "Key": "k"})
    assert_client_error(refused, 400, "InvalidRequest", client2)


# --------------------------------------------------------------------------
# ListBuckets


def test_list_buckets_merges_exact_entries_and_pattern_backends(start_proxy: Callable[..., ProxyServer],
                                                                backend: Any, direct: Any,
                                                                prefix: str) -> None:
    at_backend = [f"{prefix}-a-1", f"{prefix}-a-2", f"{prefix}-a-dup", f"{prefix}-a-denied", f"{prefix}-b-1",
                  f"{prefix}-a-x-1"]
    for name in at_backend:
        direct.create_bucket(Bucket=name)
    cos_map = {
        f"{prefix}-a-*": backend.entry(),
        # The same versitygw as another store (another host name): it lists
        # every bucket too, and only -a-x-1 is its own.
        f"{prefix}-a-x-*": backend.entry(host="localhost"),
        f"{prefix}-a-dup": backend.entry(),  # also at the backend: listed once
        f"{prefix}-exact-only": closed(backend),  # listed, though no backend has it
    }
    validator = Calls((f"{prefix}-a-denied", "*"))
    proxy = start_proxy(cos_map=cos_map, validator=validator)

    names = [n for n in list_all(proxy) if n.startswith(prefix)]
    assert names == [f"{prefix}-a-1", f"{prefix}-a-2", f"{prefix}-a-dup", f"{prefix}-a-x-1", f"{prefix}-exact-only"]
    asked = [c for c in validator.calls if c[0].startswith(prefix)]
    assert (f"{prefix}-a-denied", "GET", "", "ListBuckets") in asked, "the validator is asked per listed bucket"
    assert f"{prefix}-b-1" not in validator.buckets(), "a name no entry serves is never shown to the validator"
    assert all(op == "ListBuckets" for _, _, _, op in asked)


def test_list_buckets_pages_and_prefix_over_the_merge(start_proxy: Callable[..., ProxyServer], backend: Any,
                                                      direct: Any, prefix: str) -> None:
    at_backend = [f"{prefix}-a-{i}" for i in range(5)]
    for name in at_backend:
        direct.create_bucket(Bucket=name)
    cos_map = {f"{prefix}-a-*": backend.entry(), f"{prefix}-a-2": closed(backend), f"{prefix}-a-9": closed(backend)}
    proxy = start_proxy(cos_map=cos_map, validator=lambda token, bucket: not bucket.endswith("-a-3"))
    expected = [f"{prefix}-a-{i}" for i in (0, 1, 2, 4, 9)]

    seen: List[str] = []
    query = f"?prefix={prefix}&max-buckets=2"
    for _ in range(5):
        names, token = listed(signed(proxy, "GET", "/" + query))
        assert len(names) <= 2
        seen += names
        if token is None:
            break
        query = f"?prefix={prefix}&max-buckets=2&continuation-token={token}"
    assert seen == expected
    assert list_all(proxy, f"?prefix={prefix}-a-4") == [f"{prefix}-a-4"]


def test_list_buckets_with_a_catch_all_and_validator(start_proxy: Callable[..., ProxyServer],
                                                    client_for: Callable[..., Any], backend: Any, direct: Any,
                                                    prefix: str) -> None:
    mine, theirs = f"{prefix}-mine", f"{prefix}-theirs"
    for name in (mine, theirs):
        direct.create_bucket(Bucket=name)

    def validator(token: str, bucket: str) -> bool:
        return bucket.startswith(prefix) and (bucket == mine) == (token == CLIENT_ACCESS_KEY)

    proxy = start_proxy(cos_map={"*": backend.entry()}, validator=validator)
    assert [b["Name"] for b in client_for(proxy).list_buckets()["Buckets"]] == [mine]
    other = client_for(proxy, OTHER_ACCESS_KEY, OTHER_SECRET_KEY)
    assert [b["Name"] for b in other.list_buckets()["Buckets"]] == [theirs]


def test_list_buckets_fails_when_a_pattern_backend_cannot_list(start_proxy: Callable[..., ProxyServer],
                                                              backend: Any, prefix: str) -> None:
    proxy = start_proxy(cos_map={f"{prefix}-good": backend.entry(), f"{prefix}-down-*": closed(backend)})
    response = signed(proxy, "GET", "/")
    error = assert_s3_error(response, 502, "BadGateway")
    assert f"{prefix}-down-*" in error.get("Message", ""), error
    # A prefix that no bucket of the pattern can have does not ask its store.
    assert list_all(proxy, f"?prefix={prefix}-good") == [f"{prefix}-good"]
    # A store that answers with an error (wrong credentials) fails it too,
    # and the answer says nothing of what the backend said.
    wrong = backend.entry(secret_key="not-the-backend-secret")
    proxy = start_proxy(cos_map={f"{prefix}-good": backend.entry(), f"{prefix}-wrong-*": wrong})
    response = signed(proxy, "GET", "/")
    assert_s3_error(response, 502, "BadGateway")
    assert b"SignatureDoesNotMatch" not in response.content and b"backendroot" not in response.content


def test_pattern_credentials_from_the_fetcher(start_proxy: Callable[..., ProxyServer],
                                             client_for: Callable[..., Any], backend: Any, direct: Any,
                                             prefix: str) -> None:
    # A pattern entry without credentials takes them from
    # bucket_creds_fetcher: asked with the real bucket name for a request,
    # and with the pattern itself to list the pattern's buckets.
    name = f"{prefix}-a-fetched"
    direct.create_bucket(Bucket=name)
    asked: List[Tuple[str, str]] = []
    lock = threading.Lock()

    def fetcher(token: str, bucket: str) -> Dict[str, str]:
        with lock:
            asked.append((token, bucket))
        return {"access_key": "backendroot", "secret_key": "backend-root-secret-0123456789"}

    proxy = start_proxy(cos_map={f"{prefix}-a-*": backend.entry(creds=False)}, bucket_creds_fetcher=fetcher)
    client = client_for(proxy)
    client.put_object(Bucket=name, Key="k", Body=b"fetched")
    assert stored_body(direct, name, "k") == b"fetched"
    assert name in [b["Name"] for b in client.list_buckets()["Buckets"]]
    with lock:
        assert (CLIENT_ACCESS_KEY, name) in asked and (CLIENT_ACCESS_KEY, f"{prefix}-a-*") in asked, asked


# --------------------------------------------------------------------------
# configuration: Python API, TOML, reload, check-config, refusals


BAD_KEYS = {
    "team-*-a": "a pattern has one '*', at the end",
    "team-a-**": "a pattern has one '*', at the end",
    "*team": "a pattern has one '*', at the end",
    "team a-*": "has a character no bucket name has",
    "team/a-*": "has a character no bucket name has",
    "a" * 255 + "*": "no bucket name",
}


@pytest.mark.parametrize("key", sorted(BAD_KEYS))
def test_python_api_refuses_bad_patterns(backend: Any, key: str) -> None:
    with pytest.raises(ValueError) as refused:
        ProxyServerConfig({key: backend.entry()}, http_port=0)
    assert BAD_KEYS[key] in str(refused.value) and repr(key) in str(refused.value)


def test_every_bad_pattern_is_reported(backend: Any) -> None:
    errors = [str(e) for e in config_errors({**{k: backend.entry() for k in BAD_KEYS}, "ok-*": backend.entry()},
                                            http_port=0)]
    assert len(errors) == len(BAD_KEYS), errors
    for key, why in BAD_KEYS.items():
        assert any(repr(key) in e and why in e for e in errors), (key, errors)
    with pytest.raises(TypeError):
        ProxyServerConfig({"": backend.entry()}, http_port=0)


def test_good_patterns_are_accepted(backend: Any) -> None:
    config = ProxyServerConfig({"*": backend.entry(), "team-a-*": backend.entry(), "Legacy_*": backend.entry(),
                                "team-a-exact": backend.entry()}, http_port=0)
    assert config.entry_for("team-a-exact") == "team-a-exact"
    assert config.entry_for("team-a-x") == "team-a-*"
    assert config.entry_for("team-b") == "*"
    assert config.entry_for("Legacy_x") == "Legacy_*"
    assert config.entry_for("bad name") is None


def pattern_toml(backend: Any, port: int, *keys: str) -> str:
    lines = ["[server]", f"http_port = {port}", 'bind_address = "127.0.0.1"', "",
             "[keystore]", f'{CLIENT_ACCESS_KEY} = "{CLIENT_SECRET_KEY}"', ""]
    for key in keys:
        lines += [f'[buckets."{key}"]', f'host = "{backend.host}"', f"port = {backend.port}", 'scheme = "http"',
                  'addressing_style = "path"', 'region = "us-east-1"', 'access_key = "backendroot"',
                  'secret_key = "backend-root-secret-0123456789"', ""]
    return "\n".join(lines)


def test_toml_patterns_and_check_config_shows_the_serving_entry(tmp_path: Path, backend: Any,
                                                                capsys: Any) -> None:
    path = tmp_path / "osp.toml"
    path.write_text(pattern_toml(backend, 0, "*", "team-a-*", "team-a-exact"))
    config = load_config(str(path))
    assert set(config.cos_map) == {"*", "team-a-*", "team-a-exact"}
    assert main(["check-config", str(path)]) == 0
    assert "OK (1 bucket, 2 bucket patterns, 1 client key" in capsys.readouterr().out

    code = main(["check-config", str(path), "--bucket", "team-a-x", "--bucket", "team-a-exact", "-b", "other"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "bucket 'team-a-x': served by [buckets.\"team-a-*\"] (pattern)" in out, out
    assert "bucket 'team-a-exact': served by [buckets.team-a-exact] (exact name)" in out, out
    assert "bucket 'other': served by [buckets.\"*\"] (pattern)" in out, out
    assert "backend-root-secret" not in out

    path.write_text(pattern_toml(backend, 0, "team-a-*"))
    code = main(["check-config", str(path), "--bucket", "team-b-x", "--bucket", "bad name"])
    out = capsys.readouterr().out
    assert code == 1
    assert "bucket 'team-b-x': served by no entry; requests get NoSuchBucket" in out, out
    assert "bucket 'bad name': not a valid bucket name; requests get InvalidBucketName" in out, out


def test_toml_refuses_bad_patterns_naming_the_table(tmp_path: Path, backend: Any, capsys: Any) -> None:
    path = tmp_path / "osp.toml"
    path.write_text(pattern_toml(backend, 0, "team-*-a", "ok-*", "te am-*"))
    with pytest.raises(ConfigFileError) as refused:
        load_config(str(path))
    errors = refused.value.errors
    assert len(errors) == 2, errors
    assert any(e.startswith('[buckets."team-*-a"] a pattern has one') for e in errors), errors
    assert any(e.startswith('[buckets."te am-*"] the pattern\'s prefix') for e in errors), errors
    assert main(["check-config", str(path)]) == 1
    assert "team-*-a" in capsys.readouterr().err


def test_reload_adds_a_pattern(start_proxy: Callable[..., ProxyServer], client_for: Callable[..., Any],
                               backend: Any, direct: Any, prefix: str, make_bucket: Callable[..., str]) -> None:
    first = make_bucket()
    later = f"{prefix}-a-later"
    direct.create_bucket(Bucket=later)
    proxy = start_proxy(first)
    client = client_for(proxy)
    with pytest.raises(ClientError) as missing:
        client.put_object(Bucket=later, Key="k", Body=b"x")
    assert_client_error(missing, 404, "NoSuchBucket", client)

    old = proxy.config
    proxy.reload(ProxyServerConfig({first: backend.entry(), f"{prefix}-a-*": backend.entry()},
                                   http_port=old.http_port, bind_address=old.bind_address,
                                   admin_port=old.admin_port, hmac_keystore=old.hmac_keystore))
    client.put_object(Bucket=later, Key="k", Body=b"after reload")
    assert stored_body(direct, later, "k") == b"after reload"
    assert later in [b["Name"] for b in client.list_buckets()["Buckets"]]


def test_go_refuses_bad_patterns_in_the_native_config(backend: Any) -> None:
    # The Python package checks first; a host that builds the JSON itself
    # meets the same refusal in libosp, naming the key.
    from object_storage_proxy import _native

    config = ProxyServerConfig({"ok-*": backend.entry()}, http_port=0, bind_address="127.0.0.1")
    document = config.to_native_json()
    for bad_key, why in (("o*k-*", "a pattern has one '*'"), ("o k-*", "has a character no bucket name has")):
        bad = document.replace('"ok-*"', json.dumps(bad_key))
        assert bad != document
        with pytest.raises(Exception) as refused:
            handle = _native.start(bad)
            _native.stop(handle, 1)  # pragma: no cover - only if it wrongly started
        assert f"cos_map[{json.dumps(bad_key)}]" in str(refused.value) and why in str(refused.value)
