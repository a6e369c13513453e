"""Scale-out: the proxy is stateless, so N instances with the same config
can sit behind a load balancer. Two ProxyServers behind haproxy (round
robin, HTTP mode, started from a generated haproxy.cfg) serve boto3's puts,
gets, listings and a multipart upload whose parts land on both instances.

A load balancer that rewrites Host breaks the client's signature, unless
the proxies trust X-Forwarded-Host (``trusted_forwarded_host=True``, off by
default: a client could otherwise pick the Host it is verified against).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Iterator, List, Sequence

import pytest
import requests
from botocore.exceptions import ClientError

from helpers import (
    CLIENT_ACCESS_KEY,
    CLIENT_SECRET_KEY,
    CallLog,
    assert_client_error,
    assert_s3_error,
    make_client,
    object_exists,
    send_signed,
    sign_request,
    stored_body,
    stored_keys,
)
from object_storage_proxy import ProxyServerConfig
from observe import Haproxy, eventually, scrape

MIB = 1024 * 1024

# haproxy rules of a balancer that talks to its backends under an internal
# name and says which Host the client used.
REWRITE_HOST = [
    "http-request set-header X-Forwarded-Host %[req.hdr(host)]",
    "http-request set-header Host backend.internal",
]


@pytest.fixture
def haproxy(tmp_path: Path) -> Iterator[Callable[..., Haproxy]]:
    """``haproxy([port, ...], rules)``: an haproxy in front of those proxy
    ports, killed after the test."""
    started: List[Haproxy] = []

    def start(ports: Sequence[int], rules: Sequence[str] = ()) -> Haproxy:
        h = Haproxy(tmp_path, ports, http_request_rules=rules, name=f"haproxy{len(started)}")
        started.append(h)
        return h.start()

    yield start
    for h in started:
        h.stop()


def requests_of(server: Any) -> float:
    return scrape(server).value("osp_requests_total")


def test_two_instances_behind_haproxy(start_proxy: Callable[..., Any], haproxy: Callable[..., Haproxy],
                                      bucket: str, direct: Any) -> None:
    calls = CallLog()

    def validator(token: str, name: str) -> bool:
        calls.add(token, name)
        return True

    first, second = start_proxy(bucket, validator=validator), start_proxy(bucket, validator=validator)
    balancer = haproxy([first.http_port, second.http_port])
    s3 = make_client(balancer.url, CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY)

    bodies = {f"obj-{i}": os.urandom(1000 + i) for i in range(6)}
    for key, body in bodies.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    for key, body in bodies.items():
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body
        assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == len(body)
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == sorted(bodies)

    # A multipart upload: create, parts and complete go to different instances.
    parts_data = [os.urandom(5 * MIB), os.urandom(5 * MIB), os.urandom(1234)]
    upload = s3.create_multipart_upload(Bucket=bucket, Key="multi")
    parts = []
    for number, data in enumerate(parts_data, 1):
        etag = s3.upload_part(Bucket=bucket, Key="multi", UploadId=upload["UploadId"], PartNumber=number,
                              Body=data)["ETag"]
        parts.append({"ETag": etag, "PartNumber": number})
    assert len(s3.list_parts(Bucket=bucket, Key="multi", UploadId=upload["UploadId"])["Parts"]) == 3
    s3.complete_multipart_upload(Bucket=bucket, Key="multi", UploadId=upload["UploadId"],
                                 MultipartUpload={"Parts": parts})
    s3.delete_object(Bucket=bucket, Key="obj-0")

    assert stored_body(direct, bucket, "multi") == b"".join(parts_data)
    assert sorted(stored_keys(direct, bucket)) == sorted([k for k in bodies if k != "obj-0"] + ["multi"])

    sent = len(s3.raw_responses.responses)
    assert sent == 6 + 12 + 1 + 1 + 3 + 1 + 1 + 1

    def check() -> None:
        served = (requests_of(first), requests_of(second))
        assert sum(served) == sent, served
        # Round robin: both served, and about half each.
        assert min(served) >= sent // 2 - 2, served

    eventually(check)
    # Caches are per instance: each asked the validator once for (key, bucket).
    assert calls.calls == [(CLIENT_ACCESS_KEY, bucket)] * 2


def test_host_rewrite_breaks_signatures_without_trusted_forwarded_host(
        start_proxy: Callable[..., Any], haproxy: Callable[..., Haproxy], bucket: str, direct: Any) -> None:
    first, second = start_proxy(bucket), start_proxy(bucket)
    balancer = haproxy([first.http_port, second.http_port], REWRITE_HOST)
    s3 = make_client(balancer.url, CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY)
    # One request per instance. (Empty bodies: with a body botocore waits
    # a second for a 100 Continue that a refusal never sends.)
    with pytest.raises(ClientError) as failure:
        s3.put_object(Bucket=bucket, Key="k", Body=b"")
    assert_client_error(failure, 403, "SignatureDoesNotMatch", s3)
    with pytest.raises(ClientError) as failure:
        s3.list_objects_v2(Bucket=bucket)
    assert_client_error(failure, 403, "SignatureDoesNotMatch", s3)
    assert not object_exists(direct, bucket, "k")
    eventually(lambda: _both_served(first, second))


def test_host_rewrite_works_with_trusted_forwarded_host(
        start_proxy: Callable[..., Any], haproxy: Callable[..., Haproxy], bucket: str, direct: Any) -> None:
    first = start_proxy(bucket, trusted_forwarded_host=True)
    second = start_proxy(bucket, trusted_forwarded_host=True)
    balancer = haproxy([first.http_port, second.http_port], REWRITE_HOST)
    s3 = make_client(balancer.url, CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY)
    for i in range(4):
        s3.put_object(Bucket=bucket, Key=f"k{i}", Body=f"body {i}".encode())
    for i in range(4):
        assert s3.get_object(Bucket=bucket, Key=f"k{i}")["Body"].read() == f"body {i}".encode()
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == [f"k{i}" for i in range(4)]
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k1"}, ExpiresIn=300)
    for _ in range(2):  # both instances
        response = requests.get(url, timeout=20)
        assert (response.status_code, response.content) == (200, b"body 1"), response.content[:300]
    assert stored_body(direct, bucket, "k3") == b"body 3"
    eventually(lambda: _both_served(first, second))


def _both_served(*servers: Any) -> None:
    served = [requests_of(s) for s in servers]
    assert all(n > 0 for n in served), served


def test_forwarded_host_is_ignored_unless_trusted(start_proxy: Callable[..., Any], bucket: str,
                                                  direct: Any) -> None:
    """Directly, without haproxy: a request signed for the Host a balancer
    would have seen (frontend.example:8080), sent with that Host in
    X-Forwarded-Host."""
    untrusting, trusting = start_proxy(bucket), start_proxy(bucket, trusted_forwarded_host=True)
    front_host = "frontend.example:8080"

    def send(server: Any, key: str, forwarded: str) -> Any:
        signed = sign_request("PUT", f"http://{front_host}/{bucket}/{key}", body=b"data")
        signed["X-Forwarded-Host"] = forwarded
        return requests.put(f"{server.endpoint_url}/{bucket}/{key}", data=b"data", headers=signed, timeout=20)

    assert_s3_error(send(untrusting, "a", front_host), 403, "SignatureDoesNotMatch")
    assert send(trusting, "b", front_host).status_code == 200
    # Trusted, X-Forwarded-Host is the Host verified against: another value fails.
    assert_s3_error(send(trusting, "c", "elsewhere.example"), 403, "SignatureDoesNotMatch")
    # Without X-Forwarded-Host a trusting proxy verifies the Host as usual.
    assert send_signed("PUT", f"{trusting.endpoint_url}/{bucket}/d", body=b"direct").status_code == 200
    assert stored_keys(direct, bucket) == ["b", "d"]


def test_trusted_forwarded_host_is_off_by_default(backend: Any, bucket: str) -> None:
    assert ProxyServerConfig({bucket: backend.entry()}, http_port=0).trusted_forwarded_host is False
    with pytest.raises(TypeError, match="trusted_forwarded_host"):
        ProxyServerConfig({bucket: backend.entry()}, http_port=0, trusted_forwarded_host="yes")


def test_location_has_the_balancers_scheme_when_trusted(start_proxy: Callable[..., Any], bucket: str) -> None:
    """A balancer that ends TLS talks plain HTTP to the proxy and says
    X-Forwarded-Proto: https. CompleteMultipartUpload's Location then
    names the URL the client used, https, when the proxy trusts the
    balancer (the first value, any case), and the connection's own scheme
    when it does not or the value is no scheme of HTTP."""
    trusting, untrusting = start_proxy(bucket, trusted_forwarded_host=True), start_proxy(bucket)
    cases = ((trusting, "https", "https"), (untrusting, "https", "http"), (trusting, "HTTPS , http", "https"),
             (trusting, "javascript", "http"), (trusting, "", "http"))
    for i, (server, proto, scheme) in enumerate(cases):

        def as_if_behind_tls(request: Any, proto: str = proto, **_: Any) -> None:
            request.headers["X-Forwarded-Proto"] = proto

        s3 = make_client(server.endpoint_url, CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY)
        s3.meta.events.register("before-send.s3.*", as_if_behind_tls)
        key = f"mp{i}"
        upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        part = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=1, Body=b"x" * 10)
        done = s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload,
                                            MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]})
        host = server.endpoint_url.split("://", 1)[1].rstrip("/")
        assert done["Location"] == f"{scheme}://{host}/{bucket}/{key}", (proto, done["Location"])
