"""versitygw's own integration suite through the proxy (tests/conformance.py
runs it; `make conformance` runs every configuration), and the proxy bugs
that suite found, each pinned by a test of its own here.

The suite test fails, never skips, when versitygw is missing: `make
test-python` builds it and sets OSP_VERSITYGW.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import os
import re
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Callable, List, Tuple

import pytest
from botocore.exceptions import ClientError
import requests

import conformance
from helpers import CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY, REGION
from s3wire import amz_now, authorization, exchange, presign, render, sign_raw

S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def _versitygw() -> str:
    binary = os.environ.get("OSP_VERSITYGW")
    if not binary or not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        raise RuntimeError(
            f"OSP_VERSITYGW={binary!r} is not an executable versitygw "
            "(`make test-python` builds build/bin/versitygw and sets it)"
        )
    return binary


# --------------------------------------------------------------------------
# the suite


def test_versitygw_full_flow_passes_through_the_proxy() -> None:
    """Every full-flow test that passes straight at versitygw passes through
    the proxy, except those conformance.DELIBERATE and conformance.KNOWN
    list, each with its reason."""
    with tempfile.TemporaryDirectory(prefix="osp-conformance-") as tmp:
        c = conformance.run_both(_versitygw(), Path(tmp), group="full-flow")
        text = conformance.report(c, "full-flow")
        print(text)
        # The suite itself must have run: a broken runner passes nothing.
        assert len(c.direct.names(conformance.PASS)) > 600, text
        assert not c.regressions, text


# --------------------------------------------------------------------------
# the runner's parser (the suite's output is not made for machines)


def test_parser_reads_markers_mid_line_and_crashes() -> None:
    red, green, cyan, reset = "\x1b[31m", "\x1b[32m", "\x1b[36m", "\x1b[0m"
    out = (
        f"{cyan}RUN  {reset}A_one\n"
        f"{cyan}RUN  {reset}B_two\n"
        f"{green}PASS {reset}A_one\n"
        # a message printed without its newline, then the next marker
        f"{red}B_two: failed to delete the bucket: boom{green}PASS {reset}B_two\n"
        f"{cyan}RUN  {reset}C_three\n"
        f"{red}FAIL {reset}C_three: expected 1, instead got 2\n"
        f"{green}PASS {reset}C_three\n"
        f"{cyan}RUN  {reset}D_four\n"
        "panic: runtime error: invalid memory address or nil pointer dereference\n"
    )
    r = conformance.parse_output(out)
    assert {n: o.status for n, o in r.outcomes.items()} == {
        "A_one": "pass", "B_two": "pass", "C_three": "fail", "D_four": "crash"}
    assert r.outcomes["C_three"].detail == "expected 1, instead got 2"
    assert r.crashed


def test_comparison_counts_only_what_passed_direct() -> None:
    P, F = conformance.Outcome(conformance.PASS), conformance.Outcome(conformance.FAIL, "x")
    direct = conformance.RunResult("direct", {"a": P, "b": P, "c": F, "d": P})
    proxy = conformance.RunResult("proxy", {"a": P, "b": F, "c": F, "d": F})
    c = conformance.compare(direct, proxy, {"d": "why"}, {"a": "passes: stale"})
    assert list(c.regressions) == ["b"] and list(c.deliberate) == ["d"] and c.not_direct == ["c"]
    assert c.stale == ["a"]
    assert not c.ok


def test_a_failure_of_the_parallel_run_is_run_again_alone() -> None:
    """A test that failed through the proxy without a listed reason is run
    once more, alone, on fresh servers: passing then, it is reported as
    flaky, not as a difference; failing again, it stays a regression."""
    P, F = conformance.Outcome(conformance.PASS), conformance.Outcome(conformance.FAIL, "in the parallel run")
    direct = conformance.RunResult("direct", {"HeadBucket_success": P, "PutObject_with_metadata": P})
    proxy = conformance.RunResult("proxy", {"HeadBucket_success": F, "PutObject_with_metadata": F})
    c = conformance.compare(direct, proxy, {}, {})
    assert sorted(c.regressions) == ["HeadBucket_success", "PutObject_with_metadata"]
    with tempfile.TemporaryDirectory(prefix="osp-conformance-") as tmp:
        c = conformance._retry_alone(_versitygw(), Path(tmp), c, False)
    assert c.flaky == ["HeadBucket_success"]
    # The forwarding rule refuses its x-amz-meta-key_with_underscore alone too.
    assert list(c.regressions) == ["PutObject_with_metadata"], c.regressions


def test_a_crashed_direct_run_is_filled_test_by_test() -> None:
    """The suite panics against SeaweedFS direct too: the tests the direct
    run never finished are run one by one, direct (not through the proxy),
    from the list given (the other run's or a versitygw run's)."""
    crashed = conformance.RunResult(
        "direct", {"HeadBucket_success": conformance.Outcome(conformance.CRASH, "panic")}, crashed=True,
    )
    names = ["HeadBucket_success", "PutObject_with_metadata"]
    with tempfile.TemporaryDirectory(prefix="osp-conformance-") as tmp:
        run = conformance._fill_after_crash(_versitygw(), Path(tmp), crashed, names, False, "versitygw", False)
        log = (Path(tmp) / "direct.log").read_text()
    # Direct, PutObject_with_metadata passes (through the proxy the
    # forwarding rule refuses its x-amz-meta-key_with_underscore).
    assert {n: o.status for n, o in run.outcomes.items()} == {n: conformance.PASS for n in names}, run.outcomes
    assert sorted(run.rerun) == names
    assert "PASS PutObject_with_metadata" in conformance._ANSI.sub("", log)


def test_seaweedfs_staleness_is_checked_on_its_own_lists() -> None:
    """In front of SeaweedFS, a test of the general lists may pass through
    the proxy (SeaweedFS may not check what the test expects refused): only
    the SeaweedFS lists must stay exact there."""
    P, F = conformance.Outcome(conformance.PASS), conformance.Outcome(conformance.FAIL, "x")
    direct = conformance.RunResult("direct", {"general": P, "weed": P, "other": P})
    proxy = conformance.RunResult("proxy", {"general": P, "weed": P, "other": F})
    c = conformance.compare(direct, proxy, {"general": "why", "other": "why"}, {"weed": "why"}, stale_checked=["weed"])
    assert c.stale == ["weed"] and list(c.deliberate) == ["other"] and not c.regressions
    assert conformance.stale_checked_for("versitygw") is None
    deliberate, known = conformance.allowed_for("seaweedfs")
    assert set(conformance.DELIBERATE) <= set(deliberate) and set(conformance.KNOWN) <= set(known)
    assert set(conformance.SEAWEEDFS_DELIBERATE) <= set(deliberate)
    assert set(conformance.SEAWEEDFS_KNOWN) <= set(known)
    assert conformance.CONFIGURATIONS["seaweedfs-full-flow"]["backend"] == "seaweedfs"


def test_every_listed_difference_has_a_reason() -> None:
    assert not set(conformance.DELIBERATE) & set(conformance.KNOWN)
    for name, reason in conformance.ALLOWED.items():
        assert re.fullmatch(r"[A-Za-z0-9_]+", name), name
        assert len(reason) > 20, (name, reason)


# --------------------------------------------------------------------------
# proxy bugs the suite found


def _signed_get(endpoint_port: int, target: str, extra: List[Tuple[str, str]]) -> Any:
    """A GET signed over exactly ``extra`` as sent (duplicates included)."""
    amz_date = amz_now()
    headers = [("Host", f"127.0.0.1:{endpoint_port}"), ("X-Amz-Date", amz_date),
               ("X-Amz-Content-Sha256", EMPTY_SHA256)] + extra
    cred, names, sig = sign_raw("GET", target, headers, EMPTY_SHA256, amz_date,
                                access_key=CLIENT_ACCESS_KEY, secret_key=CLIENT_SECRET_KEY)
    headers.append(("Authorization", authorization(cred, names, sig)))
    return exchange(endpoint_port, render("GET", target, headers), timeout=20)


def test_list_buckets_names_each_buckets_region(start_proxy: Callable[..., Any], make_bucket: Callable[..., str]) -> None:
    """ListBuckets gives each bucket's BucketRegion, as S3 does since 2024
    (the suite's ListBuckets_with_prefix crashed on its absence)."""
    bucket = make_bucket()
    server = start_proxy(bucket)
    reply = _signed_get(server.http_port, "/", [])
    assert reply.status == 200, reply.body
    buckets = ET.fromstring(reply.body).findall(f"{S3_NS}Buckets/{S3_NS}Bucket")
    assert [b.findtext(f"{S3_NS}Name") for b in buckets] == [bucket]
    assert buckets[0].findtext(f"{S3_NS}BucketRegion") == REGION


def test_get_object_attributes_with_the_attributes_header_repeated(
    start_proxy: Callable[..., Any], bucket: str, direct: Any
) -> None:
    """aws-sdk-go-v2 sends GetObjectAttributes' list as one
    x-amz-object-attributes line per attribute; the proxy joins them into
    the one comma-separated value the signature covers (and refuses any
    other header given twice, as before)."""
    direct.put_object(Bucket=bucket, Key="k", Body=b"hello")
    server = start_proxy(bucket)
    reply = _signed_get(server.http_port, f"/{bucket}/k?attributes",
                        [("X-Amz-Object-Attributes", "ETag"), ("X-Amz-Object-Attributes", "ObjectSize")])
    assert reply.status == 200, reply.body
    root = ET.fromstring(reply.body)
    values = {el.tag.split("}")[-1]: el.text for el in root}
    assert values.get("ObjectSize") == "5", reply.body
    assert (values.get("ETag") or "").strip('"') == hashlib.md5(b"hello").hexdigest(), reply.body
    # Another signed header twice is still refused.
    reply = _signed_get(server.http_port, f"/{bucket}/k",
                        [("X-Amz-Checksum-Mode", "ENABLED"), ("X-Amz-Checksum-Mode", "ENABLED")])
    assert reply.status == 400, reply.body


def test_complete_multipart_upload_location_is_the_proxys(
    start_proxy: Callable[..., Any], client_for: Callable[..., Any], bucket: str, backend: Any
) -> None:
    """CompleteMultipartUpload's <Location> is the URL the client used, not
    the backend's host and port (the suite's CompleteMultipartUpload_success
    found the backend's address there)."""
    server = start_proxy(bucket)
    client = client_for(server)
    key = "dir/a key+ü"
    upload = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    part = client.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=1, Body=b"x" * 10)
    done = client.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    location = done["Location"]
    assert f":{backend.port}" not in location, location
    assert location.startswith(f"{server.endpoint_url}/{bucket}/"), location
    assert requests.utils.unquote(location.split(f"/{bucket}/", 1)[1]) == key


# The checksums S3 added in 2025, with versitygw's suite's values for this
# data (SignedStreamingPayloadTrailer_success): xxhash has no Python module
# here.
NEW_CHECKSUM_DATA = b"the object data"
NEW_CHECKSUMS = {
    "sha512": base64.b64encode(hashlib.sha512(NEW_CHECKSUM_DATA).digest()).decode(),
    "md5": base64.b64encode(hashlib.md5(NEW_CHECKSUM_DATA).digest()).decode(),
    "xxhash64": "McmxUfNFLUs=",
    "xxhash3": "tLh+aNltTM4=",
    "xxhash128": "MXqrLVobrQkTBf82+7i9AQ==",
}


@pytest.mark.parametrize("algorithm", sorted(NEW_CHECKSUMS))
@pytest.mark.parametrize("mode", ["STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"])
def test_streaming_upload_with_a_newer_trailer_checksum(
    start_proxy: Callable[..., Any], bucket: str, direct: Any, monkeypatch: pytest.MonkeyPatch,
    algorithm: str, mode: str,
) -> None:
    """aws-chunked uploads with S3's newer trailer checksums (sha512, md5,
    xxhash64, xxhash3, xxhash128) are verified and stored, and a wrong value
    is refused with BadDigest; the proxy refused them all as an unsupported
    x-amz-trailer."""
    import awschunked as ac

    known = ac.checksum

    def checksum(alg: str, data: bytes) -> str:
        if alg in NEW_CHECKSUMS:
            assert data == NEW_CHECKSUM_DATA
            return NEW_CHECKSUMS[alg]
        return known(alg, data)

    monkeypatch.setattr(ac, "checksum", checksum)
    server = start_proxy(bucket)
    url = f"{server.endpoint_url}/{bucket}/sum-{algorithm}"
    upload = ac.build_upload("PUT", url, NEW_CHECKSUM_DATA, mode, checksum_algorithm=algorithm)
    reply = ac.send(upload)
    assert reply.status_code == 200, reply.content
    assert direct.get_object(Bucket=bucket, Key=f"sum-{algorithm}")["Body"].read() == NEW_CHECKSUM_DATA

    # The same upload with one bit of the checksum flipped (same length).
    bad = ac.build_upload("PUT", url + "-bad", NEW_CHECKSUM_DATA, mode, checksum_algorithm=algorithm)
    digest = bytearray(base64.b64decode(NEW_CHECKSUMS[algorithm]))
    digest[0] ^= 1
    bad.trailers = [(f"x-amz-checksum-{algorithm}", base64.b64encode(bytes(digest)).decode())]
    if mode in ac.SIGNED_MODES:
        ac.sign_chunks(bad, ac.chain_from_headers(bad.headers, CLIENT_SECRET_KEY))
    reply = ac.send(bad)
    assert reply.status_code == 400 and b"<Code>BadDigest</Code>" in reply.content, reply.content
    assert not any(o["Key"].endswith("-bad") for o in direct.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_object_lock_refusal_keeps_its_reason(
    start_proxy: Callable[..., Any], client_for: Callable[..., Any], direct: Any, new_bucket_name: Callable[..., str]
) -> None:
    """A backend's AccessDenied for a locked object reaches the client with
    S3's own words, "Access Denied because object protected by object
    lock." (a client must tell a lock from missing rights); any other
    backend AccessDenied is still the proxy's own, backend details hidden
    (test_errors.py). The suite's WORMProtection_* tests found the lock's
    reason replaced."""
    bucket = new_bucket_name("lock")
    direct.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    direct.put_object(Bucket=bucket, Key="held", Body=b"v1", ObjectLockLegalHoldStatus="ON")
    try:
        client = client_for(start_proxy(bucket))
        with pytest.raises(ClientError) as info:
            client.put_object(Bucket=bucket, Key="held", Body=b"v2")
        error = info.value.response["Error"]
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        assert (error["Code"], error["Message"]) == (
            "AccessDenied", "Access Denied because object protected by object lock."), error
        assert direct.get_object(Bucket=bucket, Key="held")["Body"].read() == b"v1"
    finally:
        direct.put_object_legal_hold(Bucket=bucket, Key="held", LegalHold={"Status": "OFF"})
        direct.delete_object(Bucket=bucket, Key="held")
        direct.delete_bucket(Bucket=bucket)


def _raw(port: int, method: str, target: str, headers: List[Tuple[str, str]], body: bytes = b"") -> Any:
    head = render(method, target, [("Host", f"127.0.0.1:{port}")] + headers + [("Content-Length", str(len(body)))])
    return exchange(port, head + body, method=method, timeout=20)


def _error(reply: Any) -> dict:
    root = ET.fromstring(reply.body)
    return {child.tag: child.text or "" for child in root}


def _signed_headers(port: int, method: str, target: str, extra: List[Tuple[str, str]], *,
                    payload: str = EMPTY_SHA256, access_key: str = CLIENT_ACCESS_KEY,
                    credential: Any = None) -> List[Tuple[str, str]]:
    amz_date = amz_now()
    headers = [("Host", f"127.0.0.1:{port}"), ("X-Amz-Date", amz_date), ("X-Amz-Content-Sha256", payload)] + extra
    cred, names, sig = sign_raw(method, target, headers, payload, amz_date,
                                access_key=access_key, secret_key=CLIENT_SECRET_KEY)
    if credential is not None:
        cred = credential(cred)
    return headers[1:] + [("Authorization", authorization(cred, names, sig))]


def test_authentication_errors_in_s3s_words(start_proxy: Callable[..., Any], bucket: str) -> None:
    """The proxy's own SigV4 refusals say what S3 says, with S3's detail
    elements (versitygw's suite compares code, message and those elements:
    its Authentication_* and PresignedAuth_* tests found other words)."""
    server = start_proxy(bucket)
    port = server.http_port
    target = f"/{bucket}/k"

    # A credential for another service.
    reply = _raw(port, "GET", target, _signed_headers(
        port, "GET", target, [], credential=lambda c: c.replace("/s3/", "/ec2/")))
    assert reply.status == 400 and _error(reply)["Message"] == (
        'The authorization header is malformed; incorrect service "ec2". This endpoint belongs to "s3".'), reply.body

    # Two components instead of three.
    reply = _raw(port, "GET", target, [("X-Amz-Date", amz_now()), ("X-Amz-Content-Sha256", EMPTY_SHA256),
                                       ("Authorization", "AWS4-HMAC-SHA256 Credential=a/b/c/s3/aws4_request, x=y")])
    assert _error(reply)["Message"] == ("The authorization header is malformed; the authorization header requires "
                                        "three components: Credential, SignedHeaders, and Signature."), reply.body

    # A key the proxy does not know is named back, as S3 does.
    reply = _raw(port, "GET", target, _signed_headers(port, "GET", target, [], access_key="AKIANOBODYHERE"))
    fields = _error(reply)
    assert reply.status == 403 and fields["Code"] == "InvalidAccessKeyId" and fields["AWSAccessKeyId"] == "AKIANOBODYHERE"

    # Unsigned x-amz-* headers: named in HeadersNotSigned.
    reply = _raw(port, "PUT", target, _signed_headers(port, "PUT", target, []) + [("X-Amz-Tagging", "a=b")])
    fields = _error(reply)
    assert reply.status == 403 and fields["Code"] == "AccessDenied", reply.body
    assert fields["Message"] == "There were headers present in the request which were not signed", reply.body
    assert fields["HeadersNotSigned"] == "x-amz-tagging", reply.body

    # A signed sha256 of a body that did not come: both hashes.
    wrong = hashlib.sha256(b"something").hexdigest()
    reply = _raw(port, "PUT", target, _signed_headers(port, "PUT", target, [], payload=wrong))
    fields = _error(reply)
    assert (reply.status, fields["Code"]) == (400, "XAmzContentSHA256Mismatch"), reply.body
    assert (fields["ClientComputedContentSHA256"], fields["S3ComputedContentSHA256"]) == (wrong, EMPTY_SHA256)

    # Presigned URLs: a missing parameter, an expired URL.
    url = presign("GET", server.endpoint_url, bucket, "k", access_key=CLIENT_ACCESS_KEY, secret_key=CLIENT_SECRET_KEY)
    reply = requests.get(re.sub(r"&X-Amz-Expires=\d+", "", url), timeout=10)
    assert (reply.status_code, _error_text(reply)) == (400, (
        "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, "
        "X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.")), reply.content
    old = presign("GET", server.endpoint_url, bucket, "k", access_key=CLIENT_ACCESS_KEY, secret_key=CLIENT_SECRET_KEY,
                  expires=1, at=datetime.datetime.utcnow() - datetime.timedelta(seconds=30))
    reply = requests.get(old, timeout=10)
    fields = {child.tag: child.text for child in ET.fromstring(reply.content)}
    assert (reply.status_code, fields["Code"], fields["Message"]) == (403, "AccessDenied", "Request has expired."), fields
    assert fields["X-Amz-Expires"] == "1" and fields["ServerTime"] and fields["Expires"], fields


def _error_text(reply: requests.Response) -> str:
    return ET.fromstring(reply.content).findtext("Message") or ""


@pytest.mark.parametrize("header, value", [
    ("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA256"),
    ("AWS4-HMAC-SHA512 Credential=a/20130524/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=" + "a" * 64,
     "AWS4-HMAC-SHA512"),
])
def test_authorization_without_a_space_or_with_another_algorithm(
    start_proxy: Callable[..., Any], bucket: str, header: str, value: str
) -> None:
    """S3's 400 InvalidArgument naming the Authorization header (the suite's
    Authentication_invalid_auth_header and _unsupported_signature_version)."""
    server = start_proxy(bucket)
    reply = _raw(server.http_port, "GET", f"/{bucket}/k", [("X-Amz-Date", amz_now()), ("Authorization", header)])
    fields = _error(reply)
    assert (reply.status, fields["Code"], fields["ArgumentName"], fields["ArgumentValue"]) == (
        400, "InvalidArgument", "Authorization", value), reply.body
