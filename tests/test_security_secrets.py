"""Security property 5 (see security_requests.py for the others): no secret,
signature, bearer token or API key in the admin listener's ``/metrics`` or
in an error body.
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import urllib.parse
from typing import Any, Callable, Dict, List, Mapping, Tuple

from botocore.exceptions import ClientError

import awschunked as ac
from bearer_front import BearerFront
from helpers import (
    BACKEND_ACCESS_KEY,
    BACKEND_SECRET_KEY,
    CLIENT_ACCESS_KEY,
    CLIENT_SECRET_KEY,
    OTHER_ACCESS_KEY,
    OTHER_SECRET_KEY,
    REGION,
    free_port,
    make_client,
    object_exists,
    parse_s3_error,
    utcnow,
)
from iam_server import IamServer
from observe import scrape
from s3wire import signing_key
from security_requests import error_code, presign, raw, signed_headers


def send_forged_upload(upload: ac.Upload, timeout: float = 10.0) -> ac.Response:
    """Sends an aws-chunked upload whose signatures were tampered with: the
    proxy must answer (with its refusal) within ``timeout`` seconds, not
    leave the client hanging on a backend still waiting for the body."""
    try:
        return ac.send(upload, timeout=timeout)
    except (socket.timeout, TimeoutError) as exc:
        raise AssertionError(
            f"no answer within {timeout}s to an aws-chunked upload with a forged signature "
            f"({upload.mode} {upload.path})") from exc


def windows(value: str, size: int = 16) -> List[str]:
    """Every substring of ``value`` of ``size`` characters (the whole value
    if shorter): a leak of any part of a secret is a leak."""
    if len(value) <= size:
        return [value]
    return [value[i:i + size] for i in range(len(value) - size + 1)]


def leaks(text: str, named: Mapping[str, str], size: int = 16) -> Dict[str, str]:
    """What of ``named`` (description -> secret) shows up in ``text``, by
    any ``size``-character piece."""
    found: Dict[str, str] = {}
    lowered = text.lower()
    for what, value in named.items():
        for piece in windows(value, size):
            if piece in text or (piece.lower() in lowered and re.fullmatch(r"[0-9a-f]+", piece.lower())):
                at = text.lower().find(piece.lower())
                found[what] = f"{piece!r} in ...{text[max(0, at - 80):at + len(piece) + 80]!r}..."
                break
    return found


def signing_key_hex(secret: str, date: str, region: str = REGION) -> str:
    return signing_key(secret, date, region).hex()


def signature_of(authorization: str) -> str:
    match = re.search(r"Signature=([0-9a-f]{64})", authorization)
    assert match, authorization
    return match.group(1)


API_KEY = "apikey-sec-" + secrets.token_hex(16)
BAD_API_KEY = "apikey-sec-revoked-" + secrets.token_hex(16)


# The API keys conftest's ``iam`` knows.
IAM_API_KEYS = {API_KEY}


def test_metrics_hold_no_secret_after_a_hostile_workload(
        start_proxy: Callable[..., Any], make_bucket: Callable[..., str], backend: Any, iam: IamServer,
        front: BearerFront) -> None:
    plain, fetched_b, ibm, ibm_bad, wrong_backend, down = (
        make_bucket("m-plain"), make_bucket("m-fetched"), make_bucket("m-ibm"), make_bucket("m-ibmbad"),
        make_bucket("m-wrongbe"), make_bucket("m-down"))
    fetched_key = "FETCHEDKEY" + secrets.token_hex(5).upper()
    fetched_secret = "fetched-secret-" + secrets.token_hex(16)
    wrong_secret = "wrong-secret-" + secrets.token_hex(16)
    wrong_backend_secret = "wrong-backend-secret-" + secrets.token_hex(16)
    client_bearer = "client-bearer-" + secrets.token_hex(16)
    unknown_key = "NOSUCHKEY" + secrets.token_hex(5).upper()
    secret_looking_bucket = "s3cr3t-" + secrets.token_hex(12)
    secret_object_key = "object-key-" + secrets.token_hex(12)

    cos_map = {
        fetched_b: backend.entry(creds=False),
        ibm: front.entry(API_KEY),
        ibm_bad: front.entry(BAD_API_KEY),
        wrong_backend: backend.entry(secret_key=wrong_backend_secret),
        down: {**backend.entry(), "port": free_port()},
    }
    proxy = start_proxy(
        plain, cos_map=cos_map, iam_url=iam.url, log_level="debug",
        hmac_fetcher=lambda ak: fetched_secret if ak == fetched_key else None,
        bucket_creds_fetcher=lambda token, name: {"access_key": BACKEND_ACCESS_KEY, "secret_key": BACKEND_SECRET_KEY},
        validator=lambda token, name: not (token == OTHER_ACCESS_KEY and name == plain))
    url = proxy.endpoint_url
    good = make_client(url, CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY)
    other = make_client(url, OTHER_ACCESS_KEY, OTHER_SECRET_KEY)
    fetched = make_client(url, fetched_key, fetched_secret)
    wrong = make_client(url, CLIENT_ACCESS_KEY, wrong_secret)
    unknown = make_client(url, unknown_key, "unknown-secret-" + secrets.token_hex(8))
    signatures: List[str] = []

    def attempt(call: Callable[[], Any]) -> None:
        try:
            call()
        except ClientError:
            pass

    for name in (plain, fetched_b, ibm):
        good.put_object(Bucket=name, Key=secret_object_key, Body=b"payload")
        good.get_object(Bucket=name, Key=secret_object_key)["Body"].read()
        fetched.list_objects_v2(Bucket=name)
    for name in (plain, ibm_bad, wrong_backend, down, secret_looking_bucket):
        for client in (good, wrong, unknown, other):
            attempt(lambda: client.get_object(Bucket=name, Key=secret_object_key))
            attempt(lambda: client.put_object(Bucket=name, Key=secret_object_key, Body=b"x"))
    for headers in ({"Authorization": f"Bearer {client_bearer}"}, {"X-Api-Key": API_KEY},
                    {"Authorization": f"AWS {CLIENT_ACCESS_KEY}:{wrong_secret}"}):
        raw(proxy, "GET", f"/{plain}/{secret_object_key}", headers)
    now = utcnow()
    for secret in (wrong_secret, CLIENT_SECRET_KEY):
        signed_url = presign(f"{url}/{plain}/{secret_object_key}", CLIENT_ACCESS_KEY, secret, now)
        parts = urllib.parse.urlsplit(signed_url)
        tampered = re.sub(r"(X-Amz-Signature=)([0-9a-f]{64})", lambda m: m.group(1) + ac.flip(m.group(2)), parts.query)
        for query in (parts.query, tampered):
            raw(proxy, "GET", f"{parts.path}?{query}")
        signatures += urllib.parse.parse_qs(parts.query)["X-Amz-Signature"]
    forged = ac.build_upload("PUT", f"{url}/{plain}/chunked", secrets.token_bytes(20000), ac.STREAMING_SIGNED)
    signatures += [c.signature for c in forged.chunks if c.signature]
    forged.chunks[1].signature = ac.flip(forged.chunks[1].signature or "")
    send_forged_upload(forged)
    for method, path in (("GET", f"/{plain}/{secret_object_key}"), ("PUT", f"/{plain}/x")):
        for secret in (wrong_secret, CLIENT_SECRET_KEY):
            headers = signed_headers(proxy, method, path, b"", secret_key=secret)
            signatures.append(signature_of(headers["Authorization"]))
            raw(proxy, method, path, headers)

    metrics = scrape(proxy)
    # Not vacuous: the workload is in the metrics.
    assert metrics.value("osp_requests_total") >= 50, metrics.table("osp_requests_total")
    reasons = set(metrics.label_values("osp_auth_failures_total", "reason"))
    assert {"SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied"} <= reasons, reasons
    assert metrics.value("osp_iam_token_fetches_total", outcome="error") >= 1
    statuses = set(metrics.label_values("osp_requests_total", "status"))
    assert {"200", "403"} <= statuses and statuses & {"502", "503", "504"}, statuses

    tokens = iam.tokens_of(API_KEY)
    assert tokens, "the IBM bucket was never reached with a bearer token"
    named = {
        "client secret": CLIENT_SECRET_KEY, "other client secret": OTHER_SECRET_KEY,
        "fetched client secret": fetched_secret, "wrong secret": wrong_secret,
        "backend secret": BACKEND_SECRET_KEY, "wrong backend secret": wrong_backend_secret,
        "API key": API_KEY, "revoked API key": BAD_API_KEY, "client's bearer token": client_bearer,
        "signing key": signing_key_hex(CLIENT_SECRET_KEY, now.strftime("%Y%m%d")),
        # Identifiers that are no metric's business either.
        "client access key": CLIENT_ACCESS_KEY, "fetched access key": fetched_key, "unknown access key": unknown_key,
        "backend access key": BACKEND_ACCESS_KEY, "object key": secret_object_key,
        "unconfigured bucket name": secret_looking_bucket,
    }
    named.update({f"IAM token {i}": t for i, t in enumerate(tokens)})
    named.update({f"signature {s[:12]}": s for s in set(signatures)})
    found = leaks(metrics.text, named)
    assert not found, f"/metrics leaks: {found}"
    # Unconfigured bucket names are one label value, not one each.
    assert "_unknown" in metrics.label_values("osp_requests_total", "bucket")


def test_signature_error_bodies_hold_no_secret_or_expected_signature(
        start_proxy: Callable[..., Any], make_bucket: Callable[..., str], backend: Any, iam: IamServer,
        front: BearerFront, direct: Any) -> None:
    plain, ibm_bad, wrong_backend = make_bucket("e-plain"), make_bucket("e-ibmbad"), make_bucket("e-wrongbe")
    wrong_backend_secret = "wrong-backend-secret-" + secrets.token_hex(16)
    proxy = start_proxy(plain, iam_url=iam.url, log_level="debug",
                        cos_map={ibm_bad: front.entry(BAD_API_KEY),
                                 wrong_backend: backend.entry(secret_key=wrong_backend_secret)})
    direct.put_object(Bucket=plain, Key="obj", Body=b"content")
    wrong_secret = "wrong-secret-" + secrets.token_hex(16)
    at = utcnow()
    date = at.strftime("%Y%m%d")
    bodies: List[Tuple[str, ac.Response]] = []
    expected: Dict[str, str] = {}

    # Header auth signed with a wrong secret: the expected signature is the
    # one the right secret gives for the same request at the same time.
    for method, path, body in (("GET", f"/{plain}/obj", b""), ("PUT", f"/{plain}/new", b"new body"),
                               ("GET", f"/{plain}?list-type=2", b""), ("DELETE", f"/{plain}/obj", b"")):
        bad = signed_headers(proxy, method, path, body, secret_key=wrong_secret, at=at)
        right = signed_headers(proxy, method, path, body, at=at)
        expected[f"expected signature of {method} {path}"] = signature_of(right["Authorization"])
        response = raw(proxy, method, path, bad, body or None)
        assert response.status_code == 403 and error_code(response) == "SignatureDoesNotMatch", response.content
        bodies.append((f"{method} {path}", response))
    # Presigned with a wrong secret.
    url = f"{proxy.endpoint_url}/{plain}/obj"
    bad_url, right_url = presign(url, CLIENT_ACCESS_KEY, wrong_secret, at), presign(url, CLIENT_ACCESS_KEY,
                                                                                   CLIENT_SECRET_KEY, at)
    expected["expected presigned signature"] = urllib.parse.parse_qs(
        urllib.parse.urlsplit(right_url).query)["X-Amz-Signature"][0]
    parts = urllib.parse.urlsplit(bad_url)
    response = raw(proxy, "GET", f"{parts.path}?{parts.query}")
    assert error_code(response) == "SignatureDoesNotMatch", response.content
    bodies.append(("presigned", response))
    # aws-chunked: a forged chunk signature and a forged trailer signature;
    # the expected ones are those the correct signer computed.
    for mode, forge_trailer in ((ac.STREAMING_SIGNED, False), (ac.STREAMING_SIGNED_TRAILER, True)):
        upload = ac.build_upload("PUT", f"{proxy.endpoint_url}/{plain}/chunked", secrets.token_bytes(20000), mode)
        if forge_trailer:
            expected[f"expected trailer signature ({mode})"] = upload.trailer_signature or ""
            upload.trailer_signature = ac.flip(upload.trailer_signature or "")
        else:
            expected[f"expected chunk signature ({mode})"] = upload.chunks[1].signature or ""
            upload.chunks[1].signature = ac.flip(upload.chunks[1].signature or "")
        response = send_forged_upload(upload)
        assert error_code(response) == "SignatureDoesNotMatch", (mode, response.status_code, response.content)
        bodies.append((f"aws-chunked {mode}", response))
    assert not object_exists(direct, plain, "chunked")
    # The backend refusing the proxy's signature, and IAM refusing the API key.
    for path in (f"/{wrong_backend}/obj", f"/{ibm_bad}/obj"):
        response = raw(proxy, "GET", path, signed_headers(proxy, "GET", path))
        assert response.status_code == 403, (path, response.status_code, response.content)
        bodies.append((f"backend {path}", response))

    named = {"client secret": CLIENT_SECRET_KEY, "wrong secret": wrong_secret,
             "signing key": signing_key_hex(CLIENT_SECRET_KEY, date),
             "backend secret": BACKEND_SECRET_KEY, "wrong backend secret": wrong_backend_secret,
             "backend signing key": signing_key_hex(BACKEND_SECRET_KEY, date),
             "API key": BAD_API_KEY, **expected}
    problems = {}
    for what, response in bodies:
        text = response.content.decode(errors="replace") + "\n" + "\n".join(
            f"{k}: {v}" for k, v in response.headers.items())
        found = leaks(text, named)
        if found:
            problems[what] = found
    assert not problems, f"error responses leak: {json.dumps(problems, indent=1)}"


def test_backend_signature_errors_give_the_client_nothing_to_replay(
        start_proxy: Callable[..., Any], make_bucket: Callable[..., str], backend: Any, direct: Any) -> None:
    """When the backend refuses the proxy's signature, its
    SignatureDoesNotMatch (AWSAccessKeyId, StringToSign, CanonicalRequest,
    SignatureProvided) is not passed on: the client gets the proxy's own 403
    AccessDenied, with neither the backend's secret nor its signing key, nor
    any of those details, nor a signature the backend would accept (issue 12,
    item 11; more in test_backend_path.py)."""
    name = make_bucket("e-besig")
    direct.put_object(Bucket=name, Key="obj", Body=b"backend content")
    wrong = "wrong-backend-secret-" + secrets.token_hex(8)
    proxy = start_proxy(cos_map={name: backend.entry(secret_key=wrong)})
    response = raw(proxy, "GET", f"/{name}/obj", signed_headers(proxy, "GET", f"/{name}/obj"))
    assert response.status_code == 403, response.content
    fields = parse_s3_error(response.content)
    assert fields["Code"] == "AccessDenied", fields
    assert fields["RequestId"] == response.headers["x-amz-request-id"], fields
    text = response.content.decode(errors="replace")
    at = utcnow()
    named = {"backend secret": BACKEND_SECRET_KEY, "configured backend secret": wrong,
             "backend signing key": signing_key_hex(BACKEND_SECRET_KEY, at.strftime("%Y%m%d")),
             "configured signing key": signing_key_hex(wrong, at.strftime("%Y%m%d"))}
    assert not leaks(text, named), leaks(text, named)
    for detail in ("StringToSign", "CanonicalRequest", "SignatureProvided", "AWSAccessKeyId", BACKEND_ACCESS_KEY,
                   "AWS4-HMAC-SHA256"):
        assert detail not in text, f"{detail!r} reached the client: {text}"
    assert b"backend content" not in response.content
