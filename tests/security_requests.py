"""Requests of the security suite, sent as written: one property a file,
each proven end to end against versitygw:

1. ``skip_signature_validation=True`` warns loudly and is refused on a
   non-loopback bind unless ``allow_unverified_on_network=True``
   (test_security_unverified.py).
2. Constant-time comparisons (go/internal/sigv4/consttime_test.go).
3. No request skips authentication: every method, ``Expect:
   100-continue``, query parameters that look like authentication, path
   tricks, and admin-looking paths (test_security_authentication.py).
4. Cached authorization decisions never outlive their TTL and never serve
   another token, bucket, operation or key (test_security_cache.py).
5. No secret, signature, bearer token or API key in the admin listener's
   ``/metrics`` or in an error body (test_security_secrets.py).
"""

from __future__ import annotations

import datetime
from typing import Any, Dict, Mapping, Optional

import awschunked as ac
from helpers import parse_s3_error, sign_request
from object_storage_proxy import ProxyServer
from s3wire import presign_with_botocore


def raw(proxy: ProxyServer, method: str, path: str, headers: Optional[Mapping[str, str]] = None,
        body: Optional[bytes] = None) -> ac.Response:
    """One request sent byte for byte as given (http.client keeps the path:
    no dot-segment removal, no re-encoding), to the proxy on 127.0.0.1."""
    all_headers = {"Host": f"127.0.0.1:{proxy.http_port}", **dict(headers or {})}
    return ac.raw_request("127.0.0.1", int(proxy.http_port or 0), method, path, all_headers, body, timeout=10)


def signed_headers(proxy: ProxyServer, method: str, path: str, body: bytes = b"", *,
                   sign_path: Optional[str] = None, **options: Any) -> Dict[str, str]:
    """Headers of ``method path`` signed by botocore (S3 SigV4: the path is
    signed as written, unnormalized). ``sign_path`` signs another spelling of
    the path than the one sent."""
    url = f"http://127.0.0.1:{proxy.http_port}{sign_path or path}"
    return sign_request(method, url, body=body, **options)


def error_code(response: ac.Response) -> str:
    return parse_s3_error(response.content)["Code"] if response.content else ""


def presign(url: str, access_key: str, secret_key: str, at: datetime.datetime, method: str = "GET") -> str:
    """A presigned URL made by botocore at a fixed time."""
    return presign_with_botocore(url, access_key=access_key, secret_key=secret_key, at=at, method=method)
