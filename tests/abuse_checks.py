"""What the hostile-input suite (test_abuse_*.py) shares: a SigV4 signer
over exactly the headers sent, edits of a raw header list, and the ways a
refusal is checked.

Every shape in the suite goes through the proxy and must be refused the way
S3 refuses it -- the right status, an S3 XML error with a Code and a
RequestId -- with nothing stored at (or, where a recording backend can
tell, nothing forwarded to) the backend, and the proxy still serving a
normal boto3 request afterwards.

Most requests are sent on raw sockets (HTTP clients refuse to send these
shapes) and signed by ``sign_raw`` below, a SigV4 signer that canonicalises
exactly what goes on the wire, duplicated headers included. A control test
(test_abuse_authentication.test_raw_signer_is_accepted) proves it right, so
a refusal is about the shape, not the signature.

Some shapes never reach the proxy's handler: Go's net/http answers them
itself, in plain text (see test_abuse_headers.GO_ANSWERED). For those the
tests assert the status, a closed connection and nothing stored.

The suite: test_abuse_authentication.py (malformed and duplicated
Authorization headers, x-amz-date, presigned queries),
test_abuse_chunked.py (aws-chunked framing), test_abuse_headers.py (CR, LF,
NUL and size limits in the header section; request smuggling),
test_abuse_targets.py (bucket names, dot segments, double encoding,
absolute form, CONNECT, unknown domains).

Covered elsewhere, not repeated there:
  test_auth.py       Credential=nonsense, wrong/unknown keys, skewed dates,
                     unsigned x-amz-* headers, anonymous requests
  test_presign.py    X-Amz-Expires 0, -1, 604801, "abc", ""; a missing
                     X-Amz-Signature (400 or 403); tampered queries
  test_streaming.py  non-hex chunk size, garbage instead of the CRLF after
                     chunk data, a body cut before/inside the final chunk,
                     chunk data beyond (or short of)
                     x-amz-decoded-content-length, a size overrunning its
                     data, missing chunk signatures
  test_addressing.py other domains stay path style, unknown virtual bucket
  test_timeouts.py   a client that never finishes its headers
"""

from __future__ import annotations

import functools
from typing import Any, Dict

import s3wire
from helpers import CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY, RAW_TIMEOUT, assert_xml_error, make_client, parse_s3_error
from s3wire import Headers, Reply

TIMEOUT = RAW_TIMEOUT  # every socket operation


# s3wire's signer with the first client key, over exactly the headers sent.
sign_raw = functools.partial(s3wire.sign_raw, access_key=CLIENT_ACCESS_KEY, secret_key=CLIENT_SECRET_KEY)


def replace(headers: Headers, name: str, *values: str) -> Headers:
    """``headers`` with every ``name`` header dropped and ``values`` appended."""
    return [(n, v) for n, v in headers if n.lower() != name.lower()] + [(name, v) for v in values]


def value(headers: Headers, name: str) -> str:
    return next(v for n, v in headers if n.lower() == name.lower())


def assert_any_xml_error(reply: Reply) -> Dict[str, str]:
    """Some S3 XML error (4xx or 5xx), whichever the code."""
    assert reply.status >= 400, (reply.status, reply.body[:300])
    assert "xml" in reply.headers.get("Content-Type", ""), (dict(reply.headers), reply.body[:300])
    return parse_s3_error(reply.body)


# The only answers a request may get that states its header is malformed
# (rather than, say, that the signature is wrong or the request was fine).
MALFORMED = {
    "AuthorizationHeaderMalformed": 400,
    "InvalidArgument": 400,
    "InvalidRequest": 400,
    "AccessDenied": 403,  # an x-amz-date that is not a date
}


def assert_refused_as_malformed(reply: Reply) -> None:
    assert reply.status in (400, 403), (reply.status, reply.body[:600])
    fields = assert_xml_error(reply, reply.status, tuple(MALFORMED))
    assert MALFORMED[fields["Code"]] == reply.status, fields


def assert_go_answered(reply: Reply, status: int) -> None:
    """Refused by Go's HTTP server before the handler: the status, and the
    connection closed (the request is not processed any further)."""
    assert reply.status == status, (reply.status, reply.body[:300])
    assert reply.closed, "the connection was kept open after a request Go could not frame"


def assert_still_serving(proxy: Any, direct: Any, bucket: str) -> None:
    """A normal boto3 request through the same proxy still succeeds."""
    client = make_client(proxy.endpoint_url, CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY)
    client.put_object(Bucket=bucket, Key="still-serving", Body=b"alive")
    assert client.get_object(Bucket=bucket, Key="still-serving")["Body"].read() == b"alive"
    direct.delete_object(Bucket=bucket, Key="still-serving")
