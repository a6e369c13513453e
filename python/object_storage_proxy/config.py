"""ProxyServerConfig: the proxy's configuration, checked as it is set.

Every field is validated when assigned (TypeError for a wrong type, ValueError
for a wrong value, the message naming the field). Checks that span fields (a
port must be configured; a bucket without credentials needs a
bucket_creds_fetcher) run in ``validate()``: at the end of ``__init__`` and
again when a server starts, so fields can be changed one at a time.
"""

from __future__ import annotations

import difflib
import inspect
import ipaddress
import json
import os
import re
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from .callables import identity_args

# Public callable types (the original project's signatures).
Validator = Callable[[str, str], bool]
"""validator(token, bucket) -> bool: may this access key use this bucket?"""
BucketCredsFetcher = Callable[[str, str], Union[str, Mapping[str, str], None]]
"""bucket_creds_fetcher(token, bucket) -> API key, JSON HMAC pair, dict or None."""
HmacFetcher = Callable[[str], Optional[str]]
"""hmac_fetcher(access_key) -> secret key or None."""

PathLike = Union[str, "os.PathLike[str]"]

# cos_map entry keys: canonical name -> accepted spellings.
_ENTRY_ALIASES: Dict[str, Tuple[str, ...]] = {
    "host": ("host",),
    "port": ("port",),
    "region": ("region",),
    "api_key": ("api_key", "apikey"),
    "access_key": ("access_key", "accessKey"),
    "secret_key": ("secret_key", "secretKey"),
    "ttl": ("ttl", "time-to-live"),
    "scheme": ("scheme",),
    "addressing_style": ("addressing_style",),
    "upload_framing": ("upload_framing",),
}
_ENTRY_SPELLINGS = {alias: key for key, aliases in _ENTRY_ALIASES.items() for alias in aliases}
_ENTRY_DEFAULTS: Dict[str, Any] = {
    "region": "us-east-1",
    "ttl": 300,
    "scheme": "https",
    "addressing_style": "virtual",
}
_CALLABLE_FIELDS = ("validator", "bucket_creds_fetcher", "hmac_fetcher")
DEFAULT_IAM_URL = "https://iam.cloud.ibm.com"


def _int(field: str, value: Any, low: int, high: Optional[int] = None, *, numeric_str: bool = False) -> int:
    """An int in [low, high]. bool is refused although it is an int subclass:
    ``port=True`` is always a mistake."""
    if numeric_str and isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{field}: expected int, got {type(value).__name__}")
    if value < low or (high is not None and value > high):
        bounds = f"{low}-{high}" if high is not None else f">= {low}"
        raise ValueError(f"{field}: {value} is out of range ({bounds})")
    return value


def _text(field: str, value: Any) -> str:
    """A non-empty str."""
    if not isinstance(value, str):
        raise TypeError(f"{field}: expected str, got {type(value).__name__}")
    if not value:
        raise ValueError(f"{field}: must not be empty")
    return value


def _path(field: str, value: Any) -> Optional[str]:
    if value is None:
        return None
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    return _text(field, value)


# A cos_map key is a bucket name or a pattern: a prefix and one "*" at the
# end ("team-a-*"), or "*" for every other bucket. The exact name wins, then
# the longest pattern; matching is case-sensitive. The same rules are in
# go/internal/config/patterns.go.
WILDCARD = "*"
MAX_BUCKET_NAME_LENGTH = 255
_BUCKET_NAME_CHARS = re.compile(r"[A-Za-z0-9._-]*")


def valid_bucket_name(name: str) -> bool:
    """Whether S3's current or legacy rules allow this bucket name (the
    proxy refuses any other before looking it up)."""
    return (
        0 < len(name) <= MAX_BUCKET_NAME_LENGTH
        and name not in (".", "..")
        and _BUCKET_NAME_CHARS.fullmatch(name) is not None
    )


def is_pattern(key: str) -> bool:
    """Whether a cos_map key is a pattern rather than a bucket name."""
    return WILDCARD in key


def _check_bucket_key(key: str) -> Optional[ValueError]:
    """The problem of a pattern key that is a typo, or None."""
    if not is_pattern(key):
        return None
    where = f"cos_map[{key!r}]"
    prefix = key[: -len(WILDCARD)]
    if not key.endswith(WILDCARD) or WILDCARD in prefix:
        return ValueError(f"{where}: a pattern has one '*', at the end (like 'team-a-*' or '*')")
    if len(prefix) >= MAX_BUCKET_NAME_LENGTH:
        return ValueError(
            f"{where}: the pattern's prefix is {len(prefix)} characters long: "
            f"no bucket name (at most {MAX_BUCKET_NAME_LENGTH}) could follow it"
        )
    if _BUCKET_NAME_CHARS.fullmatch(prefix) is None:
        return ValueError(
            f"{where}: the pattern's prefix {prefix!r} has a character no bucket name has "
            "(letters, digits, '.', '-' and '_' only)"
        )
    return None


def serving_entry(cos_map: Mapping[str, Any], bucket: str) -> Optional[str]:
    """The cos_map key that serves ``bucket``: its own name, else the
    longest pattern it starts with; None if no entry serves it."""
    if bucket in cos_map and not is_pattern(bucket):
        return bucket
    best: Optional[str] = None
    for key in cos_map:
        if is_pattern(key) and _check_bucket_key(key) is None and bucket.startswith(key[: -len(WILDCARD)]):
            if best is None or len(key) > len(best) or (len(key) == len(best) and key < best):
                best = key
    return best


def _check_cos_entry(bucket: str, entry: Any) -> Tuple[Dict[str, Any], List[Exception]]:
    """One cos_map entry with canonical keys, types checked and defaults
    filled, and every problem found in it (``_cos_entry`` raises the first)."""
    where = f"cos_map[{bucket!r}]"
    if not isinstance(entry, Mapping):
        return {}, [TypeError(f"{where}: expected dict, got {type(entry).__name__}")]
    errors: List[Exception] = []
    out: Dict[str, Any] = {}
    for spelling, value in entry.items():
        key = _ENTRY_SPELLINGS.get(spelling) if isinstance(spelling, str) else None
        if key is None:
            hint = difflib.get_close_matches(spelling, list(_ENTRY_SPELLINGS), n=1) if isinstance(spelling, str) else []
            suffix = f" (did you mean {hint[0]!r}?)" if hint else ""
            errors.append(ValueError(f"{where}: unknown key {spelling!r}{suffix}"))
            continue
        if key in out:
            errors.append(ValueError(f"{where}: {' and '.join(map(repr, _ENTRY_ALIASES[key]))} both given"))
            continue
        out[key] = value
    for key in ("host", "port"):
        if key not in out:
            errors.append(ValueError(f"{where}: missing {key!r}"))
    for key, default in _ENTRY_DEFAULTS.items():
        out.setdefault(key, default)

    def check(key: str, fn: Callable[[Any], Any]) -> bool:
        try:
            out[key] = fn(out[key])
        except (TypeError, ValueError) as exc:
            errors.append(exc)
            return False
        return True

    for key in ("host", "region", "api_key", "access_key", "secret_key"):
        if key in out:
            ok = check(key, lambda v, key=key: _text(f"{where}[{key!r}]", v))
            if key == "host" and ok and ("://" in out["host"] or "/" in out["host"]):
                errors.append(ValueError(f"{where}['host']: give a bare host name; set 'scheme' for http/https"))
    if "port" in out:
        check("port", lambda v: _int(f"{where}['port']", v, 1, 65535, numeric_str=True))
    check("ttl", lambda v: _int(f"{where}['ttl']", v, 0, numeric_str=True))
    for key, allowed in (("scheme", ("https", "http")), ("addressing_style", ("virtual", "path")),
                         ("upload_framing", ("aws-chunked", "plain"))):
        # upload_framing has no default here: the server's is aws-chunked.
        if key not in out:
            continue
        if check(key, lambda v, key=key: _text(f"{where}[{key!r}]", v)) and out[key] not in allowed:
            errors.append(ValueError(f"{where}[{key!r}]: must be one of {', '.join(map(repr, allowed))}"))
    if ("access_key" in out) != ("secret_key" in out):
        errors.append(ValueError(f"{where}: 'access_key' and 'secret_key' must be given together"))
    return out, errors


def _cos_entry(bucket: str, entry: Any) -> Dict[str, Any]:
    """One cos_map entry with canonical keys, types checked, defaults filled."""
    out, errors = _check_cos_entry(bucket, entry)
    if errors:
        raise errors[0]
    return out


def _check_cos_map(value: Any) -> Tuple[Dict[str, Dict[str, Any]], List[Exception]]:
    """The normalized cos_map and every problem of every entry."""
    if not isinstance(value, Mapping):
        return {}, [TypeError(f"cos_map: expected dict, got {type(value).__name__}")]
    if not value:
        return {}, [ValueError("cos_map: must name at least one bucket")]
    out: Dict[str, Dict[str, Any]] = {}
    errors: List[Exception] = []
    for bucket, entry in value.items():
        if not isinstance(bucket, str) or not bucket:
            errors.append(TypeError(f"cos_map: bucket names must be non-empty str, got {bucket!r}"))
            continue
        key_problem = _check_bucket_key(bucket)
        if key_problem is not None:
            errors.append(key_problem)
        out[bucket], problems = _check_cos_entry(bucket, entry)
        errors += problems
    return out, errors


def _cos_map(value: Any) -> Dict[str, Dict[str, Any]]:
    out, errors = _check_cos_map(value)
    if errors:
        raise errors[0]
    return out


_KEYSTORE_ENTRY_KEYS = ("access_key", "secret_key")


def _keystore_list(value: Sequence[Any]) -> Dict[str, str]:
    """The original project's form: a list of {"access_key", "secret_key"}
    dicts. Messages name the entry by index and its access key, never a
    secret."""
    out: Dict[str, str] = {}
    for i, entry in enumerate(value):
        where = f"hmac_keystore[{i}]"
        if not isinstance(entry, Mapping):
            raise TypeError(f"{where}: expected a dict with 'access_key' and 'secret_key', got {type(entry).__name__}")
        unknown = [k for k in entry if k not in _KEYSTORE_ENTRY_KEYS]
        if unknown:
            raise ValueError(f"{where}: unknown key {unknown[0]!r} (an entry has 'access_key' and 'secret_key')")
        missing = [k for k in _KEYSTORE_ENTRY_KEYS if k not in entry]
        if missing:
            raise ValueError(f"{where}: missing {missing[0]!r}")
        access_key, secret = entry["access_key"], entry["secret_key"]
        if not isinstance(access_key, str) or not isinstance(secret, str):
            raise TypeError(f"{where}: 'access_key' and 'secret_key' must be str")
        if not access_key or not secret:
            raise ValueError(f"{where}: empty access key or secret (key {access_key!r})")
        if access_key in out:
            raise ValueError(f"{where}: access key {access_key!r} is given twice")
        out[access_key] = secret
    return out


def _keystore(value: Any) -> Optional[Dict[str, str]]:
    """access key -> secret, from a dict or the original's list of
    {"access_key", "secret_key"} dicts."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return _keystore_list(value)
    if not isinstance(value, Mapping):
        raise TypeError(
            f"hmac_keystore: expected a dict of access key -> secret or a list of "
            f"{{'access_key': ..., 'secret_key': ...}} dicts, got {type(value).__name__}"
        )
    out: Dict[str, str] = {}
    for access_key, secret in value.items():
        # Name the access key (an identifier, like a user name), never the secret.
        if not isinstance(access_key, str) or not isinstance(secret, str):
            raise TypeError("hmac_keystore: keys and values must be str")
        if not access_key or not secret:
            raise ValueError(f"hmac_keystore: empty access key or secret (key {access_key!r})")
        out[access_key] = secret
    return out


def _port(field: str, value: Any) -> Optional[int]:
    return None if value is None else _int(field, value, 0, 65535)


def _callable(field: str, value: Any) -> Any:
    if value is not None and not callable(value):
        raise TypeError(f"{field}: expected a callable or None, got {type(value).__name__}")
    return value


def _verify(value: Any) -> Union[None, bool, str]:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (str, os.PathLike)):
        return _path("verify", value)
    raise TypeError(f"verify: expected None, bool or a CA bundle path, got {type(value).__name__}")


def _domains(value: Any) -> List[str]:
    """Domains of the proxy for virtual-hosted requests (bucket.<domain>)."""
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise TypeError(f"virtual_host_domains: expected a list of domain names, got {type(value).__name__}")
    domains = []
    for i, domain in enumerate(value):
        if not isinstance(domain, str):
            raise TypeError(f"virtual_host_domains[{i}]: expected str, got {type(domain).__name__}")
        domain = domain.strip(".").lower()
        if not domain or any(c in domain for c in "/: "):
            raise ValueError(f"virtual_host_domains[{i}]: {value[i]!r} is not a domain name")
        domains.append(domain)
    return domains


def _connect_to(value: Any) -> Dict[str, str]:
    """Backend "host:port" -> "host:port" actually dialled (curl's --connect-to)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"connect_to: expected a dict of 'host:port' -> 'host:port', got {type(value).__name__}")
    out: Dict[str, str] = {}
    for src, dst in value.items():
        for part in (src, dst):
            if not isinstance(part, str) or not re.fullmatch(r"\[?[^\s/\[\]]+\]?:\d{1,5}", part):
                raise ValueError(f"connect_to: {part!r} is not 'host:port'")
        out[src] = dst
    return out


def _iam_url(value: Any) -> str:
    """IBM Cloud IAM's base URL: the argument, else $OSP_IAM_URL, else IBM's."""
    if value is None:
        value = os.environ.get("OSP_IAM_URL") or DEFAULT_IAM_URL
    if not isinstance(value, str):
        raise TypeError(f"iam_url: expected str, got {type(value).__name__}")
    if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", value):
        raise ValueError(f"iam_url: {value!r} is not an http(s) URL")
    return value.rstrip("/")


def _seconds(field: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{field}: expected a number of seconds, got {type(value).__name__}")
    if not 0 < value <= 3600:
        raise ValueError(f"{field}: {value} is out of range (0-3600 seconds)")
    return float(value)


def _bool(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{field}: expected bool, got {type(value).__name__}")
    return value


# Bounds of the control-plane settings (libosp checks them too).
MAX_CALLABLE_CALLS = 4096  # each running call holds an OS thread; Go aborts at 10,000
MAX_HMAC_FETCHER_TTL = 86400

LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("debug", "info", "warn", "error")
_LOG_LEVEL_ALIASES = {"warning": "warn"}


def _choice(field: str, env: str, default: str, allowed: Tuple[str, ...], value: Any) -> str:
    """One of ``allowed`` (case-insensitive): the argument, else $``env``,
    else ``default``."""
    source = field
    if value is None:
        value = os.environ.get(env) or default
        source = f"{field} (from ${env})"
    if not isinstance(value, str):
        raise TypeError(f"{source}: expected str, got {type(value).__name__}")
    normalized = value.strip().lower()
    normalized = _LOG_LEVEL_ALIASES.get(normalized, normalized) if allowed is LOG_LEVELS else normalized
    if normalized not in allowed:
        raise ValueError(f"{source}: {value!r} is not one of {', '.join(map(repr, allowed))}")
    return normalized


# Field -> check-and-normalize function, applied on every assignment.
_FIELDS: Dict[str, Callable[[Any], Any]] = {
    "cos_map": _cos_map,
    "bucket_creds_fetcher": lambda v: _callable("bucket_creds_fetcher", v),
    "validator": lambda v: _callable("validator", v),
    "http_port": lambda v: _port("http_port", v),
    "https_port": lambda v: _port("https_port", v),
    "threads": lambda v: _int("threads", v, 1),
    "verify": _verify,
    "hmac_keystore": _keystore,
    "skip_signature_validation": lambda v: _bool("skip_signature_validation", v),
    "hmac_fetcher": lambda v: _callable("hmac_fetcher", v),
    "bind_address": lambda v: _text("bind_address", v),
    "tls_cert_path": lambda v: _path("tls_cert_path", v),
    "tls_key_path": lambda v: _path("tls_key_path", v),
    "virtual_host_domains": _domains,
    "iam_url": _iam_url,
    "connect_to": _connect_to,
    "callback_timeout": lambda v: _seconds("callback_timeout", v),
    "cache_size": lambda v: _int("cache_size", v, 1),
    "log_format": lambda v: _choice("log_format", "OSP_LOG_FORMAT", "text", LOG_FORMATS, v),
    "log_level": lambda v: _choice("log_level", "OSP_LOG_LEVEL", "info", LOG_LEVELS, v),
    "trusted_forwarded_host": lambda v: _bool("trusted_forwarded_host", v),
    "metrics": lambda v: _bool("metrics", v),
    "client_header_timeout": lambda v: _seconds("client_header_timeout", v),
    "client_idle_timeout": lambda v: _seconds("client_idle_timeout", v),
    "backend_timeout": lambda v: _seconds("backend_timeout", v),
    "allow_unverified_on_network": lambda v: _bool("allow_unverified_on_network", v),
    "admin_port": lambda v: _port("admin_port", v),
    "admin_bind": lambda v: _text("admin_bind", v),
    "max_callable_calls": lambda v: _int("max_callable_calls", v, 1, MAX_CALLABLE_CALLS),
    "hmac_fetcher_ttl": lambda v: _int("hmac_fetcher_ttl", v, 0, MAX_HMAC_FETCHER_TTL),
}


def is_loopback(bind_address: str) -> bool:
    """Whether a bind address listens on the loopback interface only: an IP
    in 127.0.0.0/8 or ::1, or the name localhost. 0.0.0.0 and :: listen on
    every interface; any other host name is not trusted to stay loopback.
    (libosp's config.IsLoopback says the same.)"""
    host = bind_address
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host.rstrip(".").lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


_INVALID: Any = object()  # a field value that failed its check, in config_errors


def _rule_errors(values: Mapping[str, Any]) -> List[ValueError]:
    """The rules that span fields. A rule is skipped when one of its fields
    is ``_INVALID`` (already reported)."""

    def valid(*names: str) -> bool:
        return all(values.get(name) is not _INVALID for name in names)

    errors: List[ValueError] = []
    if valid("http_port", "https_port") and values.get("http_port") is None and values.get("https_port") is None:
        errors.append(ValueError("no port configured: set http_port and/or https_port (0 picks a free port)"))
    if valid("tls_cert_path", "tls_key_path") and (values.get("tls_cert_path") is None) != (
        values.get("tls_key_path") is None
    ):
        errors.append(ValueError("tls_cert_path and tls_key_path must be given together"))
    if (
        valid("skip_signature_validation", "bind_address", "allow_unverified_on_network")
        and values.get("skip_signature_validation")
        and not values.get("allow_unverified_on_network")
        and not is_loopback(values.get("bind_address") or "0.0.0.0")
    ):
        errors.append(
            ValueError(
                f"skip_signature_validation: refused with bind_address {values.get('bind_address') or '0.0.0.0'!r}, "
                "which is not a loopback address: anyone who can reach the proxy could use any access key id "
                "without its secret; bind 127.0.0.1 (or ::1), or set allow_unverified_on_network=True to "
                "accept that risk"
            )
        )
    admin_port = values.get("admin_port")
    if valid("admin_port", "http_port", "https_port") and admin_port:
        for name in ("http_port", "https_port"):
            if values.get(name) == admin_port:
                errors.append(ValueError(f"admin_port: {admin_port} is also {name}; the admin listener needs a port of its own"))
    if valid("bucket_creds_fetcher") and values.get("bucket_creds_fetcher") is None:
        for bucket, entry in (values.get("cos_map") or {}).items():
            if entry is not _INVALID and "api_key" not in entry and "access_key" not in entry:
                errors.append(
                    ValueError(
                        f"cos_map[{bucket!r}]: no credentials (give 'api_key' or "
                        "'access_key'/'secret_key', or set bucket_creds_fetcher)"
                    )
                )
    return errors


def config_errors(cos_map: Any, **kwargs: Any) -> List[Exception]:
    """Every problem ``ProxyServerConfig(cos_map, **kwargs)`` has, not only
    the first one it raises: each field is checked on its own, each bucket of
    cos_map too, then the rules that span fields on the fields that passed.
    Empty for a good config. Messages name fields, buckets and access keys,
    never secret values."""
    errors: List[Exception] = []
    values: Dict[str, Any] = {}
    for name in sorted(set(kwargs) - set(_FIELDS) - {"cos_map"}):
        errors.append(TypeError(f"unknown argument {name!r}"))
    if not isinstance(cos_map, Mapping) or not cos_map:
        errors += _check_cos_map(cos_map)[1]
        values["cos_map"] = {}
    else:
        buckets: Dict[Any, Any] = {}
        for bucket, entry in cos_map.items():
            if not isinstance(bucket, str) or not bucket:
                errors.append(TypeError(f"cos_map: bucket names must be non-empty str, got {bucket!r}"))
                continue
            key_problem = _check_bucket_key(bucket)
            normalized, problems = _check_cos_entry(bucket, entry)
            if key_problem is not None:
                problems = [key_problem, *problems]
            errors += problems
            buckets[bucket] = _INVALID if problems else normalized
        values["cos_map"] = buckets
    defaults = _init_defaults()
    for name, check in _FIELDS.items():
        if name == "cos_map":
            continue
        try:
            values[name] = check(kwargs.get(name, defaults.get(name)))
        except (TypeError, ValueError) as exc:
            errors.append(exc)
            values[name] = _INVALID
    return errors + list(_rule_errors(values))


def _init_defaults() -> Dict[str, Any]:
    """ProxyServerConfig's argument defaults."""
    params = inspect.signature(ProxyServerConfig.__init__).parameters.values()
    return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}


class ProxyServerConfig:
    """Configuration of one proxy server.

    The positional arguments are those of the original object-storage-proxy;
    ``bind_address``, the TLS paths and ``virtual_host_domains`` (the
    proxy's domains, for virtual-hosted requests to ``bucket.<domain>``) are
    new and keyword only. Without TLS
    paths, an HTTPS listener takes them from the environment variables
    ``TLS_CERT_PATH`` / ``TLS_KEY_PATH`` when the server starts.

    ``log_format`` ("text" or "json") and ``log_level`` ("debug", "info",
    "warn", "error") shape the proxy's logs; left out, they come from
    ``$OSP_LOG_FORMAT`` / ``$OSP_LOG_LEVEL``, else text and info.
    ``trusted_forwarded_host=True`` takes ``X-Forwarded-Host`` as the host
    the client signed (only behind a load balancer that sets it).

    ``admin_port`` (0 picks a free port) starts the admin listener on
    ``admin_bind`` (default 127.0.0.1): ``GET /healthz``, ``/readyz`` (503
    while stopping) and ``/metrics`` (Prometheus; ``metrics=False`` turns it
    off). Without ``admin_port`` there is none; the S3 listeners never
    answer admin paths.

    ``max_callable_calls`` (default 32) bounds the Python callable calls
    running at once; a request that needs one more gets ``503 SlowDown``
    (a timed-out call counts until it really returns).
    ``hmac_fetcher_ttl`` (seconds, default 300; 0 = not cached) is how long a
    secret from ``hmac_fetcher`` is kept; ``ProxyServer.reload`` forgets
    every cached secret and validator/bucket_creds_fetcher answer at once.

    ``skip_signature_validation=True`` (client signatures are not checked:
    anyone who knows an access key id gets in) is refused unless every
    listener binds a loopback address (``bind_address`` 127.0.0.1, ::1 or
    localhost); ``allow_unverified_on_network=True`` lifts that refusal for
    a proxy that really must skip signatures on a network address. Either
    way a warning is logged at start and at every reload.

    A cos_map key is a bucket name or a pattern: ``"team-a-*"`` (every
    bucket whose name starts with ``team-a-``) or ``"*"`` (every other
    bucket), with the same fields. A bucket's own entry wins over a pattern,
    a longer pattern over a shorter one (``entry_for`` says which serves a
    name). A pattern with a ``*`` elsewhere than at its end, two of them, or
    a prefix no bucket name could start is refused.

    Reading ``cos_map`` gives the normalized entries: canonical key names
    (``api_key``, ``access_key``, ``secret_key``, ``ttl``), int ports and the
    defaults filled in.
    """

    cos_map: Dict[str, Dict[str, Any]]
    bucket_creds_fetcher: Optional[BucketCredsFetcher]
    validator: Optional[Validator]
    http_port: Optional[int]
    https_port: Optional[int]
    threads: int
    verify: Union[None, bool, str]
    hmac_keystore: Optional[Dict[str, str]]
    skip_signature_validation: bool
    hmac_fetcher: Optional[HmacFetcher]
    bind_address: str
    tls_cert_path: Optional[str]
    tls_key_path: Optional[str]
    virtual_host_domains: List[str]
    iam_url: str
    connect_to: Dict[str, str]
    callback_timeout: float
    cache_size: int
    client_header_timeout: float
    client_idle_timeout: float
    backend_timeout: float
    log_format: str
    log_level: str
    trusted_forwarded_host: bool
    metrics: bool
    allow_unverified_on_network: bool
    admin_port: Optional[int]
    admin_bind: str
    max_callable_calls: int
    hmac_fetcher_ttl: int

    def __init__(
        self,
        cos_map: Mapping[str, Mapping[str, Any]],
        bucket_creds_fetcher: Optional[BucketCredsFetcher] = None,
        validator: Optional[Validator] = None,
        http_port: Optional[int] = None,
        https_port: Optional[int] = None,
        threads: int = 1,
        verify: Union[None, bool, PathLike] = None,
        hmac_keystore: Union[None, Mapping[str, str], Sequence[Mapping[str, str]]] = None,
        skip_signature_validation: bool = False,
        hmac_fetcher: Optional[HmacFetcher] = None,
        *,
        bind_address: str = "0.0.0.0",
        tls_cert_path: Optional[PathLike] = None,
        tls_key_path: Optional[PathLike] = None,
        virtual_host_domains: Optional[Sequence[str]] = None,
        iam_url: Optional[str] = None,
        connect_to: Optional[Mapping[str, str]] = None,
        callback_timeout: float = 10.0,
        cache_size: int = 16384,
        client_header_timeout: float = 30.0,
        client_idle_timeout: float = 120.0,
        backend_timeout: float = 300.0,
        log_format: Optional[str] = None,
        log_level: Optional[str] = None,
        trusted_forwarded_host: bool = False,
        metrics: bool = True,
        allow_unverified_on_network: bool = False,
        admin_port: Optional[int] = None,
        admin_bind: str = "127.0.0.1",
        max_callable_calls: int = 32,
        hmac_fetcher_ttl: int = 300,
    ) -> None:
        self.cos_map = cos_map  # type: ignore[assignment]  # normalized by __setattr__
        self.bucket_creds_fetcher = bucket_creds_fetcher
        self.validator = validator
        self.http_port = http_port
        self.https_port = https_port
        self.threads = threads
        self.verify = verify  # type: ignore[assignment]
        self.hmac_keystore = hmac_keystore  # type: ignore[assignment]
        self.skip_signature_validation = skip_signature_validation
        self.hmac_fetcher = hmac_fetcher
        self.bind_address = bind_address
        self.tls_cert_path = tls_cert_path  # type: ignore[assignment]
        self.tls_key_path = tls_key_path  # type: ignore[assignment]
        self.virtual_host_domains = virtual_host_domains  # type: ignore[assignment]
        self.iam_url = iam_url  # type: ignore[assignment]
        self.connect_to = connect_to  # type: ignore[assignment]
        self.callback_timeout = callback_timeout
        self.cache_size = cache_size
        self.client_header_timeout = client_header_timeout
        self.client_idle_timeout = client_idle_timeout
        self.backend_timeout = backend_timeout
        self.log_format = log_format  # type: ignore[assignment]
        self.log_level = log_level  # type: ignore[assignment]
        self.trusted_forwarded_host = trusted_forwarded_host
        self.metrics = metrics
        self.allow_unverified_on_network = allow_unverified_on_network
        self.admin_port = admin_port
        self.admin_bind = admin_bind
        self.max_callable_calls = max_callable_calls
        self.hmac_fetcher_ttl = hmac_fetcher_ttl
        self.validate()

    def __setattr__(self, name: str, value: Any) -> None:
        check = _FIELDS.get(name)
        if check is None:
            # A typo such as config.http_prot = 80 must not pass silently.
            raise AttributeError(f"ProxyServerConfig has no field {name!r}")
        object.__setattr__(self, name, check(value))

    def validate(self) -> None:
        """Re-checks every field (a dict read from the config may have been
        changed in place) and the rules that span fields."""
        for name, check in _FIELDS.items():
            object.__setattr__(self, name, check(getattr(self, name)))
        errors = _rule_errors({name: getattr(self, name) for name in _FIELDS})
        if errors:
            raise errors[0]

    def entry_for(self, bucket: str) -> Optional[str]:
        """The cos_map key that serves ``bucket`` (its own name, else the
        longest pattern it starts with), or None: then the proxy answers
        NoSuchBucket (InvalidBucketName for a name S3 would not allow)."""
        if not valid_bucket_name(bucket):
            return None
        return serving_entry(self.cos_map, bucket)

    def callables(self) -> Dict[str, Callable[..., Any]]:
        """The callables that are set, by kind."""
        return {name: getattr(self, name) for name in _CALLABLE_FIELDS if getattr(self, name) is not None}

    def to_native_json(
        self,
        callable_ids: Optional[Mapping[str, int]] = None,
        *,
        tls_cert_path: Optional[str] = None,
        tls_key_path: Optional[str] = None,
    ) -> str:
        """The configuration as libosp's osp_server_start reads it (include/osp.h).

        ``callable_ids`` maps each set callable's kind to the id it was
        registered under; the TLS paths, when given, replace the config's own
        (the server fills them from the environment).
        """
        self.validate()
        ids = dict(callable_ids or {})
        missing = set(self.callables()) - set(ids)
        if missing:
            raise ValueError(f"no callable id for {', '.join(sorted(missing))}")
        document = {
            "cos_map": self.cos_map,
            "http_port": self.http_port,
            "https_port": self.https_port,
            "bind": self.bind_address,
            "tls_cert_path": tls_cert_path or self.tls_cert_path,
            "tls_key_path": tls_key_path or self.tls_key_path,
            "verify": True if self.verify is None else self.verify,
            "hmac_keystore": self.hmac_keystore or {},
            "skip_signature_validation": self.skip_signature_validation,
            "threads": self.threads,
            "virtual_host_domains": self.virtual_host_domains,
            "iam_url": self.iam_url,
            "connect_to": self.connect_to,
            "callback_timeout": self.callback_timeout,
            "cache_size": self.cache_size,
            "client_header_timeout": self.client_header_timeout,
            "client_idle_timeout": self.client_idle_timeout,
            "backend_timeout": self.backend_timeout,
            "log_format": self.log_format,
            "log_level": self.log_level,
            "trusted_forwarded_host": self.trusted_forwarded_host,
            "metrics": self.metrics,
            "allow_unverified_on_network": self.allow_unverified_on_network,
            "admin_port": self.admin_port,
            "admin_bind": self.admin_bind,
            "max_callable_calls": self.max_callable_calls,
            "hmac_fetcher_ttl": self.hmac_fetcher_ttl,
        }
        for name in _CALLABLE_FIELDS:
            fn = getattr(self, name)
            document[name] = ids.get(name) if fn is not None else None
            if name in ("validator", "bucket_creds_fetcher"):
                document[f"{name}_identity"] = fn is not None and bool(identity_args(name, fn))
        return json.dumps(document)

    def __repr__(self) -> str:
        # Never secrets: no keys of cos_map entries' credentials, no keystore
        # values; only what is set.
        def named(fn: Optional[Callable[..., Any]]) -> str:
            return "None" if fn is None else getattr(fn, "__qualname__", type(fn).__qualname__)

        keystore = "None" if self.hmac_keystore is None else f"<{len(self.hmac_keystore)} keys>"
        parts = [
            f"buckets={sorted(self.cos_map)!r}",
            f"http_port={self.http_port!r}",
            f"https_port={self.https_port!r}",
            f"bind_address={self.bind_address!r}",
            f"threads={self.threads!r}",
            f"verify={self.verify!r}",
            f"skip_signature_validation={self.skip_signature_validation!r}",
            f"hmac_keystore={keystore}",
            *(f"{name}={named(getattr(self, name))}" for name in _CALLABLE_FIELDS),
        ]
        if self.tls_cert_path is not None:
            parts += [f"tls_cert_path={self.tls_cert_path!r}", f"tls_key_path={self.tls_key_path!r}"]
        if self.virtual_host_domains:
            parts.append(f"virtual_host_domains={self.virtual_host_domains!r}")
        if self.trusted_forwarded_host:
            parts.append("trusted_forwarded_host=True")
        if not self.metrics:
            parts.append("metrics=False")
        if self.allow_unverified_on_network:
            parts.append("allow_unverified_on_network=True")
        if self.admin_port is not None:
            parts.append(f"admin={self.admin_bind}:{self.admin_port}")
        return f"ProxyServerConfig({', '.join(parts)})"
