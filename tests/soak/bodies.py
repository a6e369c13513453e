"""Bodies made from a seed, block by block as they are read, so that no
object is ever held whole and every byte read back can be checked."""

from __future__ import annotations

import hashlib
import io
import math
import random
import struct
from typing import Any, Callable, List, Optional, Tuple

from soak.config import READ_CHUNK, KiB, MiB

BLOCK = 64 * KiB
_POOL = random.Random(0x5EED50A4).randbytes(1 * MiB + BLOCK)
_M64 = (1 << 64) - 1


def _block(seed: int, index: int) -> bytes:
    """Block ``index`` of the body of ``seed``: 16 bytes naming (seed,
    index), then a stretch of a fixed random pool chosen by both. Any two
    blocks of any two bodies differ, so a misplaced or foreign block shows."""
    h = ((seed * 0x9E3779B97F4A7C15) ^ (index * 0xC2B2AE3D27D4EB4F)) & _M64
    h ^= h >> 29
    offset = h % (len(_POOL) - BLOCK)
    return struct.pack(">QQ", seed & _M64, index) + _POOL[offset + 16: offset + BLOCK]


class SeededBody(io.RawIOBase):
    """Bytes ``start`` to ``end`` of the body of ``seed``, generated as they
    are read: seekable (botocore hashes a body, then rewinds it), never more
    than one 64 KiB block in memory."""

    def __init__(self, seed: int, start: int, end: int) -> None:
        super().__init__()
        if not 0 <= start <= end:
            raise ValueError(f"bad window {start}-{end}")
        self.seed, self.start, self.end = seed, start, end
        self.pos = start
        self._index = -1
        self._cached = b""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos - self.start

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: self.start, io.SEEK_CUR: self.pos, io.SEEK_END: self.end}[whence]
        if base + offset < self.start:
            raise ValueError("seek before the start")
        self.pos = base + offset
        return self.pos - self.start

    def _get(self, index: int) -> bytes:
        if index != self._index:
            self._index, self._cached = index, _block(self.seed, index)
        return self._cached

    def read(self, size: Optional[int] = -1) -> bytes:
        left = self.end - self.pos
        if left <= 0:
            return b""
        want = left if size is None or size < 0 else min(size, left)
        parts: List[bytes] = []
        while want > 0:
            index, within = divmod(self.pos, BLOCK)
            piece = self._get(index)[within: within + want]
            parts.append(piece)
            self.pos += len(piece)
            want -= len(piece)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)


def body_digest(seed: int, start: int, end: int) -> str:
    """SHA-256 (hex) of bytes ``start`` to ``end`` of the body of ``seed``."""
    digest = hashlib.sha256()
    body = SeededBody(seed, start, end)
    while True:
        chunk = body.read(READ_CHUNK)
        if not chunk:
            return digest.hexdigest()
        digest.update(chunk)


def stream_digest(read: Callable[[int], bytes]) -> Tuple[str, int]:
    """Reads a response to its end in 1 MiB chunks: (SHA-256 hex, length)."""
    digest = hashlib.sha256()
    total = 0
    while True:
        chunk = read(READ_CHUNK)
        if not chunk:
            return digest.hexdigest(), total
        digest.update(chunk)
        total += len(chunk)


def pick_size(rng: random.Random, max_size: int) -> int:
    """Mostly small: 70% 1-64 KiB, 22% 64 KiB-1 MiB, 6.5% 1-8 MiB, 1.5%
    8 MiB up to max_size (log-uniform within each band; bands above
    max_size are cut to it)."""
    r = rng.random()
    low, high = (KiB, 64 * KiB) if r < 0.70 else (64 * KiB, MiB) if r < 0.92 else \
        (MiB, 8 * MiB) if r < 0.985 else (8 * MiB, 64 * MiB)
    high = min(high, max_size)
    low = min(low, high)
    return int(round(math.exp(rng.uniform(math.log(low), math.log(high)))))


def human_bytes(n: float) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", MiB), ("KiB", KiB)):
        if abs(n) >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"
