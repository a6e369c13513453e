"""The thin layer over libosp: callbacks, server handles, request counting.

Only this module touches cffi. Everything else in the package speaks Python.

Callbacks: the proxy knows host callables only by an integer id. Python keeps
the id -> (kind, callable) registry here and hands libosp one trampoline,
``_osp_trampoline``, which looks the id up, calls the callable and writes its
answer into the buffer libosp owns (see include/osp.h for the contract).
"""

from __future__ import annotations

import atexit
import itertools
import json
import logging
import threading
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple

try:
    from ._osp_cffi import ffi, lib
except ImportError as exc:  # pragma: no cover - only a broken install gets here
    raise ImportError(
        "object_storage_proxy: the native extension or libosp.so could not be loaded "
        f"({exc}); reinstall the package with pip"
    ) from exc

from .callables import callable_name, identity_args

logger = logging.getLogger("object_storage_proxy")

# The version this package is: include/osp.h's OSP_VERSION, compiled into
# the extension when the package was built (setup.py reads the same line).
VERSION: str = ffi.string(lib.OSP_VERSION).decode("ascii")

CB_OK: int = lib.OSP_CB_OK
CB_NONE: int = lib.OSP_CB_NONE
CB_ERROR: int = lib.OSP_CB_ERROR
CB_BAD_TYPE: int = lib.OSP_CB_BAD_TYPE
CB_TOO_LONG: int = lib.OSP_CB_TOO_LONG

# The arguments each kind of callable takes, in call order; libosp sends them
# as the keys of the args_json object.
CALLABLE_ARGS: Dict[str, Tuple[str, ...]] = {
    "validator": ("token", "bucket"),
    "bucket_creds_fetcher": ("token", "bucket"),
    "hmac_fetcher": ("access_key",),
    "rate_limit_fetcher": ("access_key",),
}

_registry: Dict[int, Tuple[str, Callable[..., Any], Tuple[str, ...]]] = {}
_registry_lock = threading.Lock()
_next_id = itertools.count(1)  # 0 is never handed out: it reads like "unset"

# Running servers: handle -> the callable ids they own, so that stopping a
# server (or the interpreter exiting) also drops its callables.
_servers: Dict[int, List[int]] = {}

# Callable ids a reload replaced, by server handle. A request that began
# before the reload runs on the old configuration and may still call them, so
# they stay registered for RETIRE_AFTER seconds (or until the server stops).
_retired: Dict[int, List[int]] = {}
RETIRE_AFTER = 60.0


def register(kind: str, fn: Callable[..., Any]) -> int:
    """Registers ``fn`` as a callable of ``kind`` and returns its id."""
    if kind not in CALLABLE_ARGS:
        raise ValueError(f"unknown callable kind {kind!r}")
    if not callable(fn):
        raise TypeError(f"{kind} must be callable, got {type(fn).__name__}")
    extras = identity_args(kind, fn)
    with _registry_lock:
        callable_id = next(_next_id)
        _registry[callable_id] = (kind, fn, extras)
    return callable_id


def unregister(callable_ids: Iterable[int]) -> None:
    with _registry_lock:
        for callable_id in callable_ids:
            _registry.pop(callable_id, None)


def _answer(kind: str, name: str, result: Any) -> Tuple[int, str]:
    """Maps a callable's return value to an OSP_CB_* code and the out text.

    Messages name the callable and the type, never the value: values may be
    secrets, and messages travel to S3 clients and logs.
    """
    if kind == "validator":
        if isinstance(result, bool):
            return (CB_OK, "") if result else (CB_NONE, "")
        return CB_BAD_TYPE, f"validator {name} returned {type(result).__name__}, expected bool"
    if result is None:
        return CB_NONE, ""
    if isinstance(result, str):
        return CB_OK, result
    if kind == "bucket_creds_fetcher" and isinstance(result, Mapping):
        for shape in (("access_key", "secret_key"), ("api_key",)):
            if set(result) == set(shape) and all(isinstance(result[k], str) and result[k] for k in shape):
                return CB_OK, json.dumps({k: result[k] for k in shape})
        return CB_BAD_TYPE, (
            f"bucket_creds_fetcher {name} returned a dict that is not "
            "{'access_key': str, 'secret_key': str} or {'api_key': str}"
        )
    if kind == "rate_limit_fetcher":
        # libosp checks the limit's keys and values as strictly as rate_limits'.
        if isinstance(result, Mapping) and all(isinstance(k, str) for k in result):
            try:
                return CB_OK, json.dumps(dict(result), allow_nan=False)
            except (TypeError, ValueError):
                pass
        return CB_BAD_TYPE, f"rate_limit_fetcher {name} returned {type(result).__name__}, expected a dict of numbers or None"
    expected = "str, dict or None" if kind == "bucket_creds_fetcher" else "str or None"
    return CB_BAD_TYPE, f"{kind} {name} returned {type(result).__name__}, expected {expected}"


def _dispatch(callable_id: int, args_json: Any) -> Tuple[int, bytes]:
    with _registry_lock:
        entry = _registry.get(callable_id)
    if entry is None:
        # A request still in flight while its server stops can get here.
        return CB_ERROR, f"unknown callable id {callable_id}".encode()
    kind, fn, extras = entry
    name = callable_name(fn)
    try:
        args = json.loads(ffi.string(args_json).decode("utf-8")) if args_json != ffi.NULL else None
        call_args = [args[key] for key in CALLABLE_ARGS[kind]] if isinstance(args, dict) else None
        call_kwargs = {key: args[key] for key in extras} if isinstance(args, dict) else {}
    except (ValueError, KeyError):
        call_args = None
    if call_args is None or not all(isinstance(a, str) for a in [*call_args, *call_kwargs.values()]):
        return CB_ERROR, f"{kind} {name}: malformed arguments from the proxy".encode()
    try:
        result = fn(*call_args, **call_kwargs)
    except BaseException as exc:  # noqa: B902 - nothing may unwind into Go
        # The traceback only at DEBUG: exception messages may quote arguments.
        logger.warning("%s %s raised %s", kind, name, type(exc).__name__)
        logger.debug("%s %s raised", kind, name, exc_info=True)
        return CB_ERROR, f"{name} raised {type(exc).__name__}".encode()
    code, text = _answer(kind, name, result)
    try:
        return code, text.encode("utf-8")
    except UnicodeEncodeError:  # e.g. lone surrogates
        return CB_BAD_TYPE, f"{kind} {name} returned a str that is not valid Unicode".encode()


@ffi.def_extern(error=CB_ERROR)  # type: ignore[misc]  # cffi is untyped
def _osp_trampoline(
    callable_id: int, args_json: Any, out: Any, out_cap: int, out_len: Any
) -> int:
    """Called by libosp from any thread; must never raise (``error=`` makes
    cffi return OSP_CB_ERROR should anything slip through anyway)."""
    if out == ffi.NULL or out_len == ffi.NULL:
        out_cap = 0  # nowhere to write: only an empty answer fits
    else:
        out_len[0] = 0
    try:
        code, data = _dispatch(callable_id, args_json)
    except BaseException:  # noqa: B902 - a bug here must not unwind into Go
        code, data = CB_ERROR, b"internal error in the Python callback trampoline"
    if len(data) > out_cap:
        if code == CB_OK:
            return CB_TOO_LONG  # an answer may not be cut...
        # ...but a description may; cut at a character boundary.
        data = data[:out_cap].decode("utf-8", "ignore").encode("utf-8")
    if data:
        ffi.memmove(out, data, len(data))
        out_len[0] = len(data)
    return code


def _take_string(ptr: Any) -> Optional[str]:
    """Copies a string returned by libosp and frees it; None for NULL."""
    if ptr == ffi.NULL:
        return None
    try:
        return str(ffi.string(ptr).decode("utf-8", errors="replace"))
    finally:
        lib.osp_free(ptr)


def start(config_json: str, callable_ids: Iterable[int] = ()) -> int:
    """Starts a server; it owns ``callable_ids`` from now on (they are
    unregistered when it stops, or right away if it fails to start)."""
    owned = list(callable_ids)
    err = ffi.new("char **")
    handle = int(lib.osp_server_start(config_json.encode("utf-8"), err))
    if handle <= 0:
        unregister(owned)
        message = _take_string(err[0]) or "osp_server_start failed without a message"
        raise RuntimeError(message)
    with _registry_lock:
        _servers[handle] = owned
    return handle


def reload(handle: int, config_json: str, callable_ids: Iterable[int] = ()) -> None:
    """Swaps a running server's configuration; it owns ``callable_ids`` from
    now on. On success the ids it owned before and does not keep are retired
    (unregistered RETIRE_AFTER seconds later, or when the server stops:
    requests that began before the reload may still call them); on failure
    the new ids are unregistered and ValueError carries libosp's message
    (the server keeps its old configuration)."""
    new = list(callable_ids)
    message = _take_string(lib.osp_server_reload(handle, config_json.encode("utf-8")))
    if message is not None:
        with _registry_lock:
            kept = set(_servers.get(handle, []))
        unregister(i for i in new if i not in kept)
        raise ValueError(message)
    with _registry_lock:
        running = handle in _servers
        old = _servers.get(handle, [])
        if running:
            _servers[handle] = new
    if not running:  # stopped meanwhile (interpreter exit): nothing owns them
        unregister(new)
    dropped = [i for i in old if i not in set(new)]
    if not dropped:
        return
    if not running:
        unregister(dropped)
        return
    with _registry_lock:
        _retired.setdefault(handle, []).extend(dropped)
    timer = threading.Timer(RETIRE_AFTER, _retire, (handle, dropped))
    timer.daemon = True
    timer.start()


def _retire(handle: int, callable_ids: List[int]) -> None:
    with _registry_lock:
        retired = _retired.get(handle)
        if retired is None:
            return  # the server stopped and dropped them already
        _retired[handle] = [i for i in retired if i not in callable_ids]
        if not _retired[handle]:
            del _retired[handle]
    unregister(callable_ids)


def ports(handle: int) -> Dict[str, Optional[int]]:
    """The bound ports: {"http_port": int|None, "https_port": int|None,
    "admin_port": int|None}."""
    text = _take_string(lib.osp_server_ports(handle))
    if text is None:
        raise RuntimeError(f"unknown server handle {handle}")
    bound = json.loads(text)
    return {key: bound.get(key) for key in ("http_port", "https_port", "admin_port")}


def stop(handle: int, timeout_s: float) -> Optional[str]:
    """Stops a server and drops its callables. Returns libosp's message if
    the stop was not clean (the server is stopped either way)."""
    timeout_ms = max(0, int(timeout_s * 1000))
    message = _take_string(lib.osp_server_stop(handle, timeout_ms))
    # Only now: in-flight requests may call the callables until stop returns.
    with _registry_lock:
        owned = _servers.pop(handle, []) + _retired.pop(handle, [])
    unregister(owned)
    return message


def set_request_counting(enabled: bool) -> None:
    lib.osp_set_request_counting(1 if enabled else 0)


def get_request_count() -> int:
    return int(lib.osp_get_request_count())


def reset_request_count() -> None:
    lib.osp_reset_request_count()


def version() -> str:
    """The version of the libosp.so loaded."""
    return str(ffi.string(lib.osp_version()).decode("utf-8"))


def check_version() -> None:
    """Refuses a libosp.so of another version than the package's: the C
    contract may differ, and a mismatch would corrupt memory, not fail."""
    loaded = version()
    if loaded != VERSION:
        raise ImportError(
            f"object_storage_proxy {VERSION} needs libosp {VERSION}, but the libosp.so loaded is {loaded}; "
            "reinstall the package (or rebuild it with `make venv`)"
        )


def config_defaults() -> Dict[str, Dict[str, Any]]:
    """libosp's defaults of every configuration key: {"config": {key:
    default}, "bucket": {cos_map entry key: default}} (osp_config_defaults)."""
    text = _take_string(lib.osp_config_defaults())
    if text is None:  # pragma: no cover - libosp always answers
        raise RuntimeError("osp_config_defaults returned NULL")
    defaults: Dict[str, Dict[str, Any]] = json.loads(text)
    return defaults


def _stop_all_at_exit() -> None:
    # Go threads must not call into an interpreter that is finalizing: stop
    # every server still running, then take the trampoline away.
    with _registry_lock:
        handles = list(_servers)
    for handle in handles:
        try:
            stop(handle, 2.0)
        except Exception:  # noqa: BLE001 - exiting anyway; keep stopping the rest
            logger.debug("stopping server %d at exit failed", handle, exc_info=True)
    lib.osp_register_callback(ffi.NULL)


check_version()
lib.osp_register_callback(lib._osp_trampoline)
atexit.register(_stop_all_at_exit)
