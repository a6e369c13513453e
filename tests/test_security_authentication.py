"""Security property 3 (see security_requests.py for the others): no request
skips authentication. Every method, ``Expect: 100-continue``, query
parameters that look like authentication, path tricks, and admin-looking
paths (``/_osp/...``, ``/metrics``: the admin endpoints have their own
listener). Nothing reaches the backend.
"""

from __future__ import annotations

import datetime
import re
import urllib.parse
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple

import pytest
import requests

import awschunked as ac
from helpers import CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY, CallLog, parse_s3_error, stored_body, stored_keys, utcnow
from object_storage_proxy import ProxyServer
from s3wire import render, send_expect_continue
from security_requests import error_code, presign, raw, signed_headers

METHODS = ("GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS", "PATCH")


# Refusals of a request's shape, made before authentication: a method S3
# does not have, a path no bucket or key may take. They refuse as surely as
# an authentication failure does (nothing is forwarded).
SHAPE_REFUSALS = {("InvalidURI", 400), ("InvalidBucketName", 400), ("MethodNotAllowed", 405)}


def check_refusal(response: ac.Response, method: str, status: int, code: str) -> Optional[str]:
    """None if ``response`` is the S3 error ``code`` with ``status`` (for
    HEAD, whose answers have no body, the status alone), or one of the
    SHAPE_REFUSALS, else what is wrong."""
    shape = {s for _, s in SHAPE_REFUSALS}
    if response.status_code in shape and response.status_code != status:
        if method == "HEAD":
            return None
        if (error_code(response), response.status_code) in SHAPE_REFUSALS:
            return None
    if response.status_code != status:
        return f"status {response.status_code}, want {status}: {response.content[:300]!r}"
    if method == "HEAD":
        return None
    if "xml" not in response.headers.get("Content-Type", ""):
        return f"not an S3 XML error: Content-Type {response.headers.get('Content-Type')!r}"
    try:
        fields = parse_s3_error(response.content)
    except Exception as exc:  # noqa: BLE001 - an unparsable body is the failure reported
        return f"not an S3 XML error: {exc}: {response.content[:300]!r}"
    if fields["Code"] != code:
        return f"code {fields['Code']}, want {code}: {fields}"
    return None


def expect_continue(proxy: ProxyServer, method: str, path: str, headers: Mapping[str, str], body: bytes,
                    wait: float = 3.0) -> Tuple[bool, ac.Response]:
    """Sends the headers with ``Expect: 100-continue``, then the body only if
    ``100 Continue`` came (or nothing came within ``wait`` seconds). Returns
    whether 100 Continue came, and the final response."""
    port = int(proxy.http_port or 0)
    head = render(method, path, [("Host", f"127.0.0.1:{port}"), ("Expect", "100-continue"),
                                 ("Content-Length", str(len(body))), *headers.items()])
    return send_expect_continue("127.0.0.1", port, head, body, method=method, wait=wait, timeout=10)


@pytest.fixture
def guarded(start_proxy: Callable[..., Any], make_bucket: Callable[..., str], direct: Any
            ) -> Iterator[Tuple[ProxyServer, str, str, CallLog]]:
    """A proxy over two buckets (an object "existing" in each), whose
    validator allows everything and records its calls: a request that got
    past authentication would show up there."""
    first, second = make_bucket("guard"), make_bucket("guard")
    for name in (first, second):
        direct.put_object(Bucket=name, Key="existing", Body=b"original content")
    log = CallLog()

    def validator(token: str, bucket: str) -> bool:
        log.add(token, bucket)
        return True

    proxy = start_proxy(first, second, validator=validator)
    yield proxy, first, second, log
    for name in (first, second):
        assert stored_keys(direct, name) == ["existing"], f"something was stored in {name}"
        assert stored_body(direct, name, "existing") == b"original content"
        assert direct.list_multipart_uploads(Bucket=name).get("Uploads", []) == []


def _targets(bucket: str) -> List[str]:
    return ["/", f"/{bucket}", f"/{bucket}/", f"/{bucket}/new-object", f"/{bucket}/existing",
            f"/{bucket}/existing?uploads", f"/{bucket}/existing?acl", f"/{bucket}?delete"]


def _wrong_secret(proxy: ProxyServer, method: str, path: str, body: bytes) -> Dict[str, str]:
    return signed_headers(proxy, method, path, body, secret_key="not-the-secret")


def _unknown_key(proxy: ProxyServer, method: str, path: str, body: bytes) -> Dict[str, str]:
    return signed_headers(proxy, method, path, body, access_key="NOSUCHKEY0123456789",
                          secret_key="whatever-secret")


def _zero_signature(proxy: ProxyServer, method: str, path: str, body: bytes) -> Dict[str, str]:
    headers = signed_headers(proxy, method, path, body)
    headers["Authorization"] = re.sub(r"Signature=[0-9a-f]{64}", "Signature=" + "0" * 64, headers["Authorization"])
    return headers


def _stale_good_signature(proxy: ProxyServer, method: str, path: str, body: bytes) -> Dict[str, str]:
    """A correct signature of an hour ago (replay)."""
    return signed_headers(proxy, method, path, body, at=utcnow() - datetime.timedelta(hours=1))


AUTH_MODES: Dict[str, Tuple[Optional[Callable[..., Dict[str, str]]], int, str]] = {
    "unsigned": (None, 403, "AccessDenied"),
    "wrong-secret": (_wrong_secret, 403, "SignatureDoesNotMatch"),
    "unknown-key": (_unknown_key, 403, "InvalidAccessKeyId"),
    "zero-signature": (_zero_signature, 403, "SignatureDoesNotMatch"),
    "replayed-an-hour-later": (_stale_good_signature, 403, "RequestTimeTooSkewed"),
}


@pytest.mark.parametrize("mode", list(AUTH_MODES))
@pytest.mark.parametrize("method", METHODS)
def test_every_method_is_authenticated(guarded: Tuple[ProxyServer, str, str, CallLog], method: str,
                                       mode: str) -> None:
    proxy, first, _, log = guarded
    sign, status, code = AUTH_MODES[mode]
    body = b"sneaky body" if method in ("PUT", "POST", "PATCH", "OPTIONS") else b""
    problems = []
    for path in _targets(first):
        headers = {} if sign is None else sign(proxy, method, path, body)
        response = raw(proxy, method, path, headers, body or None)
        problem = check_refusal(response, method, status, code)
        if problem:
            problems.append(f"{method} {path} ({mode}): {problem}")
        if b"original content" in response.content:
            problems.append(f"{method} {path} ({mode}): the object's content was returned")
    assert not problems, "\n".join(problems)
    assert log.calls == [], "a refused request reached the validator"


@pytest.mark.parametrize("method", ["PUT", "POST", "PATCH"])
@pytest.mark.parametrize("mode", ["unsigned", "wrong-secret"])
def test_expect_100_continue_does_not_skip_authentication(guarded: Tuple[ProxyServer, str, str, CallLog],
                                                          method: str, mode: str) -> None:
    proxy, first, _, log = guarded
    sign, status, code = AUTH_MODES[mode]
    body = b"e" * 50_000
    for path in (f"/{first}/expect-object", f"/{first}/expect-object?uploads", f"/{first}/existing"):
        headers = {} if sign is None else sign(proxy, method, path, body)
        got_continue, response = expect_continue(proxy, method, path, headers, body)
        assert check_refusal(response, method, status, code) is None, (path, response.status_code,
                                                                        response.content[:300])
        # The refusal is known from the headers: the body is not asked for.
        assert not got_continue, f"{method} {path}: 100 Continue sent to an unauthenticated client"
    assert log.calls == []


# (query, method, expected status, expected code): S3's answers to
# requests whose query only looks like authentication.
_FAKE_SIG = "a" * 64
AUTH_LOOKING_QUERIES: List[Tuple[str, str, int, str]] = [
    (f"X-Amz-Signature={_FAKE_SIG}", "GET", 400, "AuthorizationQueryParametersError"),
    (f"X-Amz-Signature={_FAKE_SIG}", "PUT", 400, "AuthorizationQueryParametersError"),
    ("X-Amz-Credential=" + urllib.parse.quote(f"{CLIENT_ACCESS_KEY}/20250101/us-east-1/s3/aws4_request", safe=""),
     "GET", 400, "AuthorizationQueryParametersError"),
    ("X-Amz-Algorithm=AWS4-HMAC-SHA256", "DELETE", 400, "AuthorizationQueryParametersError"),
    (f"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature={_FAKE_SIG}&X-Amz-Date=20250101T000000Z",
     "GET", 400, "AuthorizationQueryParametersError"),
    (f"x-amz-signature={_FAKE_SIG}", "GET", 403, "AccessDenied"),  # another name: just a parameter
    ("uploads", "POST", 403, "AccessDenied"),
    ("uploads=", "POST", 403, "AccessDenied"),
    ("acl", "PUT", 403, "AccessDenied"),
    ("acl", "GET", 403, "AccessDenied"),
    ("x-id=GetObject", "GET", 403, "AccessDenied"),
    ("x-id=PutObject", "PUT", 403, "AccessDenied"),
    ("uploadId=x&partNumber=1", "PUT", 403, "AccessDenied"),
    ("AWSAccessKeyId=" + CLIENT_ACCESS_KEY + "&Signature=abc%3D&Expires=9999999999", "GET", 400, "InvalidRequest"),
    ("", "PUT", 403, "AccessDenied"),  # a bare trailing '?'
]


@pytest.mark.parametrize("query, method, status, code", AUTH_LOOKING_QUERIES,
                         ids=[f"{m}?{q[:40]}" for q, m, _, _ in AUTH_LOOKING_QUERIES])
def test_auth_looking_query_parameters_do_not_authenticate(
        guarded: Tuple[ProxyServer, str, str, CallLog], query: str, method: str, status: int, code: str) -> None:
    proxy, first, _, log = guarded
    body = b"x" if method in ("PUT", "POST") else None
    for key in ("existing", "query-object"):
        path = f"/{first}/{key}?{query}"
        response = raw(proxy, method, path, {}, body)
        assert check_refusal(response, method, status, code) is None, (path, response.status_code,
                                                                        response.content[:400])
        assert b"original content" not in response.content
        # With a wrongly signed Authorization header beside them, the
        # signature is checked (or two auth mechanisms refused).
        headers = _wrong_secret(proxy, method, path, body or b"")
        response = raw(proxy, method, path, headers, body)
        assert response.status_code in (400, 403), (path, response.status_code, response.content[:400])
        assert error_code(response) in ("SignatureDoesNotMatch", "InvalidArgument", "InvalidRequest",
                                        "AuthorizationQueryParametersError"), (path, response.content[:400])
    assert log.calls == []


def test_presigned_url_with_a_wrong_signature_or_both_mechanisms(
        guarded: Tuple[ProxyServer, str, str, CallLog]) -> None:
    proxy, first, _, log = guarded
    url = f"http://127.0.0.1:{proxy.http_port}/{first}/existing"
    now = utcnow()
    for access_key, secret_key, code in ((CLIENT_ACCESS_KEY, "not-the-secret", "SignatureDoesNotMatch"),
                                         ("NOSUCHKEY0123456789", "x", "InvalidAccessKeyId")):
        for method in ("GET", "PUT", "DELETE"):
            signed_url = presign(url, access_key, secret_key, now, method)
            parts = urllib.parse.urlsplit(signed_url)
            response = raw(proxy, method, f"{parts.path}?{parts.query}", {}, b"x" if method == "PUT" else None)
            assert check_refusal(response, method, 403, code) is None, (method, response.content[:300])
    good = urllib.parse.urlsplit(presign(url, CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY, now))
    both = signed_headers(proxy, "GET", f"/{first}/existing")
    response = raw(proxy, "GET", f"{good.path}?{good.query}", both)
    assert check_refusal(response, "GET", 400, "InvalidArgument") is None, response.content[:300]
    assert log.calls == []


PATH_TRICKS = [
    "//{b}/trick-1",
    "/{b}/./trick-2",
    "/{b}/%2e%2e/{o}/trick-3",
    "/{b}/../{o}/trick-4",
    "/{b}/trick-5?",
    "/%2F{b}/trick-6",
    "/{b}%2Ftrick-7",
    "/{B}/trick-8",
    "/{b_enc}/trick-9",
    "/{b}//trick-10",
    "/{b}/trick-11/..",
    "/./{b}/trick-12",
    "/{b}/%00trick-13",
    "/{b}/existing;x=y",
]


@pytest.mark.parametrize("mode", ["unsigned", "wrong-secret", "zero-signature"])
@pytest.mark.parametrize("method", ["PUT", "GET", "DELETE", "POST"])
def test_path_tricks_do_not_skip_authentication(guarded: Tuple[ProxyServer, str, str, CallLog],
                                                method: str, mode: str) -> None:
    proxy, first, second, log = guarded
    sign, status, code = AUTH_MODES[mode]
    body = b"tricky" if method in ("PUT", "POST") else b""
    problems = []
    for template in PATH_TRICKS:
        path = template.format(b=first, o=second, B=first.upper(), b_enc=f"%{ord(first[0]):02X}{first[1:]}")
        headers = {} if sign is None else sign(proxy, method, path, body)
        response = raw(proxy, method, path, headers, body or None)
        problem = check_refusal(response, method, status, code)
        if problem:
            problems.append(f"{method} {path} ({mode}): {problem}")
    assert not problems, "\n".join(problems)
    assert log.calls == []


def test_admin_paths_are_no_way_around(guarded: Tuple[ProxyServer, str, str, CallLog]) -> None:
    """The S3 listener has no admin paths (they live on the admin
    listener): /_osp/..., /healthz, /metrics are S3 requests like any
    other, authenticated, whatever the method or spelling."""
    proxy, first, _, log = guarded
    problems = []
    paths = ("/_osp/metrics", "/_osp/healthz", "/_osp/readyz", "/metrics", "/healthz", "/readyz",
             f"/_osp/../{first}/existing", f"/_osp/metrics/../../{first}/existing", f"/_osp/{first}/existing",
             "/_osp//metrics", "/_osp/metrics%2F..%2F..%2F" + first + "%2Fexisting", "/%5Fosp/../" + first + "/existing",
             "/_osp/", "/_OSP/metrics", "//_osp/metrics", f"//_osp/../{first}/existing", "/_osp/metrics?uploads")
    for method in ("GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS", "PATCH"):
        for path in paths:
            response = raw(proxy, method, path, {}, b"x" if method in ("PUT", "POST", "PATCH") else None)
            problem = check_refusal(response, method, 403, "AccessDenied")
            if problem:
                problems.append(f"{method} {path}: {problem}")
            if b"original content" in response.content or b"go_goroutines" in response.content:
                problems.append(f"{method} {path}: answered {response.content[:100]!r}")
    assert not problems, "\n".join(problems)
    # A correctly signed PUT to /_osp/... is an S3 request for bucket "_osp":
    # not in cos_map, so nothing is stored anywhere.
    response = raw(proxy, "PUT", "/_osp/metrics", signed_headers(proxy, "PUT", "/_osp/metrics", b"x"), b"x")
    assert check_refusal(response, "PUT", 404, "NoSuchBucket") is None, response.content[:300]
    # The admin listener itself answers only its three GET paths.
    assert proxy.admin_url, "the fixture's proxy has an admin listener"
    for path in ("/" + first + "/existing", f"/healthz/../{first}/existing", "/_osp/metrics"):
        response = requests.get(proxy.admin_url + path, timeout=10)
        assert response.status_code == 404 and b"original content" not in response.content, (path, response.status_code)
    assert log.calls == []


@pytest.fixture
def traversal(start_proxy: Callable[..., Any], make_bucket: Callable[..., str], direct: Any
              ) -> Tuple[ProxyServer, str, str]:
    """Buckets A (allowed) and B (forbidden) and a proxy whose identity-aware
    validator lets a client read anything in A but write only keys under
    incoming/ in A, and do nothing in B."""
    allowed, forbidden = make_bucket("trav-a"), make_bucket("trav-b")
    direct.put_object(Bucket=forbidden, Key="secret-object", Body=b"B's secret content")
    direct.put_object(Bucket=allowed, Key="outside", Body=b"A's unwritable object")

    def validator(token: str, bucket: str, method: str, key: str, operation: str) -> bool:
        if bucket != allowed:
            return False
        return method in ("GET", "HEAD") or key.startswith("incoming/")

    return start_proxy(allowed, forbidden, validator=validator), allowed, forbidden


def _signed_put(proxy: ProxyServer, sent: str, signed: Optional[str] = None) -> ac.Response:
    """PUT ``sent``, correctly signed (over ``signed``, the proxy's canonical
    spelling, when the two differ)."""
    return raw(proxy, "PUT", sent, signed_headers(proxy, "PUT", sent, b"planted", sign_path=signed), b"planted")


def test_signed_dot_segments_do_not_leave_the_authorized_bucket(
        traversal: Tuple[ProxyServer, str, str], direct: Any) -> None:
    """Correctly signed paths that climb from A into B with '..' (plain or
    percent-encoded): the validator is asked about A, so nothing may happen
    in B."""
    proxy, a, b = traversal
    problems = []
    for sent, signed in ((f"/{a}/../{b}/planted", None),
                         (f"/{a}/%2e%2e/{b}/planted-2", f"/{a}/../{b}/planted-2"),
                         (f"/{a}/incoming/../../{b}/planted-3", None),
                         (f"/{a}/incoming/%2E%2E/%2E%2E/{b}/planted-4", f"/{a}/incoming/../../{b}/planted-4")):
        if _signed_put(proxy, sent, signed).status_code == 200:
            problems.append(f"PUT {sent} was accepted")
    for sent in (f"/{a}/../{b}/secret-object", f"/{a}/incoming/../../{b}/secret-object",
                 f"/{a}/%2E%2E/{b}/secret-object"):
        signed = sent.replace("%2E", ".")
        response = raw(proxy, "GET", sent, signed_headers(proxy, "GET", sent, sign_path=signed))
        if b"B's secret content" in response.content:
            problems.append(f"GET {sent} returned bucket B's object")
    assert stored_keys(direct, b) == ["secret-object"], problems
    assert not problems, "\n".join(problems)


def test_signed_dot_segments_do_not_escape_a_key_prefix_policy(
        traversal: Tuple[ProxyServer, str, str], direct: Any) -> None:
    """The validator allows writes under incoming/ only. The client writes
    incoming/../outside: the validator sees a key under incoming/ and says
    yes; the backend must then not act on "outside". (The key the validator
    decides on must be the key the backend acts on.)"""
    proxy, a, _ = traversal
    problems = []
    for sent, signed in ((f"/{a}/incoming/../outside", None),
                         (f"/{a}/incoming/%2E%2E/outside", f"/{a}/incoming/../outside"),
                         (f"/{a}/incoming/./../outside", None)):
        response = _signed_put(proxy, sent, signed)
        if response.status_code == 200:
            problems.append(f"PUT {sent} was accepted ({response.status_code})")
    body = stored_body(direct, a, "outside")
    assert body == b"A's unwritable object", (
        f"object 'outside' overwritten through incoming/../ (a write the validator never allowed): {problems}")
    assert not problems, "\n".join(problems)
