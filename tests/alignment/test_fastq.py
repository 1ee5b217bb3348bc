"""Streaming gunzip + FASTQ counting: the part that proves every read reached the aligner."""

from __future__ import annotations

import gzip
import io
import os

import pytest

from genomebus_alignment.core.fastq import FastqCount, InvalidReads, counted_fastq, gunzip_members


def _fastq(n: int, start: int = 0) -> bytes:
    return b"".join(b"@r%d/1\nACGTACGTAC\n+\nIIIIIIIIII\n" % i for i in range(start, start + n))


def _consume(data: bytes, label: str = "R1") -> tuple[bytes, FastqCount]:
    count = FastqCount(label)
    out = b"".join(counted_fastq(io.BytesIO(data).read, count))
    return out, count


def test_counts_records_and_passes_data_through() -> None:
    plain = _fastq(1234)
    out, count = _consume(gzip.compress(plain))
    assert out == plain and count.records == 1234 and count.complete


def test_multi_member_gzip_like_bgzip() -> None:
    plain = _fastq(10) + _fastq(20, start=10)
    data = gzip.compress(_fastq(10)) + gzip.compress(_fastq(20, start=10))
    out, count = _consume(data)
    assert out == plain and count.records == 30


def test_zero_padding_after_last_member_is_tolerated() -> None:
    _, count = _consume(gzip.compress(_fastq(5)) + b"\x00" * 512)
    assert count.records == 5


def test_truncated_gzip_is_detected() -> None:
    data = gzip.compress(_fastq(5000))
    with pytest.raises(InvalidReads, match="R2: gzip stream is truncated"):
        _consume(data[: len(data) // 2], "R2")


def test_corrupt_gzip_is_detected() -> None:
    data = bytearray(gzip.compress(os.urandom(50_000) + _fastq(100), compresslevel=1))
    data[len(data) // 2 : len(data) // 2 + 64] = b"\xff" * 64
    with pytest.raises(InvalidReads, match="corrupt gzip|truncated"):
        _consume(bytes(data))


def test_not_gzip_and_empty_are_refused() -> None:
    with pytest.raises(InvalidReads, match="not gzip-compressed"):
        _consume(_fastq(3))
    with pytest.raises(InvalidReads, match="empty"):
        _consume(b"")


def test_missing_final_newline_is_supplied() -> None:
    plain = _fastq(3)[:-1]
    out, count = _consume(gzip.compress(plain))
    assert out.endswith(b"\n") and count.records == 3


def test_record_cut_short_is_refused() -> None:
    with pytest.raises(InvalidReads, match="not a multiple of 4"):
        _consume(gzip.compress(_fastq(3) + b"@r9/1\nACGT\n"))


def test_output_chunks_are_bounded_even_for_a_gzip_bomb() -> None:
    bomb = gzip.compress(b"\n" * (64 * 1024 * 1024), compresslevel=9)  # 64 MiB from ~64 KiB
    sizes = [len(c) for c in gunzip_members(io.BytesIO(bomb).read, "R1")]
    assert sum(sizes) == 64 * 1024 * 1024 and max(sizes) <= 1024 * 1024


def test_raw_deflate_member_boundary_inside_read_chunk() -> None:
    # Many tiny members: several end inside one input chunk.
    data = b"".join(gzip.compress(_fastq(1, start=i)) for i in range(3000))
    _, count = _consume(data)
    assert count.records == 3000
