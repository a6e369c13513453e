"""What a validator sees (issue 12, items 1, 2 and 8): the operation name of
every request, the key (a listing's prefix only for a listing), and each key
of a DeleteObjects request.

Buckets are on versitygw; what was deleted or kept is checked with the
``direct`` client. The validator is the README's own identity-aware example,
recording each call."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
import xml.etree.ElementTree as ET
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple
from urllib.parse import unquote

import pytest
import requests

from clients import https_endpoint, run_boto3_latest
from helpers import (
    BACKEND_ACCESS_KEY,
    BACKEND_SECRET_KEY,
    CallLog,
    assert_s3_error,
    make_client,
    send_signed,
    stored_keys,
)
from versitygw import Backend, run_versitygw

ETL = "etl-writer"
ETL_SECRET = "etl-writer-secret-0123456789abcdefghij"

Call = Tuple[str, str, str, str, str]  # token, bucket, method, key, operation


class ReadmeValidator:
    """The README's example validator (README.md, "Identity-aware callables"), recording each call."""

    def __init__(self) -> None:
        self.log = CallLog()

    def __call__(self, token: str, bucket: str, method: str, key: str, operation: str) -> bool:
        self.log.add(token, bucket, method, key, operation)
        if operation == "Unknown":
            return False
        if operation in ("GetObject", "HeadObject", "ListObjectsV2"):
            return True  # everyone reads
        return token == ETL and key.startswith("incoming/")

    def mark(self) -> int:
        return len(self.log)

    def since(self, mark: int) -> List[Call]:
        return self.log.calls[mark:]  # type: ignore[return-value]


class BatchValidator(ReadmeValidator):
    """The README's example, and DeleteObjects itself allowed: each key is
    then decided as a DeleteObject."""

    def __call__(self, token: str, bucket: str, method: str, key: str, operation: str) -> bool:
        if operation == "DeleteObjects":
            self.log.add(token, bucket, method, key, operation)
            return True
        return super().__call__(token, bucket, method, key, operation)


Proxy = Tuple[str, ReadmeValidator]


def start(start_proxy: Callable[..., Any], bucket: str, validator: ReadmeValidator) -> str:
    # ttl 0: every request asks, so each request's calls are visible.
    server = start_proxy(bucket, entry={"ttl": 0}, validator=validator, hmac_keystore={ETL: ETL_SECRET})
    return str(server.endpoint_url)


def send(method: str, url: str, body: bytes = b"", headers: Optional[Dict[str, str]] = None,
         **options: Any) -> requests.Response:
    return send_signed(method, url, body=body, headers=headers, access_key=ETL, secret_key=ETL_SECRET, **options)


def md5_header(body: bytes) -> Dict[str, str]:
    return {"Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode()}


def delete_body(*keys: str, quiet: bool = False, versions: Optional[Dict[str, str]] = None) -> bytes:
    parts = ['<?xml version="1.0" encoding="UTF-8"?><Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">']
    if quiet:
        parts.append("<Quiet>true</Quiet>")
    for key in keys:
        escaped = key.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        version = (versions or {}).get(key)
        parts.append(f"<Object><Key>{escaped}</Key>" + (f"<VersionId>{version}</VersionId>" if version else "") + "</Object>")
    parts.append("</Delete>")
    return "".join(parts).encode()


# --------------------------------------------------------------------------
# item 1: prefix is the key of a listing only


# Bucket-level requests that are not listings, each with ?prefix=incoming/.
NOT_LISTINGS = [
    ("PUT", "policy&prefix=incoming%2F", b'{"Version":"2012-10-17","Statement":[]}', "PutBucketPolicy"),
    ("PUT", "acl&prefix=incoming%2F", b"", "PutBucketAcl"),
    ("PUT", "lifecycle&prefix=incoming%2F",
     b'<LifecycleConfiguration><Rule><ID>x</ID><Status>Enabled</Status><Filter><Prefix></Prefix></Filter>'
     b'<Expiration><Days>1</Days></Expiration></Rule></LifecycleConfiguration>', "PutBucketLifecycleConfiguration"),
    ("DELETE", "prefix=incoming%2F", b"", "DeleteBucket"),
    ("POST", "delete&prefix=incoming%2F", delete_body("other/secret"), "DeleteObjects"),
]


@pytest.mark.parametrize("method,query,body,operation", NOT_LISTINGS, ids=[q[3] for q in NOT_LISTINGS])
def test_prefix_is_not_the_key_of_a_bucket_operation(start_proxy: Callable[..., Any], direct: Any, bucket: str,
                                                    method: str, query: str, body: bytes, operation: str) -> None:
    direct.put_object(Bucket=bucket, Key="other/secret", Body=b"s")
    v = ReadmeValidator()
    endpoint = start(start_proxy, bucket, v)
    mark = v.mark()
    response = send(method, f"{endpoint}/{bucket}?{query}", body=body, headers=md5_header(body) if body else None)
    assert_s3_error(response, 403, "AccessDenied")
    assert v.since(mark) == [(ETL, bucket, method, "", operation)]
    assert stored_keys(direct, bucket) == ["other/secret"]


@pytest.mark.parametrize("query,operation", [
    ("prefix=incoming%2F", "ListObjects"),
    ("versions&prefix=incoming%2F", "ListObjectVersions"),
    ("uploads&prefix=incoming%2F", "ListMultipartUploads"),
    ("list-type=2&prefix=other%2F", "ListObjectsV2"),
])
def test_prefix_is_the_key_of_a_listing(start_proxy: Callable[..., Any], bucket: str, query: str,
                                        operation: str) -> None:
    v = ReadmeValidator()
    endpoint = start(start_proxy, bucket, v)
    mark = v.mark()
    response = send("GET", f"{endpoint}/{bucket}?{query}")
    assert response.status_code == 200, response.text
    prefix = unquote(query.split("prefix=")[1])
    assert v.since(mark) == [(ETL, bucket, "GET", prefix, operation)]


@pytest.mark.parametrize("query", [
    "list-type=2&prefix=incoming%2F&prefix=other%2F",
    "prefix=incoming%2F&prefix=other%2F",
    "list-type=2&prefix=%FF",
    "list-type=2&prefix=incoming%2F%C0%AF",
])
def test_repeated_or_non_utf8_prefix_is_refused(start_proxy: Callable[..., Any], bucket: str, query: str) -> None:
    v = ReadmeValidator()
    endpoint = start(start_proxy, bucket, v)
    mark = v.mark()
    assert_s3_error(send("GET", f"{endpoint}/{bucket}?{query}"), 400, "InvalidArgument")
    assert v.since(mark) == []


# --------------------------------------------------------------------------
# item 8: operation names come from S3's model, never a guess


@pytest.mark.parametrize("method,query,operation", [
    ("GET", "inventory&list-type=2", "ListBucketInventoryConfigurations"),
    ("PUT", "accelerate", "PutBucketAccelerateConfiguration"),
    ("DELETE", "analytics&id=x", "DeleteBucketAnalyticsConfiguration"),
    ("GET", "acl&list-type=2", "GetBucketAcl"),
    ("GET", "acl&policy", "Unknown"),
    ("GET", "list-type=2&list-type=1", "Unknown"),
])
def test_operation_names(start_proxy: Callable[..., Any], bucket: str, method: str, query: str,
                         operation: str) -> None:
    v = ReadmeValidator()
    endpoint = start(start_proxy, bucket, v)
    mark = v.mark()
    response = send(method, f"{endpoint}/{bucket}?{query}")  # key "": denied unless a read
    assert_s3_error(response, 403, "AccessDenied")
    assert [c[4] for c in v.since(mark)] == [operation]


@pytest.mark.parametrize("method,path,query,headers", [
    # The source key of a rename is in a header the validator never sees:
    # etl-writer could move other/secret into incoming/.
    ("PUT", "incoming/x", "renameObject", {"x-amz-rename-source": "other/secret"}),
    # S3 Express session credentials are the backend account's own.
    ("GET", "", "session", {}),
])
def test_operations_beyond_the_validator_are_refused(start_proxy: Callable[..., Any], direct: Any, bucket: str,
                                                    method: str, path: str, query: str,
                                                    headers: Dict[str, str]) -> None:
    direct.put_object(Bucket=bucket, Key="other/secret", Body=b"s")
    v = ReadmeValidator()
    endpoint = start(start_proxy, bucket, v)
    mark = v.mark()
    assert_s3_error(send(method, f"{endpoint}/{bucket}/{path}?{query}", headers=headers), 501, "NotImplemented")
    assert v.since(mark) == []
    assert stored_keys(direct, bucket) == ["other/secret"]


def test_copy_and_upload_part_copy_still_named_by_header(start_proxy: Callable[..., Any], direct: Any,
                                                       bucket: str) -> None:
    direct.put_object(Bucket=bucket, Key="incoming/src", Body=b"data")
    v = ReadmeValidator()
    endpoint = start(start_proxy, bucket, v)
    client = make_client(endpoint, ETL, ETL_SECRET)
    mark = v.mark()
    client.copy_object(Bucket=bucket, Key="incoming/dst", CopySource={"Bucket": bucket, "Key": "incoming/src"})
    upload = client.create_multipart_upload(Bucket=bucket, Key="incoming/mp")["UploadId"]
    client.upload_part_copy(Bucket=bucket, Key="incoming/mp", UploadId=upload, PartNumber=1,
                            CopySource={"Bucket": bucket, "Key": "incoming/src"})
    client.abort_multipart_upload(Bucket=bucket, Key="incoming/mp", UploadId=upload)
    ops = [c[4] for c in v.since(mark) if c[3] != "incoming/src"]
    assert ops == ["CopyObject", "CreateMultipartUpload", "UploadPartCopy", "AbortMultipartUpload"]


# --------------------------------------------------------------------------
# item 2: DeleteObjects shows each key


def seed(direct: Any, bucket: str, *keys: str) -> None:
    for key in keys:
        direct.put_object(Bucket=bucket, Key=key, Body=b"x")


def result_of(response: requests.Response) -> Tuple[List[str], List[Tuple[str, str]]]:
    """The Deleted keys and the (key, code) of each Error of a DeleteResult."""
    assert response.status_code == 200, response.text
    root = ET.fromstring(response.content)
    for element in root.iter():  # the proxy's answer has S3's namespace, versitygw's none
        element.tag = element.tag.split("}")[-1]
    assert root.tag == "DeleteResult"
    deleted = sorted(e.findtext("Key") or "" for e in root.findall("Deleted"))
    errors = sorted((e.findtext("Key") or "", e.findtext("Code") or "") for e in root.findall("Error"))
    return deleted, errors


def test_delete_objects_mixed(start_proxy: Callable[..., Any], direct: Any, bucket: str) -> None:
    seed(direct, bucket, "incoming/a", "incoming/b", "other/secret", "keep")
    v = BatchValidator()
    client = make_client(start(start_proxy, bucket, v), ETL, ETL_SECRET)
    mark = v.mark()
    out = client.delete_objects(Bucket=bucket, Delete={"Objects": [
        {"Key": "incoming/a"}, {"Key": "other/secret"}, {"Key": "incoming/b"}]})
    assert sorted(d["Key"] for d in out.get("Deleted", [])) == ["incoming/a", "incoming/b"]
    assert [(e["Key"], e["Code"], e["Message"]) for e in out["Errors"]] == [("other/secret", "AccessDenied", "Access Denied")]
    assert stored_keys(direct, bucket) == ["keep", "other/secret"]
    calls = v.since(mark)
    assert calls[0] == (ETL, bucket, "POST", "", "DeleteObjects")
    assert sorted(calls[1:]) == sorted((ETL, bucket, "DELETE", k, "DeleteObject")
                                       for k in ("incoming/a", "other/secret", "incoming/b"))


def test_delete_objects_quiet(start_proxy: Callable[..., Any], direct: Any, bucket: str) -> None:
    seed(direct, bucket, "incoming/a", "other/secret")
    client = make_client(start(start_proxy, bucket, BatchValidator()), ETL, ETL_SECRET)
    out = client.delete_objects(Bucket=bucket, Delete={"Quiet": True, "Objects": [
        {"Key": "incoming/a"}, {"Key": "other/secret"}]})
    assert "Deleted" not in out
    assert [(e["Key"], e["Code"]) for e in out["Errors"]] == [("other/secret", "AccessDenied")]
    assert stored_keys(direct, bucket) == ["other/secret"]


def test_delete_objects_all_denied_does_not_reach_the_backend(start_proxy: Callable[..., Any], direct: Any,
                                                             bucket: str) -> None:
    seed(direct, bucket, "other/a", "other/b")
    v = BatchValidator()
    endpoint = start(start_proxy, bucket, v)
    # The bucket is gone at the backend: had the request reached it, it
    # would answer NoSuchBucket, not a DeleteResult.
    client = make_client(endpoint, ETL, ETL_SECRET)
    for quiet in (False, True):
        out = client.delete_objects(Bucket=bucket, Delete={"Quiet": quiet, "Objects": [{"Key": "other/a"}, {"Key": "other/b"}]})
        assert "Deleted" not in out
        assert sorted((e["Key"], e["Code"]) for e in out["Errors"]) == [("other/a", "AccessDenied"), ("other/b", "AccessDenied")]
    assert stored_keys(direct, bucket) == ["other/a", "other/b"]
    direct.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "other/a"}, {"Key": "other/b"}]})
    direct.delete_bucket(Bucket=bucket)
    out = client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "other/a"}]})
    assert [(e["Key"], e["Code"]) for e in out["Errors"]] == [("other/a", "AccessDenied")]


def test_delete_objects_escaped_and_utf8_keys(start_proxy: Callable[..., Any], direct: Any, bucket: str) -> None:
    allowed = ["incoming/a&b", "incoming/<c>", "incoming/ünï😀", "incoming/q\"'"]
    denied = ["other/a&b<c>", "other/ü"]
    seed(direct, bucket, *allowed, *denied)
    v = BatchValidator()
    client = make_client(start(start_proxy, bucket, v), ETL, ETL_SECRET)
    mark = v.mark()
    out = client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in allowed + denied]})
    assert sorted(d["Key"] for d in out["Deleted"]) == sorted(allowed)
    assert sorted(e["Key"] for e in out["Errors"]) == sorted(denied)
    assert stored_keys(direct, bucket) == sorted(denied)
    assert sorted(c[3] for c in v.since(mark)[1:]) == sorted(allowed + denied)


@pytest.fixture(scope="module")
def versioned_backend() -> Iterator[Backend]:
    """A versitygw of its own with versioning enabled (the shared one has none)."""
    with run_versitygw(versioning=True) as server:
        yield server


def test_delete_objects_versions(start_proxy: Callable[..., Any], versioned_backend: Backend,
                                 new_bucket_name: Callable[..., str]) -> None:
    direct = make_client(versioned_backend.endpoint_url, BACKEND_ACCESS_KEY, BACKEND_SECRET_KEY)
    bucket = new_bucket_name("osp-ver")
    direct.create_bucket(Bucket=bucket)
    direct.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    v1 = direct.put_object(Bucket=bucket, Key="incoming/v", Body=b"1")["VersionId"]
    v2 = direct.put_object(Bucket=bucket, Key="incoming/v", Body=b"2")["VersionId"]
    s1 = direct.put_object(Bucket=bucket, Key="other/v", Body=b"1")["VersionId"]
    server = start_proxy(cos_map={bucket: versioned_backend.entry(ttl=0)}, validator=BatchValidator(),
                         hmac_keystore={ETL: ETL_SECRET})
    client = make_client(server.endpoint_url, ETL, ETL_SECRET)
    out = client.delete_objects(Bucket=bucket, Delete={"Objects": [
        {"Key": "incoming/v", "VersionId": v1}, {"Key": "other/v", "VersionId": s1}]})
    assert [(d["Key"], d.get("VersionId")) for d in out["Deleted"]] == [("incoming/v", v1)]
    assert [(e["Key"], e.get("VersionId"), e["Code"]) for e in out["Errors"]] == [("other/v", s1, "AccessDenied")]
    versions = direct.list_object_versions(Bucket=bucket).get("Versions", [])
    assert sorted((x["Key"], x["VersionId"]) for x in versions) == sorted([("incoming/v", v2), ("other/v", s1)])


def test_delete_objects_all_allowed_and_repeated_keys(start_proxy: Callable[..., Any], direct: Any,
                                                    bucket: str) -> None:
    seed(direct, bucket, "incoming/a", "keep")
    v = BatchValidator()
    endpoint = start(start_proxy, bucket, v)
    body = delete_body("incoming/a", "incoming/a", "incoming/gone")
    response = send("POST", f"{endpoint}/{bucket}?delete", body=body, headers=md5_header(body))
    deleted, errors = result_of(response)
    assert errors == [] and "incoming/a" in deleted
    assert stored_keys(direct, bucket) == ["keep"]


def test_delete_objects_bucket_only_validator_unchanged(start_proxy: Callable[..., Any], direct: Any,
                                                      bucket: str) -> None:
    seed(direct, bucket, "other/a")
    calls = CallLog()

    def validator(token: str, b: str) -> bool:
        calls.add(token, b)
        return True

    server = start_proxy(bucket, entry={"ttl": 0}, validator=validator, hmac_keystore={ETL: ETL_SECRET})
    client = make_client(server.endpoint_url, ETL, ETL_SECRET)
    out = client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "other/a"}]})
    assert [d["Key"] for d in out["Deleted"]] == ["other/a"]
    assert calls.calls == [(ETL, bucket)]


REFUSED = [
    ("malformed", b"<Delete><Object><Key>incoming/a</Key></Delete>", None, 400, "MalformedXML"),
    ("two keys in one object", b"<Delete><Object><Key>incoming/a</Key><Key>other/secret</Key></Object></Delete>",
     None, 400, "MalformedXML"),
    ("no objects", b"<Delete></Delete>", None, 400, "MalformedXML"),
    ("over 1000 keys", delete_body(*(f"incoming/{i}" for i in range(1001))), None, 400, "MalformedXML"),
    ("no digest", delete_body("incoming/a"), {}, 400, "InvalidRequest"),
    ("wrong md5", delete_body("incoming/a"), md5_header(b"other"), 400, "BadDigest"),
    ("wrong crc32", delete_body("incoming/a"), {"x-amz-checksum-crc32": "AAAAAA=="}, 400, "BadDigest"),
    ("too large", b"<Delete>" + b" " * (2 << 20) + b"</Delete>", None, 400, "EntityTooLarge"),
]


@pytest.mark.parametrize("name,body,headers,status,code", REFUSED, ids=[r[0] for r in REFUSED])
def test_delete_objects_refused(start_proxy: Callable[..., Any], direct: Any, bucket: str, name: str, body: bytes,
                                headers: Optional[Dict[str, str]], status: int, code: str) -> None:
    seed(direct, bucket, "incoming/a", "other/secret")
    endpoint = start(start_proxy, bucket, BatchValidator())
    response = send("POST", f"{endpoint}/{bucket}?delete", body=body,
                    headers=md5_header(body) if headers is None else headers)
    assert_s3_error(response, status, code)
    assert stored_keys(direct, bucket) == ["incoming/a", "other/secret"]


def test_delete_objects_body_not_the_signed_one(start_proxy: Callable[..., Any], direct: Any, bucket: str) -> None:
    seed(direct, bucket, "incoming/a", "other/secret")
    endpoint = start(start_proxy, bucket, BatchValidator())
    signed = delete_body("incoming/a")
    sent = delete_body("other/secret")
    # Signed for one body (its sha256 as the payload hash), sent with another
    # of the same length and a Content-MD5 that matches what is sent.
    response = send("POST", f"{endpoint}/{bucket}?delete", body=sent, headers=md5_header(sent),
                    payload_hash=hashlib.sha256(signed).hexdigest())
    assert_s3_error(response, 400, "XAmzContentSHA256Mismatch")
    assert stored_keys(direct, bucket) == ["incoming/a", "other/secret"]


def test_delete_objects_unsigned_payload_checked_by_md5(start_proxy: Callable[..., Any], direct: Any,
                                                       bucket: str) -> None:
    seed(direct, bucket, "incoming/a", "other/secret")
    endpoint = start(start_proxy, bucket, BatchValidator())
    body = delete_body("incoming/a", "other/secret")
    response = send("POST", f"{endpoint}/{bucket}?delete", body=body, headers=md5_header(body),
                    payload_hash="UNSIGNED-PAYLOAD")
    deleted, errors = result_of(response)
    assert deleted == ["incoming/a"] and errors == [("other/secret", "AccessDenied")]
    assert stored_keys(direct, bucket) == ["other/secret"]


def test_delete_objects_prefix_does_not_help(start_proxy: Callable[..., Any], direct: Any, bucket: str) -> None:
    # item 1's DeleteObjects case with a validator that allows batch deletes:
    # the body's keys are what is decided, whatever ?prefix says.
    seed(direct, bucket, "other/secret")
    endpoint = start(start_proxy, bucket, BatchValidator())
    body = delete_body("other/secret")
    response = send("POST", f"{endpoint}/{bucket}?delete&prefix=incoming%2F", body=body, headers=md5_header(body))
    assert result_of(response) == ([], [("other/secret", "AccessDenied")])
    assert stored_keys(direct, bucket) == ["other/secret"]


@pytest.mark.parametrize("transport", ["http", "https"])
def test_delete_objects_newest_boto3(tmp_path: Path, start_proxy: Callable[..., Any], direct: Any, bucket: str,
                                     tls_cert: Tuple[str, str], transport: str) -> None:
    # boto3 1.36+ sends an x-amz-checksum-crc32 instead of Content-MD5: the
    # rewritten body must carry its own.
    seed(direct, bucket, "incoming/a", "other/secret", "incoming/b")
    cert, key = tls_cert
    server = start_proxy(bucket, entry={"ttl": 0}, validator=BatchValidator(), hmac_keystore={ETL: ETL_SECRET},
                         https_port=0, tls_cert_path=cert, tls_key_path=key)
    endpoint, ca = (https_endpoint(server), cert) if transport == "https" else (server.endpoint_url, None)
    out = run_boto3_latest(tmp_path, """
        r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [
            {"Key": "incoming/a"}, {"Key": "other/secret"}, {"Key": "incoming/b"}]})
        emit(deleted=sorted(d["Key"] for d in r.get("Deleted", [])),
             errors=[(e["Key"], e["Code"]) for e in r.get("Errors", [])])
    """, endpoint=endpoint, ca=ca, bucket=bucket, access_key=ETL, secret_key=ETL_SECRET)
    assert out["deleted"] == ["incoming/a", "incoming/b"], out
    assert out["errors"] == [["other/secret", "AccessDenied"]], out
    assert any(s["checksum_crc32"] or s["trailer"] for s in out["sent"]), out["sent"]
    assert stored_keys(direct, bucket) == ["other/secret"]
