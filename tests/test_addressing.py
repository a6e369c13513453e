"""Addressing: virtual-hosted client requests (``bucket.<domain>/key``, the
domains from ``virtual_host_domains``) besides path style, and ListBuckets
(``GET /``) answered from cos_map without any backend.

No DNS is needed: raw requests go to 127.0.0.1 with the Host header they were
signed for, and boto3 reaches ``http://s3.osp.test:<port>`` through
``Config(proxies=...)`` pointing at the proxy, so botocore sends
absolute-form requests (``PUT http://bucket.s3.osp.test:<port>/key``).
"""

from __future__ import annotations

import re
import urllib.parse
import xml.etree.ElementTree as ET
from typing import Any, Callable, List, Mapping, Optional

import boto3
import pytest
import requests
from botocore.config import Config

import awschunked as ac
from helpers import (
    CLIENT_ACCESS_KEY,
    CLIENT_SECRET_KEY,
    OTHER_ACCESS_KEY,
    OTHER_SECRET_KEY,
    REGION,
    _no_expect_for_empty_bodies,
    assert_s3_error,
    free_port,
    object_exists,
    sign_request,
    stored_body,
    stored_keys,
)

DOMAIN = "s3.osp.test"
S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
ODD_KEY = "dir/sub dir/a+b=c&d ü.txt"


def quote_key(key: str) -> str:
    return urllib.parse.quote(key, safe="/-_.~")


def signed_request(proxy: Any, method: str, host: str, path: str, *, body: Optional[bytes] = None,
                   headers: Optional[Mapping[str, str]] = None, send_host: Optional[str] = None,
                   access_key: str = CLIENT_ACCESS_KEY, secret_key: str = CLIENT_SECRET_KEY) -> ac.Response:
    """Signs ``method http://host/path`` and sends it to the proxy at
    127.0.0.1 with ``Host: host`` (or ``send_host``)."""
    signed = sign_request(method, f"http://{host}{path}", body=body or b"", headers=headers,
                          access_key=access_key, secret_key=secret_key)
    signed["Host"] = send_host or host
    return ac.raw_request("127.0.0.1", proxy.http_port, method, path, signed, body)


def vhost(bucket: str, proxy: Any, domain: str = DOMAIN) -> str:
    return f"{bucket}.{domain}:{proxy.http_port}"


def assert_ok(response: Any) -> None:
    status = getattr(response, "status_code", None)
    assert status in (200, 204), (status, response.content[:600])


def virtual_client(proxy: Any, access_key: str = CLIENT_ACCESS_KEY, secret_key: str = CLIENT_SECRET_KEY) -> Any:
    """boto3, virtual addressing, endpoint http://s3.osp.test:<port>, reached
    through the proxy as an HTTP proxy."""
    config = Config(
        region_name=REGION,
        signature_version="s3v4",
        s3={"addressing_style": "virtual"},
        proxies={"http": proxy.endpoint_url},
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=5,
        read_timeout=20,
    )
    client = boto3.session.Session().client(
        "s3", endpoint_url=f"http://{DOMAIN}:{proxy.http_port}", region_name=REGION,
        aws_access_key_id=access_key, aws_secret_access_key=secret_key, config=config,
    )
    client.meta.events.register("before-send.s3", _no_expect_for_empty_bodies)
    return client


@pytest.fixture
def vproxy(start_proxy: Callable[..., Any], bucket: str) -> Any:
    return start_proxy(bucket, virtual_host_domains=[DOMAIN])


# --------------------------------------------------------------------------
# virtual-hosted requests, by hand


def test_virtual_host_put_get_head_delete(vproxy: Any, direct: Any, bucket: str) -> None:
    host = vhost(bucket, vproxy)
    path = "/" + quote_key(ODD_KEY)
    assert_ok(signed_request(vproxy, "PUT", host, path, body=b"virtually hosted",
                             headers={"x-amz-meta-style": "virtual"}))
    assert stored_body(direct, bucket, ODD_KEY) == b"virtually hosted"
    assert direct.head_object(Bucket=bucket, Key=ODD_KEY)["Metadata"] == {"style": "virtual"}

    response = signed_request(vproxy, "GET", host, path)
    assert_ok(response)
    assert response.content == b"virtually hosted"
    assert_ok(signed_request(vproxy, "HEAD", host, path))
    assert_ok(signed_request(vproxy, "DELETE", host, path))
    assert not object_exists(direct, bucket, ODD_KEY)


def test_virtual_host_bucket_operations(vproxy: Any, direct: Any, bucket: str) -> None:
    direct.put_object(Bucket=bucket, Key="dir/one", Body=b"1")
    direct.put_object(Bucket=bucket, Key="other", Body=b"2")
    host = vhost(bucket, vproxy)

    # GET / on a bucket host is ListObjects, not ListBuckets.
    response = signed_request(vproxy, "GET", host, "/?list-type=2&prefix=dir%2F")
    assert_ok(response)
    root = ET.fromstring(response.content)
    assert root.tag == f"{S3_NS}ListBucketResult", response.content[:300]
    assert root.findtext(f"{S3_NS}Name") == bucket
    assert [e.text for e in root.iter(f"{S3_NS}Key")] == ["dir/one"]

    response = signed_request(vproxy, "GET", host, "/")
    assert_ok(response)
    assert sorted(e.text or "" for e in ET.fromstring(response.content).iter(f"{S3_NS}Key")) == ["dir/one", "other"]

    assert_ok(signed_request(vproxy, "HEAD", host, "/"))


def test_virtual_host_without_port(vproxy: Any, direct: Any, bucket: str) -> None:
    assert_ok(signed_request(vproxy, "PUT", f"{bucket}.{DOMAIN}", "/no-port", body=b"np"))
    assert stored_body(direct, bucket, "no-port") == b"np"


def test_virtual_host_aws_chunked_upload(vproxy: Any, direct: Any, bucket: str) -> None:
    data = bytes(range(256)) * 100
    upload = ac.build_upload("PUT", f"http://{vhost(bucket, vproxy)}/streamed", data, ac.STREAMING_SIGNED)
    assert_ok(ac.send(upload, connect=("127.0.0.1", vproxy.http_port)))
    assert stored_body(direct, bucket, "streamed") == data


def test_virtual_host_wrong_secret(vproxy: Any, direct: Any, bucket: str) -> None:
    response = signed_request(vproxy, "PUT", vhost(bucket, vproxy), "/k", body=b"x", secret_key="not-the-secret")
    assert_s3_error(response, 403, "SignatureDoesNotMatch")
    assert stored_keys(direct, bucket) == []


def test_host_changed_after_signing(start_proxy: Callable[..., Any], make_bucket: Callable[..., str],
                                    direct: Any) -> None:
    # Signed for bucket a, sent to bucket b's host: the Host is signed.
    a, b = make_bucket(), make_bucket()
    proxy = start_proxy(a, b, virtual_host_domains=[DOMAIN])
    response = signed_request(proxy, "PUT", vhost(a, proxy), "/k", body=b"x", send_host=vhost(b, proxy))
    assert_s3_error(response, 403, "SignatureDoesNotMatch")
    assert stored_keys(direct, a) == [] and stored_keys(direct, b) == []


def test_virtual_host_unknown_bucket(vproxy: Any) -> None:
    response = signed_request(vproxy, "GET", vhost("not-in-cos-map", vproxy), "/k")
    assert_s3_error(response, 404, "NoSuchBucket")


def test_virtual_host_is_authorized(start_proxy: Callable[..., Any], direct: Any, bucket: str) -> None:
    seen: List[tuple] = []

    def validator(token: str, name: str) -> bool:
        seen.append((token, name))
        return False

    proxy = start_proxy(bucket, virtual_host_domains=[DOMAIN], validator=validator)
    direct.put_object(Bucket=bucket, Key="k", Body=b"secret")
    response = signed_request(proxy, "GET", vhost(bucket, proxy), "/k")
    assert_s3_error(response, 403, "AccessDenied")
    assert b"secret" not in response.content
    assert (CLIENT_ACCESS_KEY, bucket) in seen


def test_other_domains_stay_path_style(vproxy: Any, direct: Any, bucket: str) -> None:
    # Host under another domain, and the bare proxy domain: path style.
    for host in (f"{bucket}.elsewhere.test:{vproxy.http_port}", f"{DOMAIN}:{vproxy.http_port}",
                 f"127.0.0.1:{vproxy.http_port}"):
        key = f"path-{host.split(':')[0]}"
        assert_ok(signed_request(vproxy, "PUT", host, f"/{bucket}/{key}", body=host.encode()))
        assert stored_body(direct, bucket, key) == host.encode()


def test_without_virtual_host_domains_everything_is_path_style(proxy: Any, direct: Any, bucket: str) -> None:
    # The default proxy (no virtual_host_domains): bucket.s3.osp.test is just a Host.
    assert_ok(signed_request(proxy, "PUT", vhost(bucket, proxy), f"/{bucket}/plain", body=b"p"))
    assert stored_body(direct, bucket, "plain") == b"p"


# --------------------------------------------------------------------------
# boto3 with virtual addressing, through the proxy as an HTTP proxy


def test_boto3_virtual_addressing(vproxy: Any, direct: Any, bucket: str) -> None:
    sent: List[str] = []
    client = virtual_client(vproxy)
    client.meta.events.register("before-send.s3", lambda request, **kw: sent.append(request.url))

    client.put_object(Bucket=bucket, Key=ODD_KEY, Body=b"boto3 virtual", Metadata={"k": "v"})
    assert sent[-1].startswith(f"http://{bucket}.{DOMAIN}:{vproxy.http_port}/"), sent
    assert stored_body(direct, bucket, ODD_KEY) == b"boto3 virtual"

    assert client.get_object(Bucket=bucket, Key=ODD_KEY)["Body"].read() == b"boto3 virtual"
    assert client.head_object(Bucket=bucket, Key=ODD_KEY)["Metadata"] == {"k": "v"}
    listed = client.list_objects_v2(Bucket=bucket, Prefix="dir/")
    assert [o["Key"] for o in listed["Contents"]] == [ODD_KEY]
    client.head_bucket(Bucket=bucket)
    client.delete_object(Bucket=bucket, Key=ODD_KEY)
    assert stored_keys(direct, bucket) == []


def test_boto3_virtual_list_buckets(vproxy: Any, bucket: str) -> None:
    names = [b["Name"] for b in virtual_client(vproxy).list_buckets()["Buckets"]]
    assert names == [bucket]


def test_boto3_virtual_presigned_get(vproxy: Any, direct: Any, bucket: str) -> None:
    direct.put_object(Bucket=bucket, Key="shared", Body=b"presigned virtual")
    url = virtual_client(vproxy).generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "shared"})
    assert url.startswith(f"http://{bucket}.{DOMAIN}:"), url
    response = requests.get(url, proxies={"http": vproxy.endpoint_url}, timeout=20)
    assert response.status_code == 200, response.content
    assert response.content == b"presigned virtual"


# --------------------------------------------------------------------------
# ListBuckets from cos_map


def closed_entry(backend: Any) -> dict:
    """A cos_map entry whose backend port has nothing listening."""
    return backend.entry(port=free_port())


def listed(response: Any) -> List[str]:
    root = ET.fromstring(response.content)
    assert root.tag == f"{S3_NS}ListAllMyBucketsResult", response.content[:300]
    buckets = root.findall(f"{S3_NS}Buckets/{S3_NS}Bucket")
    for entry in buckets:
        assert entry.findtext(f"{S3_NS}CreationDate"), response.content[:300]
    return [entry.findtext(f"{S3_NS}Name") or "" for entry in buckets]


def test_list_buckets_follows_the_validator(start_proxy: Callable[..., Any], client_for: Callable[..., Any],
                                            backend: Any, make_bucket: Callable[..., str]) -> None:
    a, b = make_bucket(), make_bucket()
    allowed = {CLIENT_ACCESS_KEY: {a, "zz-closed"}, OTHER_ACCESS_KEY: {b}}
    proxy = start_proxy(a, b, cos_map={"zz-closed": closed_entry(backend)},
                        validator=lambda token, name: name in allowed.get(token, set()))

    names = [x["Name"] for x in client_for(proxy).list_buckets()["Buckets"]]
    assert sorted(names) == sorted([a, "zz-closed"])
    other = client_for(proxy, OTHER_ACCESS_KEY, OTHER_SECRET_KEY)
    assert [x["Name"] for x in other.list_buckets()["Buckets"]] == [b]


def test_list_buckets_without_validator_lists_cos_map(start_proxy: Callable[..., Any], backend: Any) -> None:
    proxy = start_proxy(cos_map={"alpha": closed_entry(backend), "beta": closed_entry(backend)})
    response = signed_request(proxy, "GET", f"127.0.0.1:{proxy.http_port}", "/")
    assert response.status_code == 200, response.content
    assert "xml" in response.headers.get("Content-Type", "")
    assert sorted(listed(response)) == ["alpha", "beta"]


def test_list_buckets_prefix(start_proxy: Callable[..., Any], backend: Any) -> None:
    # ListBuckets takes prefix= (boto3 list_buckets(Prefix=...)); the answer
    # must be filtered, as S3 does.
    proxy = start_proxy(cos_map={"alpha": closed_entry(backend), "beta": closed_entry(backend)})
    response = signed_request(proxy, "GET", f"127.0.0.1:{proxy.http_port}", "/?prefix=al")
    assert response.status_code == 200, response.content
    assert listed(response) == ["alpha"]


def test_list_buckets_pages(start_proxy: Callable[..., Any], backend: Any) -> None:
    # max-buckets pages the answer; the continuation token leads to the rest,
    # skipping buckets the validator denies.
    names = ["b-one", "b-two", "b-three", "b-denied", "b-four"]
    proxy = start_proxy(cos_map={n: closed_entry(backend) for n in names},
                        validator=lambda token, bucket: bucket != "b-denied")
    host = f"127.0.0.1:{proxy.http_port}"
    seen: List[str] = []
    query = "/?max-buckets=2"
    for _ in range(5):
        response = signed_request(proxy, "GET", host, query)
        assert response.status_code == 200, response.content
        page = listed(response)
        assert len(page) <= 2
        seen += page
        token = re.search(rb"<ContinuationToken>([^<]+)</ContinuationToken>", response.content)
        if token is None:
            break
        query = "/?max-buckets=2&continuation-token=" + token.group(1).decode()
    assert seen == ["b-four", "b-one", "b-three", "b-two"]
    bad = signed_request(proxy, "GET", host, "/?max-buckets=0")
    assert bad.status_code == 400 and b"<Code>InvalidArgument</Code>" in bad.content


def test_list_buckets_needs_no_backend(start_proxy: Callable[..., Any], client_for: Callable[..., Any],
                                       backend: Any) -> None:
    # Every backend is unreachable: the answer comes from cos_map alone.
    proxy = start_proxy(cos_map={"only-closed": closed_entry(backend)}, validator=lambda token, name: True)
    assert [x["Name"] for x in client_for(proxy).list_buckets()["Buckets"]] == ["only-closed"]


def test_list_buckets_on_the_bare_virtual_domain(start_proxy: Callable[..., Any], backend: Any) -> None:
    proxy = start_proxy(cos_map={"gamma": closed_entry(backend)}, virtual_host_domains=[DOMAIN])
    response = signed_request(proxy, "GET", f"{DOMAIN}:{proxy.http_port}", "/")
    assert response.status_code == 200, response.content
    assert listed(response) == ["gamma"]


def test_list_buckets_is_authenticated(start_proxy: Callable[..., Any], backend: Any) -> None:
    proxy = start_proxy(cos_map={"delta": closed_entry(backend)})
    host = f"127.0.0.1:{proxy.http_port}"
    response = signed_request(proxy, "GET", host, "/", secret_key="not-the-secret")
    assert_s3_error(response, 403, "SignatureDoesNotMatch")
    assert b"delta" not in response.content
    response = signed_request(proxy, "GET", host, "/", access_key="AKIANOBODYKNOWS00000", secret_key="x")
    assert_s3_error(response, 403, "InvalidAccessKeyId")
    anonymous = requests.get(proxy.endpoint_url + "/", timeout=20)
    assert_s3_error(anonymous, 403, "AccessDenied")
    assert b"delta" not in anonymous.content
