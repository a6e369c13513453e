"""One client thread: its own boto3 client and key prefix, a weighted mix of
operations, every answer checked."""

from __future__ import annotations

import random
import threading
import time
import urllib.error
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from soak.bodies import SeededBody, body_digest, pick_size, stream_digest
from soak.config import (
    BUCKET,
    KINDS,
    MULTIPART_PARTS,
    PART_SIZE,
    REGION,
    TOUR,
    TOUR_THREADS,
    WEIGHTS,
    KiB,
    MiB,
    SoakConfig,
)
from soak.processes import OPENER
from soak.stats import CheckFailed, Stats, describe, expect, status_of


def make_client(endpoint: str, access_key: str, secret_key: str) -> Any:
    """boto3 through the proxy: path style, SigV4, no retries, no
    environment proxy."""
    config = Config(
        region_name=REGION,
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=10,
        read_timeout=120,
        proxies={},
        max_pool_connections=2,
    )
    client = boto3.session.Session().client(
        "s3", endpoint_url=endpoint, aws_access_key_id=access_key, aws_secret_access_key=secret_key,
        region_name=REGION, config=config,
    )
    # botocore/botocore#3755: no Expect: 100-continue on an empty body (see
    # tests/helpers.py); bodies here are never empty, but CompleteMultipartUpload
    # and the like keep their default.
    client.meta.events.register("before-send.s3", _no_expect_for_empty_bodies)
    return client


def _no_expect_for_empty_bodies(request: Any, **kwargs: Any) -> None:
    if request.headers.get("Content-Length") == "0":
        request.headers.pop("Expect", None)


@dataclass
class Stored:
    key: str
    seed: int
    size: int
    digest: str
    etag: str


class Worker:
    """One client thread: its own boto3 client, its own key prefix, a record
    of what it stored there."""

    def __init__(self, index: int, cfg: SoakConfig, client: Any, stats: Stats, stop: threading.Event) -> None:
        self.index, self.cfg, self.client, self.stats, self.stop = index, cfg, client, stats, stop
        self.rng = random.Random(f"{cfg.seed}-{index}")
        self.prefix = f"w{index:03d}/"
        self.objects: Dict[str, Stored] = {}
        self.uncertain: set[str] = set()  # keys an error left in an unknown state
        self.counter = 0
        self.thread = threading.Thread(target=self.run, name=f"soak-{index}", daemon=True)

    # -- the loop -----------------------------------------------------------

    def run(self) -> None:
        if self.index < TOUR_THREADS:
            for n, kind in enumerate(TOUR):
                size = self.cfg.max_size if (self.index == 0 and n == 0) else None
                self.attempt(kind, size)
        while not self.stop.is_set():
            self.attempt(self.choose())

    def attempt(self, kind: str, size: Optional[int] = None) -> None:
        op: Callable[..., None] = getattr(self, f"op_{kind}")
        if kind not in ("put", "multipart", "list") and not self.objects:
            kind, op = "put", self.op_put
        started = time.monotonic()
        try:
            op(size) if kind == "put" else op()
        except Exception as exc:  # noqa: BLE001 - every failure is counted and reported
            self.stats.error(kind, f"{self.prefix} {describe(exc)}")
        else:
            self.stats.ok(kind, time.monotonic() - started)

    def stored_bytes(self) -> int:
        return sum(o.size for o in self.objects.values())

    def choose(self) -> str:
        if len(self.objects) >= self.cfg.max_objects_per_client or self.stored_bytes() > self.cfg.budget():
            return "delete"
        return self.rng.choices(KINDS, weights=[WEIGHTS[k] for k in KINDS])[0]

    def new_seed(self) -> int:
        self.counter += 1
        return ((self.cfg.seed & 0xFFFF) << 48) | (self.index << 32) | self.counter

    def pick(self) -> Stored:
        return self.objects[self.rng.choice(sorted(self.objects))]

    # -- operations -----------------------------------------------------------

    def op_put(self, size: Optional[int] = None) -> None:
        size = size or pick_size(self.rng, self.cfg.max_size)
        seed = self.new_seed()
        if self.objects and self.rng.random() < 0.1:
            key = self.pick().key  # an overwrite
        else:
            key = f"{self.prefix}{self.counter:08d}-{size}"
        self.objects.pop(key, None)
        self.uncertain.add(key)
        response = self.client.put_object(Bucket=BUCKET, Key=key, Body=SeededBody(seed, 0, size))
        self.stats.moved(up=size)
        expect(status_of(response) == 200, f"PUT {key}: HTTP {status_of(response)}")
        etag = response.get("ETag", "")
        expect(bool(etag), f"PUT {key}: no ETag")
        self.objects[key] = Stored(key, seed, size, body_digest(seed, 0, size), etag)
        self.uncertain.discard(key)

    def op_get(self) -> None:
        obj = self.pick()
        response = self.client.get_object(Bucket=BUCKET, Key=obj.key)
        body = response["Body"]
        try:
            expect(status_of(response) == 200, f"GET {obj.key}: HTTP {status_of(response)}")
            expect(response["ContentLength"] == obj.size,
                   f"GET {obj.key}: Content-Length {response['ContentLength']}, stored {obj.size}")
            expect(response.get("ETag") == obj.etag, f"GET {obj.key}: ETag {response.get('ETag')}, PUT gave {obj.etag}")
            digest, length = stream_digest(body.read)
        finally:
            body.close()
        self.stats.moved(down=length)
        expect(length == obj.size, f"GET {obj.key}: {length} bytes, stored {obj.size}")
        expect(digest == obj.digest, f"GET {obj.key}: {obj.size} bytes with the wrong SHA-256 {digest}")

    def op_range_get(self) -> None:
        obj = self.pick()
        first = self.rng.randrange(obj.size)
        last = min(obj.size - 1, first + self.rng.randint(0, MiB))
        response = self.client.get_object(Bucket=BUCKET, Key=obj.key, Range=f"bytes={first}-{last}")
        body = response["Body"]
        want = f"bytes {first}-{last}/{obj.size}"
        try:
            expect(status_of(response) == 206, f"GET {obj.key} bytes={first}-{last}: HTTP {status_of(response)}")
            expect(response.get("ContentRange") == want,
                   f"GET {obj.key}: Content-Range {response.get('ContentRange')!r}, wanted {want!r}")
            digest, length = stream_digest(body.read)
        finally:
            body.close()
        self.stats.moved(down=length)
        expect(length == last - first + 1, f"GET {obj.key} {want}: {length} bytes")
        expect(digest == body_digest(obj.seed, first, last + 1), f"GET {obj.key} {want}: wrong SHA-256")

    def op_head(self) -> None:
        obj = self.pick()
        response = self.client.head_object(Bucket=BUCKET, Key=obj.key)
        expect(status_of(response) == 200, f"HEAD {obj.key}: HTTP {status_of(response)}")
        expect(response["ContentLength"] == obj.size,
               f"HEAD {obj.key}: Content-Length {response['ContentLength']}, stored {obj.size}")
        expect(response.get("ETag") == obj.etag, f"HEAD {obj.key}: ETag {response.get('ETag')}, PUT gave {obj.etag}")

    def op_list(self) -> None:
        page_size = self.rng.choice([7, 100, 1000])
        listed: Dict[str, Tuple[int, str]] = {}
        token: Optional[str] = None
        pages = 0
        while True:
            kwargs: Dict[str, Any] = {"Bucket": BUCKET, "Prefix": self.prefix, "MaxKeys": page_size}
            if token:
                kwargs["ContinuationToken"] = token
            response = self.client.list_objects_v2(**kwargs)
            pages += 1
            expect(status_of(response) == 200, f"LIST {self.prefix}: HTTP {status_of(response)}")
            contents = response.get("Contents", [])
            expect(len(contents) <= page_size, f"LIST {self.prefix}: {len(contents)} keys in a page of {page_size}")
            for item in contents:
                expect(item["Key"] not in listed, f"LIST {self.prefix}: {item['Key']} listed twice")
                listed[item["Key"]] = (int(item["Size"]), str(item.get("ETag", "")))
            if not response.get("IsTruncated"):
                break
            token = response.get("NextContinuationToken")
            expect(bool(token), f"LIST {self.prefix}: truncated without a continuation token")
            expect(pages < 1000, f"LIST {self.prefix}: more than 1000 pages")
        missing = sorted(set(self.objects) - set(listed))
        extra = sorted(set(listed) - set(self.objects) - self.uncertain)
        expect(not missing, f"LIST {self.prefix}: stored keys missing: {missing[:5]}")
        expect(not extra, f"LIST {self.prefix}: keys never stored (or deleted): {extra[:5]}")
        for key, obj in self.objects.items():
            size, etag = listed[key]
            expect(size == obj.size, f"LIST {key}: Size {size}, stored {obj.size}")
            expect(etag == obj.etag, f"LIST {key}: ETag {etag}, PUT gave {obj.etag}")

    def op_presign_get(self) -> None:
        obj = self.pick()
        url = self.client.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": obj.key},
                                                 ExpiresIn=900)
        try:
            with OPENER.open(url, timeout=120) as response:
                expect(response.status == 200, f"presigned GET {obj.key}: HTTP {response.status}")
                expect(response.headers.get("Content-Length") == str(obj.size),
                       f"presigned GET {obj.key}: Content-Length {response.headers.get('Content-Length')}")
                digest, length = stream_digest(response.read)
        except urllib.error.HTTPError as exc:
            raise CheckFailed(f"presigned GET {obj.key}: HTTP {exc.code}: {exc.read()[:300]!r}") from None
        self.stats.moved(down=length)
        expect(length == obj.size, f"presigned GET {obj.key}: {length} bytes, stored {obj.size}")
        expect(digest == obj.digest, f"presigned GET {obj.key}: wrong SHA-256")

    def op_delete(self) -> None:
        if len(self.objects) >= self.cfg.max_objects_per_client or self.stored_bytes() > self.cfg.budget():
            obj = max(self.objects.values(), key=lambda o: o.size)
        else:
            obj = self.pick()
        del self.objects[obj.key]
        self.uncertain.add(obj.key)
        response = self.client.delete_object(Bucket=BUCKET, Key=obj.key)
        expect(status_of(response) == 204, f"DELETE {obj.key}: HTTP {status_of(response)}")
        try:
            self.client.head_object(Bucket=BUCKET, Key=obj.key)
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            expect(status == 404, f"HEAD after DELETE {obj.key}: {describe(exc)}")
        else:
            raise CheckFailed(f"HEAD after DELETE {obj.key}: the object is still there")
        self.uncertain.discard(obj.key)

    def op_multipart(self) -> None:
        seed = self.new_seed()
        sizes = [PART_SIZE] * MULTIPART_PARTS + [self.rng.randint(1, 512 * KiB)]
        total = sum(sizes)
        key = f"{self.prefix}{self.counter:08d}-mpu-{total}"
        self.uncertain.add(key)
        upload_id = self.client.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
        try:
            parts: List[Dict[str, Any]] = []
            offset = 0
            for number, size in enumerate(sizes, 1):
                response = self.client.upload_part(Bucket=BUCKET, Key=key, UploadId=upload_id, PartNumber=number,
                                                   Body=SeededBody(seed, offset, offset + size))
                self.stats.moved(up=size)
                expect(status_of(response) == 200, f"UploadPart {key} #{number}: HTTP {status_of(response)}")
                parts.append({"PartNumber": number, "ETag": response["ETag"]})
                offset += size
            done = self.client.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload_id,
                                                         MultipartUpload={"Parts": parts})
        except BaseException:
            try:
                self.client.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload_id)
            except Exception:  # noqa: BLE001 - the first failure is the one reported
                pass
            raise
        expect(status_of(done) == 200, f"CompleteMultipartUpload {key}: HTTP {status_of(done)}")
        etag = str(done.get("ETag", ""))
        expect(etag.endswith(f'-{len(sizes)}"'), f"CompleteMultipartUpload {key}: ETag {etag!r}")
        obj = Stored(key, seed, total, body_digest(seed, 0, total), etag)
        self.objects[key] = obj
        self.uncertain.discard(key)
        # Read it back whole.
        response = self.client.get_object(Bucket=BUCKET, Key=key)
        body = response["Body"]
        try:
            expect(response["ContentLength"] == total, f"GET {key}: Content-Length {response['ContentLength']}")
            expect(response.get("ETag") == etag, f"GET {key}: ETag {response.get('ETag')}, completed as {etag}")
            digest, length = stream_digest(body.read)
        finally:
            body.close()
        self.stats.moved(down=length)
        expect(length == total and digest == obj.digest,
               f"GET {key} after CompleteMultipartUpload: {length} bytes of {total}, SHA-256 match: {digest == obj.digest}")
