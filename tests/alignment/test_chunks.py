"""Cutting reads into chunks: bwa's batch rule, every pair once, in order, mates together."""

from __future__ import annotations

import gzip
import zlib

import pytest

from genomebus_alignment.core.chunks import ChunkRule, InvalidPairs, fastq_records, split_pairs


def fastq(n: int, lengths: list[int] | None = None, mate: int = 1) -> bytes:
    out = []
    for i in range(n):
        length = lengths[i % len(lengths)] if lengths else 100
        out.append(f"@r{i}/{mate}\n{'A' * length}\n+\n{'I' * length}\n")
    return "".join(out).encode()


class Sink:
    def __init__(self) -> None:
        self.data = [b"", b""]
        self.closed: tuple[int, int] | None = None

    def write(self, mate: int, data: bytes) -> None:
        self.data[mate] += data

    def close(self, pairs: int, bases: int) -> None:
        self.closed = (pairs, bases)


def cut(r1: bytes, r2: bytes, rule: ChunkRule, block: int = 7) -> list[Sink]:
    sinks: list[Sink] = []

    def blocks(data: bytes) -> list[bytes]:  # cut anywhere, mid-line included
        return [data[i : i + block] for i in range(0, len(data), block)]

    def open_chunk(index: int) -> Sink:
        assert index == len(sinks)
        sinks.append(Sink())
        return sinks[-1]

    pairs = split_pairs(blocks(r1), blocks(r2), rule, open_chunk)
    assert pairs == [s.closed[0] for s in sinks if s.closed]
    return sinks


def test_chunks_close_where_bwa_closes_its_batches() -> None:
    # 2 x 100 bases a pair; a batch of 450 bases closes after the 3rd pair (600 >= 450), as
    # bwa's bseq_read does (the check follows each whole pair).
    sinks = cut(
        fastq(10, mate=1), fastq(10, mate=2), ChunkRule(batch_bases=450, batches_per_chunk=2)
    )
    assert [s.closed for s in sinks] == [(6, 1200), (4, 800)]


def test_variable_read_lengths_count_as_bwa_counts_them() -> None:
    lengths = [150, 30, 75]
    sinks = cut(
        fastq(9, lengths), fastq(9, lengths), ChunkRule(batch_bases=500, batches_per_chunk=1)
    )
    # pair bases 300, 60, 150 (sum 510 >= 500: close), then again
    assert [s.closed[0] for s in sinks] == [3, 3, 3]


def test_every_record_arrives_once_in_order_with_its_mate() -> None:
    r1, r2 = fastq(1000, [101, 99, 150], 1), fastq(1000, [101, 99, 150], 2)
    sinks = cut(r1, r2, ChunkRule(batch_bases=10_000, batches_per_chunk=3), block=1013)
    assert len(sinks) > 3
    assert b"".join(gzip.decompress(s.data[0]) for s in sinks) == r1
    assert b"".join(gzip.decompress(s.data[1]) for s in sinks) == r2
    for sink in sinks:  # each chunk a complete gzip member of whole records
        assert gzip.decompress(sink.data[0]).count(b"\n") == 4 * sink.closed[0]


def test_a_sample_smaller_than_a_chunk_is_one_chunk() -> None:
    sinks = cut(fastq(5), fastq(5), ChunkRule())
    assert len(sinks) == 1 and sinks[0].closed == (5, 1000)


@pytest.mark.parametrize(("n1", "n2"), [(5, 4), (4, 5)])
def test_files_that_are_not_a_pair_are_refused(n1: int, n2: int) -> None:
    with pytest.raises(InvalidPairs, match="not a pair"):
        cut(fastq(n1), fastq(n2), ChunkRule(batch_bases=10**9))


def test_a_record_cut_short_is_refused() -> None:
    with pytest.raises(InvalidPairs, match="inside a record"):
        list(fastq_records([b"@r\nACGT\n+\n"]))


def test_chunk_size_is_whole_batches_at_least_one() -> None:
    assert ChunkRule.for_bases(500_000_000).batches_per_chunk == 5
    assert ChunkRule.for_bases(10, batch_bases=100).batches_per_chunk == 1
    with pytest.raises(ValueError):
        ChunkRule(batch_bases=0)


def test_chunks_are_gzip_members_a_plain_reader_opens() -> None:
    sinks = cut(fastq(3), fastq(3), ChunkRule())
    assert zlib.decompress(sinks[0].data[0], wbits=31).startswith(b"@r0/1\n")


def test_a_damaged_input_stops_the_cut_and_its_reader_threads() -> None:
    import threading

    def broken() -> object:
        yield fastq(100)
        raise OSError("connection reset mid-object")

    before = threading.active_count()
    with pytest.raises(OSError, match="connection reset"):
        split_pairs(broken(), [fastq(200, mate=2)], ChunkRule(batch_bases=10**9), lambda i: Sink())
    assert threading.active_count() == before
