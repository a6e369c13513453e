"""ProxyServerConfig: the proxy's configuration, checked as it is set.

Every field is validated when assigned (TypeError for a wrong type, ValueError
for a wrong value, the message naming the field). Checks that span fields (a
port must be configured; a bucket without credentials needs a
bucket_creds_fetcher) run in ``validate()``: at the end of ``__init__`` and
again when a server starts, so fields can be changed one at a time.

Each setting is declared once, in ProxyServerConfig's class body (name,
type, default, check, doc); the constructor's signature, the checks, the
JSON document libosp reads, the keys of a TOML file's tables and the repr
all come from that declaration. Defaults are libosp's (include/osp.h,
osp_config_defaults): Go applies them to a C host's configuration too, so
they are written there only and read here.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import ipaddress
import json
import os
import re
import urllib.parse
from functools import partial
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from . import _native
from .callables import IDENTITY_KINDS, callable_name, identity_args

# Public callable types (the original project's signatures).
Validator = Callable[[str, str], bool]
"""validator(token, bucket) -> bool: may this access key use this bucket?"""
BucketCredsFetcher = Callable[[str, str], Union[str, Mapping[str, str], None]]
"""bucket_creds_fetcher(token, bucket) -> API key, JSON HMAC pair, dict or None."""
HmacFetcher = Callable[[str], Optional[str]]
"""hmac_fetcher(access_key) -> secret key or None."""
RateLimitFetcher = Callable[[str], Optional[Mapping[str, Union[int, float]]]]
"""rate_limit_fetcher(access_key) -> a rate limit dict, or None for the default."""

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
    "presign_max_uses": ("presign_max_uses",),
    "presign_max_expires": ("presign_max_expires",),
}
_ENTRY_SPELLINGS = {alias: key for key, aliases in _ENTRY_ALIASES.items() for alias in aliases}

# libosp's defaults: {"config": {key: default}, "bucket": {entry key: default}}.
LIBOSP_DEFAULTS = _native.config_defaults()
# The defaults a normalized cos_map entry shows. upload_framing is left to
# libosp: an entry holds it only when it is given.
_ENTRY_DEFAULTS: Dict[str, Any] = {
    key: LIBOSP_DEFAULTS["bucket"][key] for key in ("region", "ttl", "scheme", "addressing_style")
}
DEFAULT_IAM_URL: str = LIBOSP_DEFAULTS["config"]["iam_url"]


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
    # The presigned URL limits have no default here: without them the server's apply.
    for key, high in (("presign_max_uses", MAX_LIMIT), ("presign_max_expires", MAX_PRESIGN_EXPIRES)):
        if key in out:
            check(key, lambda v, key=key, high=high: _int(f"{where}[{key!r}]", v, 0, high))
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


def _cos_map(field: str, value: Any) -> Dict[str, Dict[str, Any]]:
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


def _keystore(field: str, value: Any) -> Optional[Dict[str, str]]:
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


def _verify(field: str, value: Any) -> Union[None, bool, str]:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (str, os.PathLike)):
        return _path("verify", value)
    raise TypeError(f"verify: expected None, bool or a CA bundle path, got {type(value).__name__}")


def _domains(field: str, value: Any) -> List[str]:
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


def _connect_to(field: str, value: Any) -> Dict[str, str]:
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


def _iam_url(field: str, value: Any) -> str:
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


# Bounds of the limits (libosp checks them too).
MAX_LIMIT = 1 << 40
MAX_PRESIGN_EXPIRES = 7 * 24 * 3600  # S3's longest presigned URL
STATE_DOWN_POLICIES = ("deny", "allow")
STATE_PASSWORD_ENV = "OSP_STATE_PASSWORD"
RATE_LIMIT_KEYS = ("requests_per_second", "burst", "upload_bytes_per_second", "download_bytes_per_second")
_STATE_URL_FORMS = "'', 'memory:', redis://host:port/db or rediss://host:port/db"


def _state_url(field: str, value: Any) -> str:
    """Where the limits' counts live. Messages never quote the URL: it may
    hold a password."""
    if not isinstance(value, str):
        raise TypeError(f"{field}: expected str, got {type(value).__name__}")
    if value in ("", "memory:"):
        return value
    try:
        parts = urllib.parse.urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not one
    except ValueError:
        raise ValueError(f"{field}: not a valid URL (want {_STATE_URL_FORMS})") from None
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise ValueError(f"{field}: want {_STATE_URL_FORMS} (the URL is not shown: it may hold a password)")
    return value


def redact_state_url(url: str) -> str:
    """A state_url without its user and password."""
    parts = urllib.parse.urlsplit(url)
    if not parts.netloc:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def _with_state_password(url: str) -> str:
    """The state_url libosp gets: with $OSP_STATE_PASSWORD as its password
    when it has none, read from the environment when the server starts (a
    Go library sees only the environment of its loading; ./.env is loaded
    later)."""
    password = os.environ.get(STATE_PASSWORD_ENV)
    parts = urllib.parse.urlsplit(url)
    if not password or not parts.netloc or parts.password is not None:
        return url
    user = urllib.parse.quote(parts.username or "", safe="")
    netloc = f"{user}:{urllib.parse.quote(password, safe='')}@{parts.netloc.rpartition('@')[2]}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _show_state_url(url: str) -> str:
    return repr(redact_state_url(url))


def _policy(field: str, value: Any, *, allowed: Tuple[str, ...]) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{field}: expected str, got {type(value).__name__}")
    if value not in allowed:
        raise ValueError(f"{field}: {value!r} is not one of {', '.join(map(repr, allowed))}")
    return value


def rate_limit_value(where: str, value: Any) -> Dict[str, Union[int, float]]:
    """One rate limit: a dict of RATE_LIMIT_KEYS, each a number >= 0 (0 or
    absent: no limit of that kind); burst needs requests_per_second."""
    if not isinstance(value, Mapping):
        raise TypeError(f"{where}: expected a dict of {', '.join(RATE_LIMIT_KEYS)}, got {type(value).__name__}")
    out: Dict[str, Union[int, float]] = {}
    for key, number in value.items():
        if key not in RATE_LIMIT_KEYS:
            hint = difflib.get_close_matches(str(key), RATE_LIMIT_KEYS, n=1)
            raise ValueError(f"{where}: unknown key {key!r}" + (f" (did you mean {hint[0]!r}?)" if hint else ""))
        if key == "requests_per_second":
            if isinstance(number, bool) or not isinstance(number, (int, float)):
                raise TypeError(f"{where}[{key!r}]: expected a number, got {type(number).__name__}")
            if not 0 <= number <= MAX_LIMIT:
                raise ValueError(f"{where}[{key!r}]: {number} is out of range (0-{MAX_LIMIT})")
            out[key] = number
        else:
            out[key] = _int(f"{where}[{key!r}]", number, 0, MAX_LIMIT)
    if out.get("burst") and not out.get("requests_per_second"):
        raise ValueError(f"{where}: 'burst' is given without 'requests_per_second'")
    return out


def _rate_limit(field: str, value: Any) -> Optional[Dict[str, Union[int, float]]]:
    return None if value is None else rate_limit_value(field, value)


def _rate_limits(field: str, value: Any) -> Dict[str, Dict[str, Union[int, float]]]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{field}: expected a dict of access key -> rate limit, got {type(value).__name__}")
    out = {}
    for access_key, limit in value.items():
        if not isinstance(access_key, str) or not access_key:
            raise TypeError(f"{field}: access keys must be non-empty str, got {access_key!r}")
        out[access_key] = rate_limit_value(f"{field}[{access_key!r}]", limit)
    return out


def _choice(field: str, value: Any, *, env: str, allowed: Tuple[str, ...]) -> str:
    """One of ``allowed`` (case-insensitive): the argument, else $``env``,
    else libosp's default."""
    source = field
    if value is None:
        value = os.environ.get(env) or LIBOSP_DEFAULTS["config"][field]
        source = f"{field} (from ${env})"
    if not isinstance(value, str):
        raise TypeError(f"{source}: expected str, got {type(value).__name__}")
    normalized = value.strip().lower()
    normalized = _LOG_LEVEL_ALIASES.get(normalized, normalized) if allowed is LOG_LEVELS else normalized
    if normalized not in allowed:
        raise ValueError(f"{source}: {value!r} is not one of {', '.join(map(repr, allowed))}")
    return normalized


@dataclasses.dataclass(frozen=True)
class Setting:
    """How one ProxyServerConfig field is checked, documented, sent to
    libosp and set from a TOML file (its name, type and default are the
    class attribute's)."""

    check: Callable[[str, Any], Any]
    """(name, value) -> the normalized value; TypeError for a wrong type,
    ValueError for a wrong value, the message naming the field."""
    doc: str
    positional: bool = False
    """One of the original project's positional arguments (the others are
    keyword only; repr always shows these)."""
    key: str = ""
    """Its key in libosp's JSON document, when that is not its name."""
    sent: Callable[[Any], Any] = lambda value: value
    """The value as libosp's JSON document holds it."""
    table: str = "server"
    """The table of a configuration file that sets it."""
    path: bool = False
    """A file path: a relative one in a configuration file is relative to
    the file."""
    shown: Callable[[Any], str] = repr
    """How repr shows a value: never a secret."""


_LIBOSP_DEFAULT: Any = object()  # a default that is libosp's, resolved by _with_libosp_defaults


def setting(check: Callable[..., Any], doc: str, *, default: Any = _LIBOSP_DEFAULT, **options: Any) -> Any:
    """Declares a ProxyServerConfig field (a dataclass field whose metadata
    is its Setting); its default is libosp's unless one is given."""
    return dataclasses.field(default=default, metadata={"setting": Setting(check, " ".join(doc.split()), **options)})


def _show_callable(fn: Optional[Callable[..., Any]]) -> str:
    return "None" if fn is None else callable_name(fn)


def _positional(check: Callable[..., Any], doc: str, *, default: Any = _LIBOSP_DEFAULT, **options: Any) -> Any:
    return setting(check, doc, default=default, positional=True, **options)


def _callable_setting(doc: str) -> Any:
    return _positional(_callable, doc, default=None, table="callables", shown=_show_callable)


def _with_libosp_defaults(cls: type) -> type:
    """Gives every field declared with libosp's default that default,
    checked like a value (so 10 seconds reads 10.0)."""
    for field in dataclasses.fields(cls):
        if field.default is _LIBOSP_DEFAULT:
            spec: Setting = field.metadata["setting"]
            field.default = spec.check(field.name, LIBOSP_DEFAULTS["config"][spec.key or field.name])
            setattr(cls, field.name, field.default)
    return cls


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
    for name in sorted(set(kwargs) - set(SETTINGS)):
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
    for name, spec in SETTINGS.items():
        if name == "cos_map":
            continue
        try:
            values[name] = spec.check(name, kwargs.get(name, DEFAULTS.get(name)))
        except (TypeError, ValueError) as exc:
            errors.append(exc)
            values[name] = _INVALID
    return errors + list(_rule_errors(values))


@_with_libosp_defaults
@dataclasses.dataclass(init=False, repr=False, eq=False)
class ProxyServerConfig:
    """Configuration of one proxy server.

    The positional arguments are those of the original object-storage-proxy;
    the others are keyword only. Every setting is listed below with its
    default (``help(ProxyServerConfig)``); the defaults are libosp's.

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

    # The settings, in the constructor's order. Each is declared here only.
    cos_map: Dict[str, Dict[str, Any]] = _positional(
        _cos_map, "bucket (or pattern) -> where it lives and its credentials", default=dataclasses.MISSING,
        table="buckets", shown=lambda cos_map: repr(sorted(cos_map)),
    )
    bucket_creds_fetcher: Optional[BucketCredsFetcher] = _callable_setting(
        "bucket_creds_fetcher(token, bucket): the backend credentials of a bucket without its own"
    )
    validator: Optional[Validator] = _callable_setting("validator(token, bucket) -> bool: may this key use this bucket?")
    http_port: Optional[int] = _positional(_port, "the HTTP port (0: a free one)", default=None)
    https_port: Optional[int] = _positional(
        _port, """the HTTPS port (0: a free one); without TLS paths they come from $TLS_CERT_PATH and
        $TLS_KEY_PATH when the server starts""", default=None,
    )
    threads: int = _positional(partial(_int, low=1), "CPU cores the proxy may use (GOMAXPROCS; 1: all)")
    verify: Union[None, bool, str] = _positional(
        _verify, "backend TLS certificates: None or True (system roots), False (not checked) or a CA bundle path",
        default=None, sent=lambda verify: True if verify is None else verify, path=True,
    )
    hmac_keystore: Optional[Dict[str, str]] = _positional(
        _keystore, "client access key -> secret (or the original's list of {'access_key', 'secret_key'})",
        default=None, sent=lambda keystore: keystore or {}, table="keystore",
        shown=lambda keystore: "None" if keystore is None else f"<{len(keystore)} keys>",
    )
    skip_signature_validation: bool = _positional(
        _bool, """client signatures are not checked (anyone who knows an access key id gets in): refused
        unless bind_address is a loopback address or allow_unverified_on_network is set""",
    )
    hmac_fetcher: Optional[HmacFetcher] = _callable_setting(
        "hmac_fetcher(access_key) -> secret: the secret of a client key not in hmac_keystore"
    )
    bind_address: str = setting(_text, "the address the S3 listeners bind", key="bind")
    tls_cert_path: Optional[str] = setting(_path, "the HTTPS listener's certificate", default=None, path=True)
    tls_key_path: Optional[str] = setting(_path, "the HTTPS listener's key", default=None, path=True)
    virtual_host_domains: List[str] = setting(
        _domains, "the proxy's domains, for virtual-hosted requests to bucket.<domain>", default=None,
    )
    iam_url: str = setting(_iam_url, f"IBM Cloud IAM's base URL (None: $OSP_IAM_URL, else {DEFAULT_IAM_URL})", default=None)
    connect_to: Dict[str, str] = setting(
        _connect_to, "backend 'host:port' -> the 'host:port' dialled instead (curl's --connect-to)", default=None,
    )
    callback_timeout: float = setting(_seconds, "seconds one call of a callable may take (then 503)")
    cache_size: int = setting(partial(_int, low=1), "answers each cache holds at most")
    client_header_timeout: float = setting(_seconds, "seconds to read a client's request headers")
    client_idle_timeout: float = setting(_seconds, "seconds an idle client connection is kept")
    backend_timeout: float = setting(_seconds, "seconds to wait for a backend's response headers")
    log_format: str = setting(
        partial(_choice, env="OSP_LOG_FORMAT", allowed=LOG_FORMATS),
        f"'text' or 'json' (None: $OSP_LOG_FORMAT, else {LIBOSP_DEFAULTS['config']['log_format']!r})", default=None,
    )
    log_level: str = setting(
        partial(_choice, env="OSP_LOG_LEVEL", allowed=LOG_LEVELS),
        f"'debug', 'info', 'warn' or 'error' (None: $OSP_LOG_LEVEL, else {LIBOSP_DEFAULTS['config']['log_level']!r})", default=None,
    )
    trusted_forwarded_host: bool = setting(
        _bool, "X-Forwarded-Host is the host the client signed, X-Forwarded-Proto its scheme (only behind a load balancer that sets them)",
    )
    metrics: bool = setting(_bool, "the admin listener serves /metrics (Prometheus)")
    allow_unverified_on_network: bool = setting(
        _bool, "lets skip_signature_validation run on a network (non-loopback) address",
    )
    admin_port: Optional[int] = setting(
        _port, """the admin listener's port (0: a free one): GET /healthz, /readyz (503 while stopping),
        /metrics; None: no admin listener (the S3 listeners never answer admin paths)""", default=None,
    )
    admin_bind: str = setting(_text, "the address the admin listener binds")
    max_callable_calls: int = setting(
        partial(_int, low=1, high=MAX_CALLABLE_CALLS),
        "callable calls running at once; a request that needs one more gets 503 SlowDown",
    )
    hmac_fetcher_ttl: int = setting(
        partial(_int, low=0, high=MAX_HMAC_FETCHER_TTL),
        "seconds a secret from hmac_fetcher is kept (0: not cached); a reload forgets them all",
    )
    state_url: str = setting(
        _state_url, """where the limits' counts live: '' (this process) or redis://host:port/db, rediss://...
        for a fleet; the password from the URL or $OSP_STATE_PASSWORD, never shown""", shown=_show_state_url,
        sent=_with_state_password,
    )
    presign_max_uses: int = setting(
        partial(_int, low=0, high=MAX_LIMIT),
        "times a presigned URL may be used (0: no limit); a bucket's own presign_max_uses wins",
    )
    presign_max_expires: int = setting(
        partial(_int, low=0, high=MAX_PRESIGN_EXPIRES),
        "seconds of X-Amz-Expires a presigned URL may have at most (0: S3's 7 days); a bucket's own wins",
    )
    presign_limits_when_state_down: str = setting(
        partial(_policy, allowed=STATE_DOWN_POLICIES),
        "'deny' (503) or 'allow' use-limited presigned URLs while the state store does not answer",
    )
    rate_limits_when_state_down: str = setting(
        partial(_policy, allowed=STATE_DOWN_POLICIES),
        "'allow' (not limited) or 'deny' (503) requests of rate-limited keys while the state store does not answer",
    )
    rate_limit: Optional[Dict[str, Union[int, float]]] = setting(
        _rate_limit, """every client key's limit unless rate_limits or rate_limit_fetcher gives its own:
        {requests_per_second, burst, upload_bytes_per_second, download_bytes_per_second} (0 or absent: none)""",
        default=None,
    )
    rate_limits: Dict[str, Dict[str, Union[int, float]]] = setting(
        _rate_limits, "client access key -> its own rate limit (a dict like rate_limit's)", default=None,
    )
    rate_limit_fetcher: Optional[RateLimitFetcher] = setting(
        _callable, "rate_limit_fetcher(access_key) -> a rate limit dict, or None: the limit of a key not in rate_limits",
        default=None, table="callables", shown=_show_callable,
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # The signature is SIGNATURE (below), from the declarations above.
        bound = SIGNATURE.bind(self, *args, **kwargs)
        bound.apply_defaults()
        for name, value in bound.arguments.items():
            if name != "self":
                setattr(self, name, value)
        self.validate()

    def __setattr__(self, name: str, value: Any) -> None:
        spec = SETTINGS.get(name)
        if spec is None:
            # A typo such as config.http_prot = 80 must not pass silently.
            raise AttributeError(f"ProxyServerConfig has no field {name!r}")
        object.__setattr__(self, name, spec.check(name, value))

    def validate(self) -> None:
        """Re-checks every field (a dict read from the config may have been
        changed in place) and the rules that span fields."""
        for name, spec in SETTINGS.items():
            object.__setattr__(self, name, spec.check(name, getattr(self, name)))
        errors = _rule_errors({name: getattr(self, name) for name in SETTINGS})
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
        return {name: getattr(self, name) for name in CALLABLE_KINDS if getattr(self, name) is not None}

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
        document = {spec.key or name: spec.sent(getattr(self, name)) for name, spec in SETTINGS.items()}
        document["tls_cert_path"] = tls_cert_path or self.tls_cert_path
        document["tls_key_path"] = tls_key_path or self.tls_key_path
        for name in CALLABLE_KINDS:
            fn = getattr(self, name)
            document[name] = ids.get(name) if fn is not None else None
            if name in IDENTITY_KINDS:
                document[f"{name}_identity"] = fn is not None and bool(identity_args(name, fn))
        return json.dumps(document)

    def __repr__(self) -> str:
        # The original's arguments, then what is not at its default; never
        # a secret (each Setting's ``shown``).
        parts = [
            f"{name}={spec.shown(getattr(self, name))}"
            for name, spec in SETTINGS.items()
            if spec.positional or getattr(self, name) != spec.check(name, DEFAULTS[name])
        ]
        return f"ProxyServerConfig({', '.join(parts)})"


# The declarations, by field name, in the constructor's order.
SETTINGS: Dict[str, Setting] = {
    field.name: field.metadata["setting"] for field in dataclasses.fields(ProxyServerConfig)
}
# Each setting's default (cos_map has none).
DEFAULTS: Dict[str, Any] = {
    field.name: field.default
    for field in dataclasses.fields(ProxyServerConfig)
    if field.default is not dataclasses.MISSING
}
CALLABLE_KINDS: Tuple[str, ...] = tuple(name for name, spec in SETTINGS.items() if spec.table == "callables")
# ProxyServerConfig(cos_map, <the other positional settings>, *, <the rest>).
SIGNATURE = inspect.Signature(
    [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    + [
        inspect.Parameter(
            name,
            inspect.Parameter.POSITIONAL_OR_KEYWORD if spec.positional else inspect.Parameter.KEYWORD_ONLY,
            default=DEFAULTS.get(name, inspect.Parameter.empty),
        )
        for name, spec in SETTINGS.items()
    ]
)
ProxyServerConfig.__init__.__signature__ = SIGNATURE  # type: ignore[attr-defined]
ProxyServerConfig.__doc__ = (ProxyServerConfig.__doc__ or "") + "\n    Settings:\n\n" + "".join(
    f"    ``{name}`` (default {DEFAULTS[name]!r}): {spec.doc}\n" if name in DEFAULTS else f"    ``{name}``: {spec.doc}\n"
    for name, spec in SETTINGS.items()
)
