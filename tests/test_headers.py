"""Headers on the way through: end-to-end headers reach the backend,
hop-by-hop and forwarding headers never break the proxy's re-signature."""

from __future__ import annotations

from typing import Any

from helpers import stored_body

PROXY_HEADERS = {
    "X-Forwarded-For": "203.0.113.7, 198.51.100.1",
    "X-Forwarded-Host": "s3.example.com",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Port": "443",
    "Forwarded": "for=203.0.113.7;proto=https;host=s3.example.com",
    "Via": "1.1 lb.example.com",
    "X-Real-Ip": "203.0.113.7",
}
HOP_BY_HOP = {
    "Connection": "keep-alive, X-Hop-Only",
    "Keep-Alive": "timeout=5, max=100",
    "X-Hop-Only": "dropped at the first hop",
    "TE": "trailers",
}


def test_proxy_and_hop_by_hop_headers_added_after_signing(client: Any, direct: Any, bucket: str) -> None:
    # What a load balancer in front of the proxy adds: unsigned headers.
    def add(request: Any, **kwargs: Any) -> None:
        request.headers.update({**PROXY_HEADERS, **HOP_BY_HOP})

    client.meta.events.register("before-send.s3", add)

    client.put_object(Bucket=bucket, Key="via-lb", Body=b"through a load balancer")
    got = client.get_object(Bucket=bucket, Key="via-lb")

    assert got["Body"].read() == b"through a load balancer"
    assert stored_body(direct, bucket, "via-lb") == b"through a load balancer"


def test_signed_forwarding_headers(client: Any, direct: Any, bucket: str) -> None:
    # A client that signed X-Forwarded-For and Via: the proxy checks them as
    # signed, then drops them and signs anew without them.
    def add(request: Any, **kwargs: Any) -> None:
        request.headers["X-Forwarded-For"] = "203.0.113.7"
        request.headers["Via"] = "1.1 client-side-proxy"

    signed = {}

    def check(request: Any, **kwargs: Any) -> None:
        signed["authorization"] = request.headers["Authorization"].decode()

    client.meta.events.register("before-sign.s3", add)
    client.meta.events.register("before-send.s3", check)

    client.put_object(Bucket=bucket, Key="signed-xff", Body=b"signed forwarding headers")

    assert "via;x-amz-content-sha256;x-amz-date;x-forwarded-for" in signed["authorization"]
    assert stored_body(direct, bucket, "signed-xff") == b"signed forwarding headers"


def test_standard_object_headers_reach_the_backend(client: Any, direct: Any, bucket: str) -> None:
    body = b"\x1f\x8b pretend gzip bytes, stored as sent"
    client.put_object(
        Bucket=bucket,
        Key="headers",
        Body=body,
        CacheControl="max-age=60, public",
        ContentEncoding="gzip",
        ContentLanguage="de-CH",
        ContentType="application/octet-stream",
    )

    head = direct.head_object(Bucket=bucket, Key="headers")
    assert head["CacheControl"] == "max-age=60, public"
    assert head["ContentEncoding"] == "gzip"
    assert head["ContentLanguage"] == "de-CH"
    # Bytes pass untouched both ways (no transparent decompression).
    assert stored_body(direct, bucket, "headers") == body
    got = client.get_object(Bucket=bucket, Key="headers")
    assert got["Body"].read() == body
    assert got["ContentEncoding"] == "gzip"


def test_response_header_overrides_in_query(client: Any, direct: Any, bucket: str) -> None:
    # response-* query parameters are signed by the client and must reach
    # the backend unchanged (and re-signed).
    direct.put_object(Bucket=bucket, Key="report", Body=b"r")
    got = client.get_object(Bucket=bucket, Key="report",
                            ResponseContentDisposition='attachment; filename="r e+p.txt"',
                            ResponseContentType="text/plain")
    assert got["ContentDisposition"] == 'attachment; filename="r e+p.txt"'
    assert got["ContentType"] == "text/plain"
