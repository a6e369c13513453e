"""Object keys keep every byte on the way through the proxy."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from helpers import object_exists, stored_body, stored_keys

ODD_KEYS = [
    "with space.txt",
    "  leading and trailing  ",
    "ünïcødé/日本語/emoji-🙂.txt",
    "plus+sign+1",
    "percent%20not-a-space%",
    "100%",
    "reserved !\"#$&'()*,:;<=>@[]^`{|}",
    "tilde~and.dots..and-dash_underscore",
    "deep/a/b/c/d/e/f",
    "question?mark=and&amp",
]


@pytest.mark.parametrize("key", ODD_KEYS)
def test_odd_key_round_trip(client: Any, direct: Any, bucket: str, key: str) -> None:
    body = ("body of " + key).encode()
    client.put_object(Bucket=bucket, Key=key, Body=body)

    assert stored_keys(direct, bucket) == [key]
    assert stored_body(direct, bucket, key) == body
    assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == body
    assert client.head_object(Bucket=bucket, Key=key)["ContentLength"] == len(body)
    assert [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]] == [key]
    client.delete_object(Bucket=bucket, Key=key)
    assert stored_keys(direct, bucket) == []


def test_double_slash_key(client: Any, direct: Any, bucket: str) -> None:
    # A path with '//' must be neither cleaned nor redirected by the proxy.
    # (versitygw's posix backend stores a//b as the file a/b, so the listing
    # cannot tell the two apart; the exact key must still be readable.)
    client.put_object(Bucket=bucket, Key="a//b", Body=b"double")

    assert stored_body(direct, bucket, "a//b") == b"double"
    assert client.get_object(Bucket=bucket, Key="a//b")["Body"].read() == b"double"


def test_trailing_slash_key(client: Any, direct: Any, bucket: str) -> None:
    # A "folder marker": the trailing slash is part of the key.
    client.put_object(Bucket=bucket, Key="folder/", Body=b"")
    client.put_object(Bucket=bucket, Key="folder/inside", Body=b"in")

    assert stored_keys(direct, bucket) == ["folder/", "folder/inside"]
    assert client.head_object(Bucket=bucket, Key="folder/")["ContentLength"] == 0
    listed = client.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in listed["CommonPrefixes"]] == ["folder/"]


def test_key_that_starts_with_the_bucket_name_tail(start_proxy: Callable[..., Any], client_for: Callable[..., Any],
                                                   direct: Any, new_bucket_name: Callable[..., str]) -> None:
    # The original cut the key out of the path with a substring search, so
    # /mybucket/b became key "ybucket/b". Keys named like (parts of) the
    # bucket must land exactly where they were sent.
    name = new_bucket_name("mybucket")
    direct.create_bucket(Bucket=name)
    client = client_for(start_proxy(name))
    keys = ["b", name, name[1:] + "/b", "m"]

    for key in keys:
        client.put_object(Bucket=name, Key=key, Body=key.encode())

    assert stored_keys(direct, name) == sorted(keys)
    for key in keys:
        assert stored_body(direct, name, key) == key.encode()
    assert not object_exists(direct, name, "ybucket/b")


def test_bucket_name_prefix_of_another_bucket(start_proxy: Callable[..., Any], client_for: Callable[..., Any],
                                              direct: Any, new_bucket_name: Callable[..., str]) -> None:
    # /data-x/k must be routed to bucket "data-x", not to "data" whose name
    # is a prefix of it.
    short = new_bucket_name("data")
    long = short + "-x"
    for b in (short, long):
        direct.create_bucket(Bucket=b)
    client = client_for(start_proxy(short, long))

    client.put_object(Bucket=long, Key="k", Body=b"long")
    client.put_object(Bucket=short, Key="k", Body=b"short")

    assert stored_body(direct, long, "k") == b"long"
    assert stored_body(direct, short, "k") == b"short"
