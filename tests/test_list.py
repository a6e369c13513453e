"""ListObjectsV2 through the proxy: prefixes, delimiters, pagination."""

from __future__ import annotations

from typing import Any


def test_list_v2_prefixes_and_delimiters(client: Any, direct: Any, bucket: str) -> None:
    keys = ["a/1", "a/2", "a/b/3", "a/b/4", "b/5", "c", "dir one/x", "dir one/y"]
    for key in keys:
        direct.put_object(Bucket=bucket, Key=key, Body=b"x")

    everything = client.list_objects_v2(Bucket=bucket)
    assert [o["Key"] for o in everything["Contents"]] == sorted(keys)

    top = client.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [o["Key"] for o in top.get("Contents", [])] == ["c"]
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["a/", "b/", "dir one/"]

    under_a = client.list_objects_v2(Bucket=bucket, Prefix="a/", Delimiter="/")
    assert [o["Key"] for o in under_a["Contents"]] == ["a/1", "a/2"]
    assert [p["Prefix"] for p in under_a["CommonPrefixes"]] == ["a/b/"]

    spaced = client.list_objects_v2(Bucket=bucket, Prefix="dir one/")
    assert [o["Key"] for o in spaced["Contents"]] == ["dir one/x", "dir one/y"]

    after = client.list_objects_v2(Bucket=bucket, StartAfter="a/b/4")
    assert [o["Key"] for o in after["Contents"]] == ["b/5", "c", "dir one/x", "dir one/y"]


def test_list_v2_pagination(client: Any, direct: Any, bucket: str) -> None:
    keys = [f"page/{i:02d}" for i in range(7)]
    for key in keys:
        direct.put_object(Bucket=bucket, Key=key, Body=b"x")

    seen = []
    pages = 0
    kwargs = {"Bucket": bucket, "Prefix": "page/", "MaxKeys": 3}
    while True:
        page = client.list_objects_v2(**kwargs)
        pages += 1
        seen += [o["Key"] for o in page.get("Contents", [])]
        if not page.get("IsTruncated"):
            break
        kwargs["ContinuationToken"] = page["NextContinuationToken"]
    assert seen == keys
    assert pages == 3


def test_list_v2_prefix_with_reserved_characters(client: Any, direct: Any, bucket: str) -> None:
    # The prefix travels in the query string: '+', '&', '=', '%' and
    # non-ASCII must survive the proxy's re-encoding and re-signing.
    keys = ["a+b c/1", "a+b c/2", "a b c/3", "x&y=z%/4", "ünï/5"]
    for key in keys:
        direct.put_object(Bucket=bucket, Key=key, Body=b"x")

    for prefix, expected in [("a+b c/", ["a+b c/1", "a+b c/2"]), ("a b", ["a b c/3"]),
                             ("x&y=z%/", ["x&y=z%/4"]), ("ünï", ["ünï/5"])]:
        listed = client.list_objects_v2(Bucket=bucket, Prefix=prefix)
        assert [o["Key"] for o in listed.get("Contents", [])] == expected, prefix
