"""The ``osp`` command (also ``python -m object_storage_proxy``).

    osp serve --config /etc/osp/osp.toml    run the proxy until SIGTERM/SIGINT;
                                            SIGHUP re-reads the file
    osp check-config /etc/osp/osp.toml      report every problem of a file
        [--bucket NAME ...]                 and which entry serves each NAME

Exit codes: 0 success, 1 a bad configuration (or the proxy could not start),
2 a usage error.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import signal
import sys
import threading
from types import FrameType
from typing import Any, Dict, List, Optional, Sequence

from . import __version__
from .config import ProxyServerConfig, is_pattern, valid_bucket_name
from .configfile import bucket_header, check_config, load_config, ConfigFileError
from .server import ProxyServer, _load_dotenv

logger = logging.getLogger("object_storage_proxy")

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR}
_SLOG_LEVELS = {logging.DEBUG: "DEBUG", logging.INFO: "INFO", logging.WARNING: "WARN", logging.ERROR: "ERROR"}


class SlogFormatter(logging.Formatter):
    """Log records in the shape of the proxy's own (Go log/slog) lines, so
    one stream reads alike: ``time=... level=INFO msg="..." key=value`` or
    one JSON object per line. ``extra={"fields": {...}}`` adds key/values."""

    def __init__(self, json_lines: bool) -> None:
        super().__init__()
        self.json_lines = json_lines

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc).astimezone()
        stamp = when.isoformat(timespec="milliseconds")
        fields: Dict[str, Any] = {
            "time": stamp[:-6] + "Z" if stamp.endswith("+00:00") else stamp,
            "level": _SLOG_LEVELS.get(record.levelno, record.levelname),
            "msg": record.getMessage(),
            "logger": record.name,
        }
        fields.update(getattr(record, "fields", {}) or {})
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        if self.json_lines:
            return json.dumps(fields, default=str)
        return " ".join(f"{key}={_text_value(value)}" for key, value in fields.items())


def _text_value(value: Any) -> str:
    text = str(value)
    if text and not any(c in text for c in ' "=\n\t\\'):
        return text
    return json.dumps(text)


def setup_logging(config: Optional[ProxyServerConfig]) -> None:
    """Python's log lines (this command's, the callables') to stderr in the
    config's log_format at its log_level."""
    log_format = config.log_format if config else (os.environ.get("OSP_LOG_FORMAT") or "text").lower()
    level = _LEVELS.get(config.log_level if config else (os.environ.get("OSP_LOG_LEVEL") or "info").lower(), logging.INFO)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_osp_cli", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(SlogFormatter(json_lines=log_format == "json"))
    handler._osp_cli = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)


def _summary(config: ProxyServerConfig) -> str:
    listeners = []
    if config.http_port is not None:
        listeners.append(f"http {config.bind_address}:{config.http_port}")
    if config.https_port is not None:
        listeners.append(f"https {config.bind_address}:{config.https_port}")
    if config.admin_port is not None:
        listeners.append(f"admin {config.admin_bind}:{config.admin_port}")
    keys = len(config.hmac_keystore or {})
    callables = ", ".join(sorted(config.callables())) or "none"
    patterns = sum(1 for key in config.cos_map if is_pattern(key))
    exact = len(config.cos_map) - patterns
    pattern_text = f", {patterns} bucket pattern{'s' if patterns != 1 else ''}" if patterns else ""
    return (
        f"{exact} bucket{'s' if exact != 1 else ''}{pattern_text}, "
        f"{keys} client key{'s' if keys != 1 else ''}, callables: {callables}, "
        f"listeners: {', '.join(listeners)}"
    )


# ---------------------------------------------------------------------------
# check-config


def check_command(path: str, buckets: Sequence[str] = ()) -> int:
    _load_dotenv()
    config, errors = check_config(path)
    if config is None:
        count = f"{len(errors)} error{'s' if len(errors) != 1 else ''}"
        print(f"{path}: {count}", file=sys.stderr)
        for error in errors:
            print(f"  {error}", file=sys.stderr)
        return 1
    print(f"{path}: OK ({_summary(config)})")
    served = [_describe_bucket(config, bucket) for bucket in buckets]
    return 0 if all(served) else 1


def _describe_bucket(config: ProxyServerConfig, bucket: str) -> bool:
    """Prints which entry serves ``bucket`` (never its credentials); False
    when none does."""
    if not valid_bucket_name(bucket):
        print(f"bucket {bucket!r}: not a valid bucket name; requests get InvalidBucketName")
        return False
    key = config.entry_for(bucket)
    if key is None:
        print(f"bucket {bucket!r}: served by no entry; requests get NoSuchBucket")
        return False
    entry = config.cos_map[key]
    kind = "pattern" if is_pattern(key) else "exact name"
    print(
        f"bucket {bucket!r}: served by {bucket_header(key)} ({kind}): "
        f"{entry['scheme']}://{entry['host']}:{entry['port']}, {entry['addressing_style']} style, "
        f"region {entry['region']}, ttl {entry['ttl']}s"
    )
    return True


# ---------------------------------------------------------------------------
# serve


class _Signals:
    """Signals noted by their handlers and acted on by the main loop (a
    handler must not stop or reload the server itself)."""

    def __init__(self) -> None:
        self.wake = threading.Event()
        self.pending: List[int] = []
        self.previous: Dict[int, Any] = {}

    def install(self, *signums: int) -> None:
        for signum in signums:
            self.previous[signum] = signal.signal(signum, self._note)

    def restore(self) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)

    def _note(self, signum: int, frame: Optional[FrameType]) -> None:
        self.pending.append(signum)
        self.wake.set()

    def next(self) -> int:
        """Waits for the next signal (a timed wait keeps the main thread
        responsive)."""
        while not self.pending:
            self.wake.wait(0.5)
            self.wake.clear()
        return self.pending.pop(0)


def reload_from_file(server: ProxyServer, path: str) -> bool:
    """Re-reads ``path`` and reloads ``server`` with it; a file with problems
    (or one that changes the listeners) is logged and the running
    configuration kept. True if reloaded."""
    try:
        config = load_config(path)
    except ConfigFileError as exc:
        for error in exc.errors:
            logger.error("config: %s", error, extra={"fields": {"file": path}})
        logger.error(
            "reload failed: %s has %d error%s; keeping the running configuration",
            path,
            len(exc.errors),
            "s" if len(exc.errors) != 1 else "",
            extra={"fields": {"file": path}},
        )
        return False
    except Exception as exc:  # noqa: BLE001 - e.g. a callable's module failing oddly
        logger.error("reload failed: %s: %s; keeping the running configuration", type(exc).__name__, exc)
        return False
    try:
        server.reload(config)
    except (TypeError, ValueError, RuntimeError) as exc:
        logger.error("reload failed: %s; keeping the running configuration", exc, extra={"fields": {"file": path}})
        return False
    except Exception as exc:  # noqa: BLE001 - a reload must never take the server down
        logger.error(
            "reload failed: %s: %s; keeping the running configuration", type(exc).__name__, exc,
            extra={"fields": {"file": path}},
        )
        logger.debug("reload failed", exc_info=True)
        return False
    setup_logging(config)
    logger.info("reloaded %s: %s", path, _summary(config), extra={"fields": {"file": path}})
    return True


def serve_command(path: str, drain_timeout: float) -> int:
    # Signals first: one arriving while the server starts is acted on once
    # it runs, never lost nor fatal.
    signals = _Signals()
    in_main = threading.current_thread() is threading.main_thread()
    if in_main:
        signals.install(signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    try:
        return _serve(path, drain_timeout, signals)
    finally:
        if in_main:
            signals.restore()


def _serve(path: str, drain_timeout: float, signals: "_Signals") -> int:
    _load_dotenv()
    setup_logging(None)
    try:
        config = load_config(path)
    except ConfigFileError as exc:
        for error in exc.errors:
            logger.error("config: %s", error, extra={"fields": {"file": path}})
        logger.error("%s has %d error%s; not starting", path, len(exc.errors), "s" if len(exc.errors) != 1 else "")
        return 1
    setup_logging(config)
    server = ProxyServer(config)
    try:
        server.start()
    except (TypeError, ValueError, RuntimeError) as exc:
        logger.error("cannot start: %s", exc)
        return 1
    ports = {"http_port": server.http_port, "https_port": server.https_port, "admin_port": server.admin_port}
    logger.info(
        "serving %s on %s (%s)", path, server.endpoint_url, _summary(config),
        extra={"fields": {k: v for k, v in ports.items() if v is not None}},
    )
    try:
        while True:
            try:
                signum = signals.next()
            except KeyboardInterrupt:  # not the main thread's signals: Ctrl+C still stops
                signum = signal.SIGINT
            if signum == signal.SIGHUP:
                logger.info("SIGHUP: reloading %s", path)
                reload_from_file(server, path)
                continue
            logger.info("%s: stopping (in-flight requests get up to %gs)", signal.Signals(signum).name, drain_timeout)
            break
    finally:
        server.stop(drain_timeout)
    logger.info("stopped")
    return 0


# ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="osp",
        description="object-storage-proxy: an S3 reverse proxy configured by a TOML file.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    serve = commands.add_parser(
        "serve",
        help="run the proxy (SIGTERM/SIGINT stop it, SIGHUP reloads the file)",
        description="Runs the proxy until SIGTERM or SIGINT; SIGHUP re-reads the file and reloads "
        "buckets, keys, callables and settings (not the listeners) without dropping requests.",
    )
    serve.add_argument("--config", "-c", required=True, metavar="FILE", help="the TOML configuration file")
    serve.add_argument(
        "--drain-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="on stop, how long in-flight requests may take to finish (default 10)",
    )
    check = commands.add_parser(
        "check-config",
        help="check a configuration file and report every problem",
        description="Reads FILE as `serve` would (secrets, callables, TLS files) and reports every "
        "problem at once. Exit 0 if it is good, 1 if not. Never prints secrets.",
    )
    check.add_argument("file", metavar="FILE", help="the TOML configuration file")
    check.add_argument(
        "--bucket",
        "-b",
        action="append",
        default=[],
        metavar="NAME",
        help="also say which [buckets] entry serves bucket NAME (its own, or the longest pattern "
        "it matches); may be repeated. Exit 1 if one is served by no entry",
    )
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "check-config":
        return check_command(args.file, args.bucket)
    if args.drain_timeout < 0:
        build_parser().error("--drain-timeout must be >= 0")
    return serve_command(args.config, args.drain_timeout)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
