"""An example proxy configuration, in the spirit of the original project's
test_server.py: a cos_map, a validator and an hmac_fetcher written in Python.

`demo.py` fills in the backend (a local versitygw); point `BACKEND` at your
own S3 or IBM COS endpoint to use it for real.
"""

from __future__ import annotations

import logging

log = logging.getLogger("example")

# The keys clients use to talk to the proxy. The proxy verifies their
# signatures with these secrets; the backend never sees them.
CLIENT_KEYS = {
    "demo-access-key": "demo-secret-key",
    "readonly-access-key": "readonly-secret-key",
}

# Which client may use which bucket.
GRANTS = {
    "demo-access-key": {"demo-bucket", "demo-logs"},
    "readonly-access-key": {"demo-bucket"},
}


def hmac_fetcher(access_key: str) -> str | None:
    """Return the secret of a client access key, or None if unknown."""
    return CLIENT_KEYS.get(access_key)


def validator(token: str, bucket: str) -> bool:
    """May the client holding `token` (its access key id) use `bucket`?"""
    allowed = bucket in GRANTS.get(token, set())
    log.info("validator: %s on %s -> %s", token, bucket, allowed)
    return allowed


def cos_map(host: str, port: int, access_key: str, secret_key: str) -> dict[str, dict]:
    """Both demo buckets live on one local S3 server reached by path style."""
    backend = {
        "host": host,
        "port": port,
        "region": "us-east-1",
        "scheme": "http",
        "addressing_style": "path",
        "access_key": access_key,
        "secret_key": secret_key,
        "ttl": 300,
    }
    return {"demo-bucket": dict(backend), "demo-logs": dict(backend)}
