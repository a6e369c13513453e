"""A backend's 5xx (see faultclient.py for the suite): retried for reads,
passed on for writes. A GET/HEAD that gets 500 or 503 from its backend is
retried (at most twice, with a short backoff), a request with a body
(PUT/POST) never is.
"""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any, Callable, Sequence

import pytest

from faultbackend import FaultBackend, Forward, S3Error
from faultclient import call, ok
from helpers import assert_s3_error, stored_keys
from leakguard import LeakGuard


@pytest.mark.parametrize("method, status, code, failures", [
    pytest.param("GET", 503, "ServiceUnavailable", 1, id="GET-503-once"),
    pytest.param("GET", 500, "InternalError", 2, id="GET-500-twice"),
    pytest.param("HEAD", 500, "InternalError", 1, id="HEAD-500-once"),
    pytest.param("HEAD", 503, "ServiceUnavailable", 2, id="HEAD-503-twice"),
])
def test_read_retried_after_backend_5xx(fault_proxy: Callable[..., Any], fault: FaultBackend, bucket: str,
                                        direct: Any, leaks: LeakGuard, method: str, status: int, code: str,
                                        failures: int) -> None:
    """A GET/HEAD has no body and changes nothing: after a 500/503 from the
    backend the proxy tries again (up to twice, soon), so the client gets
    the 200 and never sees the transient error. Each retry is signed anew
    (versitygw checks the one that is passed through)."""
    data = b"retried " * 100
    direct.put_object(Bucket=bucket, Key="k", Body=data)
    proxy = fault_proxy()
    ok(call(proxy, "GET", f"/{bucket}/k"))
    leaks.baseline(proxy)
    fault.clear()

    fault.script(*[S3Error(status, code)] * failures, then=Forward())
    started = time.monotonic()
    r = call(proxy, method, f"/{bucket}/k")
    elapsed = time.monotonic() - started
    seen = fault.requests
    assert r.status_code == 200, (f"{method} got {r.status_code} after {failures} backend {status}(s); "
                                  f"the backend saw {len(seen)} request(s)", r.content[:300])
    assert (r.content if method == "GET" else r.headers.get("Content-Length")) == (
        data if method == "GET" else str(len(data)))
    assert [(s.method, s.target) for s in seen] == [(method, f"/{bucket}/k")] * (failures + 1)
    assert elapsed < 3.0, f"retries took {elapsed:.2f}s: the backoff should be short"
    leaks.check()


@pytest.mark.parametrize("status, code", [(500, "InternalError"), (503, "ServiceUnavailable")])
def test_read_retries_are_bounded(fault_proxy: Callable[..., Any], fault: FaultBackend, bucket: str, direct: Any,
                                  leaks: LeakGuard, status: int, code: str) -> None:
    """A backend that keeps failing gets exactly 3 attempts (1 + 2 retries),
    within a short time; the client gets the backend's last error (status
    and S3 code), and the next request succeeds once the backend recovers."""
    direct.put_object(Bucket=bucket, Key="k", Body=b"v")
    proxy = fault_proxy()
    ok(call(proxy, "GET", f"/{bucket}/k"))
    leaks.baseline(proxy)
    fault.clear()

    fault.script(then=S3Error(status, code))
    started = time.monotonic()
    r = call(proxy, "GET", f"/{bucket}/k")
    elapsed = time.monotonic() - started
    assert_s3_error(r, status, code)
    assert len(fault.requests) == 3, f"the backend saw {len(fault.requests)} attempts, expected 1 + 2 retries"
    assert elapsed < 3.0, f"gave up after {elapsed:.2f}s"
    leaks.check()
    fault.script(then=Forward())
    assert ok(call(proxy, "GET", f"/{bucket}/k")).content == b"v"


def test_read_4xx_is_not_retried(fault_proxy: Callable[..., Any], fault: FaultBackend, bucket: str,
                                 leaks: LeakGuard) -> None:
    """Only a backend's server errors are worth a retry: a 404 NoSuchKey is
    the answer, passed on after one attempt."""
    proxy = fault_proxy()
    call(proxy, "GET", f"/{bucket}/warm")
    leaks.baseline(proxy)
    fault.clear()
    assert_s3_error(call(proxy, "GET", f"/{bucket}/missing"), 404, "NoSuchKey")
    assert len(fault.requests) == 1
    leaks.check()


def _delete_objects_body(keys: Sequence[str]) -> bytes:
    objects = "".join(f"<Object><Key>{k}</Key></Object>" for k in keys)
    return f'<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{objects}</Delete>'.encode()


@pytest.mark.parametrize("operation, status, code", [
    pytest.param("PutObject", 503, "ServiceUnavailable", id="PutObject-503"),
    pytest.param("PutObject", 500, "InternalError", id="PutObject-500"),
    pytest.param("DeleteObjects", 503, "SlowDown", id="DeleteObjects-503-SlowDown"),
])
def test_write_with_body_is_not_retried(fault_proxy: Callable[..., Any], fault: FaultBackend, bucket: str,
                                        direct: Any, leaks: LeakGuard, operation: str, status: int,
                                        code: str) -> None:
    """A PUT or POST with a body is not replayed by the proxy: the client
    gets the backend's error as it was (status and S3 code), the backend saw
    exactly one request, and nothing changed at versitygw. The client's own
    retry then succeeds."""
    direct.put_object(Bucket=bucket, Key="kept", Body=b"kept")
    proxy = fault_proxy()
    ok(call(proxy, "GET", f"/{bucket}/kept"))
    leaks.baseline(proxy)
    fault.clear()

    if operation == "PutObject":
        method, path, body, headers = "PUT", f"/{bucket}/new", b"new object " * 100, None
    else:
        body = _delete_objects_body(["kept"])
        md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
        method, path, headers = "POST", f"/{bucket}?delete=", {"Content-MD5": md5, "Content-Type": "application/xml"}
    fault.script(S3Error(status, code), then=Forward())
    started = time.monotonic()
    r = call(proxy, method, path, body=body, headers=headers)
    assert_s3_error(r, status, code)
    assert time.monotonic() - started < 3.0
    seen = fault.requests
    assert len(seen) == 1, f"the backend saw {len(seen)} {method}s: a request with a body was replayed"
    assert seen[0].body_complete
    leaks.check()
    assert stored_keys(direct, bucket) == ["kept"]

    ok(call(proxy, method, path, body=body, headers=headers))
    assert stored_keys(direct, bucket) == (["kept", "new"] if operation == "PutObject" else [])
