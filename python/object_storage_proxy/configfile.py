"""The TOML configuration file of ``osp serve`` and ``osp check-config``.

A file describes one ProxyServerConfig::

    [server]                      # ProxyServerConfig's settings
    http_port = 6190
    keystore_file = "keys.toml"   # optional: more client keys, same format as [keystore]

    [keystore]                    # client access key = its secret
    analytics-team = { env = "OSP_SECRET_ANALYTICS" }

    [callables]                   # optional: Python callables as "module:function"
    validator = "my_policies:validator"
    python_path = ["/opt/osp/hooks"]

    [buckets.analytics-raw]       # one cos_map entry per bucket
    host = "s3.eu-de.cloud-object-storage.appdomain.cloud"
    port = 443
    apikey = { file = "/run/secrets/cos-apikey" }

    [buckets."team-a-*"]          # or per pattern: every bucket named team-a-...
    host = "minio.internal"       # ("*" alone: every other bucket); a bucket's
    port = 9000                   # own entry wins, then the longest pattern
    access_key = { env = "TEAM_A_ACCESS_KEY" }
    secret_key = { env = "TEAM_A_SECRET_KEY" }

A secret (a keystore value, a bucket's access_key, secret_key or api_key) is
a string, ``{ env = "NAME" }`` (an environment variable) or ``{ file =
"path" }`` (a file's content, trailing newline removed). Relative paths are
relative to the configuration file.

Every problem of a file is reported at once (``load_config`` raises a
ConfigFileError holding them all), each naming its table and key, never a
secret value.
"""

from __future__ import annotations

import ast
import difflib
import importlib
import os
import re
import sys
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from .config import CALLABLE_KINDS, SETTINGS, ProxyServerConfig, config_errors

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Debian 12 and later have 3.11
    try:
        import tomli as tomllib
    except ImportError:
        tomllib = None  # type: ignore[assignment]

TABLES = ("server", "keystore", "callables", "buckets")
# [server] keys that are not ProxyServerConfig arguments.
_SERVER_EXTRAS = ("keystore_file",)
# Bucket keys whose values are secrets (every accepted spelling).
_SECRET_KEYS = ("access_key", "accessKey", "secret_key", "secretKey", "api_key", "apikey")
# [server] keys holding file paths, resolved against the file's folder.
_PATH_KEYS = (*(name for name, spec in SETTINGS.items() if spec.path), "keystore_file")


# Stand-ins for a secret or callable that could not be had (the problem is
# already reported): the rest of the file is still checked without
# reporting it again as missing. A file with any problem gives no config.
_UNRESOLVED = "<unresolved>"


def _unresolved(*args: Any, **kwargs: Any) -> Any:  # pragma: no cover - never called
    raise RuntimeError("unresolved callable")


class ConfigFileError(ValueError):
    """A configuration file with problems; ``errors`` lists every one."""

    def __init__(self, path: str, errors: List[str]) -> None:
        self.path = path
        self.errors = list(errors)
        count = f"{len(errors)} error{'s' if len(errors) != 1 else ''}"
        super().__init__(f"{path}: {count}\n" + "\n".join(f"  {e}" for e in errors))


def server_keys() -> Tuple[str, ...]:
    """The keys a [server] table accepts: ProxyServerConfig's settings
    that no other table sets."""
    return (*(name for name, spec in SETTINGS.items() if spec.table == "server"), *_SERVER_EXTRAS)


def _hint(key: str, choices: Any) -> str:
    match = difflib.get_close_matches(key, list(choices), n=1)
    return f" (did you mean {match[0]!r}?)" if match else ""


def bucket_header(bucket: str) -> str:
    """How a file names a cos_map entry: [buckets.NAME], quoted when the key
    needs it (a pattern's '*' does)."""
    name = bucket if re.fullmatch(r"[A-Za-z0-9_-]+", bucket) else '"' + bucket.replace('"', '\\"') + '"'
    return f"[buckets.{name}]"


class _Loader:
    """Reads one file, collecting problems instead of stopping at the first."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.base = os.path.dirname(os.path.abspath(path))
        self.errors: List[str] = []

    def error(self, where: str, message: str) -> None:
        self.errors.append(f"{where} {message}" if where else message)

    def resolve(self, path: str) -> str:
        return os.path.normpath(os.path.join(self.base, os.path.expanduser(path)))

    # -- files and secrets ------------------------------------------------

    def read_toml(self, path: str, where: str) -> Optional[Dict[str, Any]]:
        if tomllib is None:
            self.error(where, "reading TOML needs Python 3.11 or the tomli package")
            return None
        try:
            with open(path, "rb") as f:
                return tomllib.load(f)
        except OSError as exc:
            self.error(where, f"cannot read {path}: {exc.strerror or exc}")
        except tomllib.TOMLDecodeError as exc:
            # The decoder's messages give a position, never the text.
            self.error(where, f"{path} is not valid TOML: {exc}")
        return None

    def secret(self, where: str, value: Any) -> Any:
        """A secret's value from a string, {env = NAME} or {file = path};
        None (and an error) if it cannot be had. Messages never hold it."""
        if isinstance(value, str):
            return value
        if not isinstance(value, Mapping):
            self.error(where, f'expected a string, {{ env = "NAME" }} or {{ file = "path" }}, got {_toml_type(value)}')
            return None
        unknown = sorted(set(value) - {"env", "file"})
        if unknown or len(value) != 1:
            self.error(where, 'a secret reference is { env = "NAME" } or { file = "path" }')
            return None
        ((kind, source),) = value.items()
        if not isinstance(source, str) or not source:
            self.error(where, f"{kind}: expected a non-empty string")
            return None
        if kind == "env":
            if source not in os.environ:
                self.error(where, f"environment variable {source} is not set")
                return None
            return os.environ[source]
        path = self.resolve(source)
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as exc:
            self.error(where, f"cannot read secret file {path}: {exc.strerror or exc}")
            return None
        except UnicodeDecodeError:
            self.error(where, f"secret file {path} is not UTF-8 text")
            return None
        return text[:-2] if text.endswith("\r\n") else text[:-1] if text.endswith("\n") else text

    def readable_file(self, where: str, path: str) -> None:
        if not os.path.isfile(path):
            self.error(where, f"{path}: no such file")
        elif not os.access(path, os.R_OK):
            self.error(where, f"{path}: not readable")

    # -- tables -------------------------------------------------------------

    def table(self, document: Mapping[str, Any], name: str) -> Dict[str, Any]:
        value = document.get(name, {})
        if not isinstance(value, Mapping):
            self.error("", f"{name} must be a table ([{name}]), got {_toml_type(value)}")
            return {}
        return dict(value)

    def server(self, table: Mapping[str, Any]) -> Tuple[Dict[str, Any], Optional[str]]:
        allowed = server_keys()
        kwargs: Dict[str, Any] = {}
        for key, value in table.items():
            if key not in allowed:
                self.error("[server]", f"unknown key {key!r}{_hint(key, allowed)}")
                continue
            if key in _PATH_KEYS and isinstance(value, str) and value:
                value = self.resolve(value)
            kwargs[key] = value
        keystore_file = kwargs.pop("keystore_file", None)
        if keystore_file is not None and not isinstance(keystore_file, str):
            self.error("[server]", f"keystore_file: expected a path, got {_toml_type(keystore_file)}")
            keystore_file = None
        return kwargs, keystore_file

    def keystore(self, table: Mapping[str, Any], where: str, into: Dict[str, Any]) -> None:
        for access_key, value in table.items():
            if access_key in into:
                self.error(where, f"access key {access_key!r} is given twice")
                continue
            secret = self.secret(f"{where} {access_key}:", value)
            # A stand-in for one that could not be read (already reported),
            # so that it is not reported again as missing.
            into[access_key] = _UNRESOLVED if secret is None else secret

    def callables(self, table: Mapping[str, Any]) -> Dict[str, Callable[..., Any]]:
        table = dict(table)
        python_path = table.pop("python_path", [])
        if isinstance(python_path, str):
            python_path = [python_path]
        if not isinstance(python_path, list) or not all(isinstance(p, str) and p for p in python_path):
            self.error("[callables]", "python_path: expected a list of folders")
            python_path = []
        for folder in reversed(python_path):
            folder = self.resolve(folder)
            if folder not in sys.path:
                sys.path.insert(0, folder)
        out: Dict[str, Callable[..., Any]] = {}
        for kind, spec in table.items():
            if kind not in CALLABLE_KINDS:
                self.error("[callables]", f"unknown key {kind!r}{_hint(kind, (*CALLABLE_KINDS, 'python_path'))}")
                continue
            fn = self.import_callable(f"[callables] {kind}:", spec)
            out[kind] = _unresolved if fn is None else fn
        return out

    def import_callable(self, where: str, spec: Any) -> Optional[Callable[..., Any]]:
        if not isinstance(spec, str) or not re.fullmatch(r"[\w.]+:[\w.]+", spec):
            self.error(where, 'expected "module:function" (e.g. "my_policies:validator")')
            return None
        module_name, _, attribute = spec.partition(":")
        try:
            obj: Any = importlib.import_module(module_name)
        except Exception as exc:  # noqa: BLE001 - any import failure is a config error
            self.error(where, f"cannot import module {module_name!r}: {type(exc).__name__}: {exc}")
            return None
        for part in attribute.split("."):
            try:
                obj = getattr(obj, part)
            except AttributeError:
                self.error(where, f"module {module_name!r} has no attribute {attribute!r}")
                return None
        if not callable(obj):
            self.error(where, f"{spec} is a {type(obj).__name__}, not a callable")
            return None
        return obj  # type: ignore[no-any-return]

    def buckets(self, table: Mapping[str, Any]) -> Dict[str, Any]:
        cos_map: Dict[str, Any] = {}
        for bucket, entry in table.items():
            header = bucket_header(bucket)
            if not isinstance(entry, Mapping):
                self.error("", f"buckets.{bucket} must be a table ({header}), got {_toml_type(entry)}")
                continue
            resolved = dict(entry)
            for key in _SECRET_KEYS:
                if key in resolved and not isinstance(resolved[key], str):
                    value = self.secret(f"{header} {key}:", resolved[key])
                    resolved[key] = _UNRESOLVED if value is None else value
            cos_map[bucket] = resolved
        return cos_map

    # -- the whole file ------------------------------------------------------

    def load(self) -> Optional[ProxyServerConfig]:
        document = self.read_toml(self.path, "")
        if document is None:
            return None
        for name in document:
            if name not in TABLES:
                self.error("", f"unknown table [{name}]{_hint(name, TABLES)}; a file has {', '.join(f'[{t}]' for t in TABLES)}")
        kwargs, keystore_file = self.server(self.table(document, "server"))
        keystore: Dict[str, Any] = {}
        self.keystore(self.table(document, "keystore"), "[keystore]", keystore)
        if keystore_file is not None:
            extra = self.read_toml(keystore_file, "[server] keystore_file:")
            if extra is not None:
                self.keystore(extra, f"keystore_file {keystore_file}:", keystore)
        callables = self.callables(self.table(document, "callables"))
        cos_map = self.buckets(self.table(document, "buckets"))
        kwargs.update(callables)
        if keystore or "keystore" in document or keystore_file is not None:
            kwargs["hmac_keystore"] = keystore
        self.files(kwargs)
        self.errors += [_where(str(exc)) for exc in config_errors(cos_map, **kwargs)]
        # Grouped by table, in the file's usual order; found order within.
        self.errors.sort(key=_table_rank)
        if self.errors:
            return None
        return ProxyServerConfig(cos_map, **kwargs)

    def files(self, kwargs: Dict[str, Any]) -> None:
        """TLS files and the CA bundle exist and can be read (libosp would
        only say so at start)."""
        cert, key = kwargs.get("tls_cert_path"), kwargs.get("tls_key_path")
        if kwargs.get("https_port") is not None and cert is None and key is None:
            cert, key = os.environ.get("TLS_CERT_PATH") or None, os.environ.get("TLS_KEY_PATH") or None
            if cert is None or key is None:
                self.error(
                    "[server]",
                    "https_port needs tls_cert_path and tls_key_path "
                    "(or TLS_CERT_PATH and TLS_KEY_PATH in the environment)",
                )
                return
        for name, path in (("tls_cert_path", cert), ("tls_key_path", key), ("verify", kwargs.get("verify"))):
            if isinstance(path, str) and path:
                self.readable_file(f"[server] {name}:", path)


def _table_rank(error: str) -> int:
    for rank, table in enumerate(TABLES):
        if error.startswith(f"[{table}") or error.startswith("keystore_file") and table == "keystore":
            return rank + 1
    return 0


def _toml_type(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return {bool: "a boolean", int: "an integer", float: "a float", str: "a string"}.get(type(value), type(value).__name__)


_COS_ENTRY = re.compile(r"^cos_map\[('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")\](?:\['([^']*)'\])?:? ?(.*)$", re.S)


def _where(message: str) -> str:
    """Rewrites a ProxyServerConfig message in the file's terms: cos_map
    entries become [buckets.NAME], settings [server] or [callables]."""
    match = _COS_ENTRY.match(message)
    if match:
        bucket = ast.literal_eval(match.group(1))
        key, rest = match.group(2), match.group(3)
        rest = rest.replace("or set bucket_creds_fetcher", "or set bucket_creds_fetcher in [callables]")
        return f"{bucket_header(bucket)} {key + ': ' if key else ''}{rest}"
    if message.startswith("cos_map:"):
        if "at least one bucket" in message:
            return "[buckets] no bucket: add at least one [buckets.NAME] table"
        return "[buckets]" + message[len("cos_map:"):]
    if message.startswith("hmac_keystore:"):
        return "[keystore]" + message[len("hmac_keystore:"):]
    field = message.split(":", 1)[0].split(" ", 1)[0]
    if field in CALLABLE_KINDS:
        return f"[callables] {message}"
    return f"[server] {message}"


def check_config(path: str) -> Tuple[Optional[ProxyServerConfig], List[str]]:
    """Reads and checks a configuration file: the config, or None and every
    problem found."""
    loader = _Loader(os.fspath(path))
    config = loader.load()
    return config, loader.errors


def load_config(path: str) -> ProxyServerConfig:
    """Reads a configuration file; raises ConfigFileError listing every
    problem."""
    config, errors = check_config(path)
    if config is None:
        raise ConfigFileError(os.fspath(path), errors or ["cannot be loaded"])
    return config

