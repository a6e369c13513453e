"""ProxyServerConfig: validation, normalization, repr and the native JSON.

Pure Python: nothing here starts a server or calls into libosp.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any, Dict, Type

import pytest

from object_storage_proxy import ProxyServerConfig

HMAC = {"host": "s3.example.com", "port": 443, "access_key": "AKIDEXAMPLE", "secret_key": "TOPSECRET-hmac"}
APIKEY = {"host": "s3.example.com", "port": 443, "apikey": "TOPSECRET-apikey"}


def make(cos_map: Any = None, **kwargs: Any) -> ProxyServerConfig:
    kwargs.setdefault("http_port", 0)
    return ProxyServerConfig({"data": dict(HMAC)} if cos_map is None else cos_map, **kwargs)


def entry(**changes: Any) -> Dict[str, Any]:
    out = dict(HMAC)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def test_positional_order_is_the_original() -> None:
    def fetcher(token: str, bucket: str) -> str:
        return "key"

    def validator(token: str, bucket: str) -> bool:
        return True

    def hmac_fetcher(access_key: str) -> str:
        return "secret"

    # skip_signature_validation=True on the default bind (0.0.0.0) needs
    # allow_unverified_on_network (tests/test_security_unverified.py).
    config = ProxyServerConfig(
        {"data": {"host": "h", "port": 1}}, fetcher, validator, 8080, None, 4, False, {"AK": "SK"}, True, hmac_fetcher,
        allow_unverified_on_network=True,
    )
    assert config.bucket_creds_fetcher is fetcher
    assert config.validator is validator
    assert (config.http_port, config.https_port, config.threads, config.verify) == (8080, None, 4, False)
    assert config.hmac_keystore == {"AK": "SK"}
    assert config.skip_signature_validation is True
    assert config.hmac_fetcher is hmac_fetcher
    assert config.bind_address == "0.0.0.0"


def test_new_arguments_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        ProxyServerConfig({"data": HMAC}, None, None, 80, None, 1, None, None, False, None, "127.0.0.1")  # type: ignore[misc]


def test_entry_is_normalized_with_defaults() -> None:
    config = make(
        {
            "a": {"host": "h", "port": "9000", "accessKey": "AK", "secretKey": "SK", "time-to-live": 5},
            "b": {"host": "h", "port": 1, "api_key": "K", "scheme": "http", "addressing_style": "path", "region": "eu"},
        }
    )
    assert config.cos_map["a"] == {
        "host": "h",
        "port": 9000,
        "access_key": "AK",
        "secret_key": "SK",
        "ttl": 5,
        "region": "us-east-1",
        "scheme": "https",
        "addressing_style": "virtual",
    }
    assert config.cos_map["b"]["api_key"] == "K"
    assert (config.cos_map["b"]["scheme"], config.cos_map["b"]["addressing_style"]) == ("http", "path")
    assert config.cos_map["b"]["ttl"] == 300


def test_cos_map_is_copied() -> None:
    source = {"data": dict(HMAC)}
    config = make(source)
    source["data"]["port"] = "not a port"
    assert config.cos_map["data"]["port"] == 443


@pytest.mark.parametrize(
    "bad, error, message",
    [
        (entry(port=None), ValueError, "cos_map['data']: missing 'port'"),
        (entry(host=None), ValueError, "cos_map['data']: missing 'host'"),
        (entry(port=0), ValueError, "cos_map['data']['port']"),
        (entry(port=65536), ValueError, "cos_map['data']['port']"),
        (entry(port="http"), TypeError, "cos_map['data']['port']"),
        (entry(port=True), TypeError, "cos_map['data']['port']"),
        (entry(port=4.0), TypeError, "cos_map['data']['port']"),
        (entry(host=""), ValueError, "cos_map['data']['host']"),
        (entry(host=5), TypeError, "cos_map['data']['host']"),
        (entry(host="https://s3.example.com"), ValueError, "cos_map['data']['host']"),
        (entry(region=""), ValueError, "cos_map['data']['region']"),
        (entry(ttl=-1), ValueError, "cos_map['data']['ttl']"),
        (entry(ttl="soon"), TypeError, "cos_map['data']['ttl']"),
        (entry(scheme="ftp"), ValueError, "cos_map['data']['scheme']"),
        (entry(addressing_style="dns"), ValueError, "cos_map['data']['addressing_style']"),
        (entry(bogus=1), ValueError, "cos_map['data']: unknown key 'bogus'"),
        (entry(secret_key=None), ValueError, "cos_map['data']: 'access_key' and 'secret_key'"),
        (entry(accessKey="AK2"), ValueError, "cos_map['data']: 'access_key' and 'accessKey' both given"),
        (entry(ttl=1, **{"time-to-live": 2}), ValueError, "both given"),
        (entry(secret_key=""), ValueError, "cos_map['data']['secret_key']"),
        ("not a dict", TypeError, "cos_map['data']: expected dict"),
    ],
)
def test_bad_entry(bad: Any, error: Type[Exception], message: str) -> None:
    with pytest.raises(error) as info:
        make({"data": bad})
    assert message in str(info.value)


@pytest.mark.parametrize(
    "cos_map, error",
    [([("data", HMAC)], TypeError), ({}, ValueError), ({1: HMAC}, TypeError), ({"": HMAC}, TypeError)],
)
def test_bad_cos_map(cos_map: Any, error: Type[Exception]) -> None:
    with pytest.raises(error, match="cos_map"):
        make(cos_map)


def test_bucket_without_credentials_needs_a_fetcher() -> None:
    bare = {"data": {"host": "h", "port": 443}}
    with pytest.raises(ValueError, match=r"cos_map\['data'\]: no credentials"):
        make(bare)
    config = make(bare, bucket_creds_fetcher=lambda token, bucket: None)
    assert "api_key" not in config.cos_map["data"]
    make({"data": dict(APIKEY)})  # an API key alone is credentials


@pytest.mark.parametrize(
    "field, value, error",
    [
        ("http_port", -1, ValueError),
        ("http_port", 65536, ValueError),
        ("http_port", "80", TypeError),
        ("http_port", True, TypeError),
        ("https_port", 1.5, TypeError),
        ("threads", 0, ValueError),
        ("threads", "2", TypeError),
        ("verify", 1, TypeError),
        ("verify", "", ValueError),
        ("hmac_keystore", [("AK", "SK")], TypeError),
        ("hmac_keystore", {"AK": 5}, TypeError),
        ("hmac_keystore", {"AK": ""}, ValueError),
        ("hmac_keystore", {"": "SK"}, ValueError),
        ("skip_signature_validation", 1, TypeError),
        ("validator", "yes", TypeError),
        ("bucket_creds_fetcher", 5, TypeError),
        ("hmac_fetcher", object(), TypeError),
        ("bind_address", "", ValueError),
        ("bind_address", None, TypeError),
        ("tls_cert_path", 5, TypeError),
    ],
)
def test_bad_field_in_constructor_and_on_set(field: str, value: Any, error: Type[Exception]) -> None:
    with pytest.raises(error, match=field):
        make(**{field: value})
    config = make()
    with pytest.raises(error, match=field):
        setattr(config, field, value)


def test_fields_are_settable_and_normalized() -> None:
    config = make()
    config.https_port = 8443
    config.http_port = None
    config.verify = pathlib.Path("/etc/ssl/ca.pem")  # type: ignore[assignment]
    config.cos_map = {"other": {"host": "h", "port": "9000", "apikey": "K"}}
    assert config.verify == "/etc/ssl/ca.pem"
    assert config.cos_map["other"]["port"] == 9000
    assert config.https_port == 8443 and config.http_port is None


def test_unknown_attribute_is_refused() -> None:
    config = make()
    with pytest.raises(AttributeError, match="http_prot"):
        config.http_prot = 80  # __setattr__ makes this type-check; it fails at run time


def test_a_port_is_required() -> None:
    with pytest.raises(ValueError, match="no port configured"):
        ProxyServerConfig({"data": HMAC})
    config = make()
    config.http_port = None  # fields change one at a time; validate() checks the whole
    with pytest.raises(ValueError, match="no port configured"):
        config.validate()


def test_validate_sees_in_place_changes() -> None:
    config = make()
    config.cos_map["data"]["port"] = 0
    with pytest.raises(ValueError, match=r"cos_map\['data'\]\['port'\]"):
        config.validate()


def test_tls_paths_come_together() -> None:
    with pytest.raises(ValueError, match="tls_cert_path and tls_key_path"):
        make(tls_cert_path="/c.pem")
    config = make(tls_cert_path=pathlib.Path("/c.pem"), tls_key_path="/k.pem")
    assert (config.tls_cert_path, config.tls_key_path) == ("/c.pem", "/k.pem")


def test_repr_hides_secrets() -> None:
    def check_token(token: str, bucket: str) -> bool:
        return True

    config = make(
        {"data": dict(HMAC), "ibm": dict(APIKEY)},
        validator=check_token,
        hmac_keystore={"AKCLIENT": "TOPSECRET-keystore", "AK2": "TOPSECRET-2"},
    )
    text = repr(config)
    assert "TOPSECRET" not in text
    assert "AKCLIENT" not in text
    for shown in ("'data'", "'ibm'", "http_port=0", "https_port=None", "<2 keys>", "check_token", "hmac_fetcher=None"):
        assert shown in text


def test_native_json() -> None:
    config = make(
        {"data": {"host": "h", "port": "9000", "apikey": "K", "time-to-live": 7}},
        validator=lambda token, bucket: True,
        hmac_fetcher=lambda access_key: None,
        bind_address="127.0.0.1",
        threads=3,
    )
    document = json.loads(config.to_native_json({"validator": 11, "hmac_fetcher": 12}))
    assert document == {
        "cos_map": {
            "data": {
                "host": "h",
                "port": 9000,
                "api_key": "K",
                "ttl": 7,
                "region": "us-east-1",
                "scheme": "https",
                "addressing_style": "virtual",
            }
        },
        "http_port": 0,
        "https_port": None,
        "bind": "127.0.0.1",
        "tls_cert_path": None,
        "tls_key_path": None,
        "verify": True,
        "hmac_keystore": {},
        "skip_signature_validation": False,
        "threads": 3,
        "virtual_host_domains": [],
        "iam_url": "https://iam.cloud.ibm.com",
        "connect_to": {},
        "callback_timeout": 10.0,
        "cache_size": 16384,
        "client_header_timeout": 30.0,
        "client_idle_timeout": 120.0,
        "backend_timeout": 300.0,
        "log_format": "text",
        "log_level": "info",
        "trusted_forwarded_host": False,
        "metrics": True,
        "allow_unverified_on_network": False,
        "admin_port": None,
        "admin_bind": "127.0.0.1",
        "max_callable_calls": 32,
        "hmac_fetcher_ttl": 300,
        "state_url": "",
        "presign_max_uses": 0,
        "presign_max_expires": 0,
        "presign_limits_when_state_down": "deny",
        "rate_limits_when_state_down": "allow",
        "rate_limit": None,
        "rate_limits": {},
        "rate_limit_fetcher": None,
        "validator_identity": False,
        "bucket_creds_fetcher_identity": False,
        "validator": 11,
        "bucket_creds_fetcher": None,
        "hmac_fetcher": 12,
    }
    with pytest.raises(ValueError, match="no callable id for hmac_fetcher"):
        config.to_native_json({"validator": 11})


@pytest.mark.parametrize("verify, expected", [(None, True), (True, True), (False, False), ("/ca.pem", "/ca.pem")])
def test_native_json_verify(verify: Any, expected: Any) -> None:
    assert json.loads(make(verify=verify).to_native_json())["verify"] == expected


def test_native_json_tls_override() -> None:
    config = make(https_port=0)
    document = json.loads(config.to_native_json(tls_cert_path="/env/c.pem", tls_key_path="/env/k.pem"))
    assert (document["tls_cert_path"], document["tls_key_path"]) == ("/env/c.pem", "/env/k.pem")
