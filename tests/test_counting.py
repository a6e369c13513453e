"""Request counting (process wide, as in the original project)."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from object_storage_proxy import (
    disable_request_counting,
    enable_request_counting,
    get_request_count,
    reset_request_count,
)


# Request counting is process-wide: every test here starts and ends with it off.
pytestmark = pytest.mark.usefixtures("counting_left_off")


def test_off_by_default(client: Any, bucket: str) -> None:
    client.list_objects_v2(Bucket=bucket)
    client.list_objects_v2(Bucket=bucket)
    assert get_request_count() == 0


def test_counts_requests_while_enabled(client: Any, bucket: str) -> None:
    enable_request_counting()
    for i in range(5):
        client.put_object(Bucket=bucket, Key=f"k{i}", Body=b"x")
    client.list_objects_v2(Bucket=bucket)
    client.get_object(Bucket=bucket, Key="k0")["Body"].read()
    assert get_request_count() == 7

    disable_request_counting()
    for _ in range(3):
        client.head_object(Bucket=bucket, Key="k0")
    assert get_request_count() == 7  # kept, not counting

    enable_request_counting()
    client.head_object(Bucket=bucket, Key="k0")
    assert get_request_count() == 8

    reset_request_count()
    assert get_request_count() == 0
    client.head_object(Bucket=bucket, Key="k0")
    assert get_request_count() == 1


def test_counts_every_server_of_the_process(start_proxy: Callable[..., Any], client_for: Callable[..., Any],
                                            bucket: str) -> None:
    first, second = client_for(start_proxy(bucket)), client_for(start_proxy(bucket))
    enable_request_counting()
    first.list_objects_v2(Bucket=bucket)
    second.list_objects_v2(Bucket=bucket)
    second.list_objects_v2(Bucket=bucket)
    assert get_request_count() == 3
