"""Cutting a sample's read pairs into chunks that align exactly as they would in one piece.

bwa mem reads its input in batches and estimates the insert-size distribution per batch, so
where a batch starts changes alignments. With ``-K`` a batch is fixed: pairs are taken until
the bases of both mates reach ``K`` (bwa's ``bseq_read``: the check follows each whole pair).
A chunk here is a whole number of such batches, cut by the same rule, so a chunk aligned alone
sees exactly the batches, and the insert-size estimates, it would have seen inside the whole
sample. Where chunks start depends only on the reads and the rule, never on how many workers
there are. (minimap2 has no per-batch statistic and aligns each pair the same in any chunk.)

Pure: bytes in, bytes out; the caller decides where chunks go.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

#: bwa mem's -K as genomebus runs it (the CCDG functional-equivalence value).
BWA_BATCH_BASES = 100_000_000

_WRITE_BLOCK = 1 << 20


class InvalidPairs(ValueError):
    """R1 and R2 do not hold the same number of records."""


@dataclass(frozen=True)
class ChunkRule:
    """``batches_per_chunk`` batches of ``batch_bases`` bases (both mates) make a chunk."""

    batch_bases: int = BWA_BATCH_BASES
    batches_per_chunk: int = 5

    def __post_init__(self) -> None:
        if self.batch_bases < 1 or self.batches_per_chunk < 1:
            raise ValueError("batch_bases and batches_per_chunk must be positive")

    @classmethod
    def for_bases(cls, chunk_bases: int, batch_bases: int = BWA_BATCH_BASES) -> ChunkRule:
        """The rule whose chunks hold about ``chunk_bases`` bases: whole batches, at least one."""
        return cls(batch_bases, max(1, round(chunk_bases / batch_bases)))


def fastq_records(blocks: Iterable[bytes]) -> Iterator[tuple[list[bytes], int]]:
    """(the record's four lines without newlines, its sequence length) from plain FASTQ bytes
    cut anywhere. Assumes 4-line records, as the aligners do (ingest checked them)."""
    pending: list[bytes] = []
    tail = b""
    for block in blocks:
        lines = (tail + block).split(b"\n")
        tail = lines.pop()
        if pending:
            lines = pending + lines
        whole = len(lines) - len(lines) % 4
        for i in range(0, whole, 4):
            yield lines[i : i + 4], len(lines[i + 1])
        pending = lines[whole:]
    if tail:
        pending.append(tail)
    if pending:
        if len(pending) % 4:
            raise InvalidPairs("a FASTQ file ends inside a record")
        for i in range(0, len(pending), 4):
            yield pending[i : i + 4], len(pending[i + 1])


class ChunkSink(Protocol):
    """Where one chunk's two FASTQ files go (gzip-compressed by ``split_pairs``)."""

    def write(self, mate: int, data: bytes) -> None: ...

    def close(self, pairs: int, bases: int) -> None: ...


@dataclass
class _GzipBuffer:
    compressor: zlib._Compress
    parts: list[bytes]
    size: int = 0


def split_pairs(
    r1: Iterable[bytes],
    r2: Iterable[bytes],
    rule: ChunkRule,
    open_chunk: Callable[[int], ChunkSink],
    *,
    level: int = 1,
) -> list[int]:
    """Cut the pair of plain FASTQ streams into chunks by ``rule``; each chunk's R1 and R2 go,
    gzip-compressed (``level``), to the sink ``open_chunk(index)`` returns. Returns the pairs
    in each chunk. Level 1: the chunks are read once, by the aligner, so speed beats size."""
    pairs_per_chunk: list[int] = []
    sink: ChunkSink | None = None
    buffers: list[_GzipBuffer] = []
    pairs = batch_bases = chunk_bases = batches = 0

    def flush(final: bool) -> None:
        assert sink is not None
        for mate, buf in enumerate(buffers):
            data = b"\n".join(buf.parts) + b"\n" if buf.parts else b""
            out = buf.compressor.compress(data)
            if final:
                out += buf.compressor.flush()
            if out:
                sink.write(mate, out)
            buf.parts.clear()
            buf.size = 0

    def finish() -> None:
        nonlocal sink
        flush(final=True)
        assert sink is not None
        sink.close(pairs, chunk_bases)
        pairs_per_chunk.append(pairs)
        sink = None

    records2 = fastq_records(r2)
    for rec1, len1 in fastq_records(r1):
        try:
            rec2, len2 = next(records2)
        except StopIteration:
            raise InvalidPairs("R2 holds fewer records than R1: the files are not a pair") from None
        if sink is None:
            sink = open_chunk(len(pairs_per_chunk))
            buffers = [_GzipBuffer(zlib.compressobj(level, wbits=31), []) for _ in range(2)]
            pairs = chunk_bases = batches = 0
        for buf, rec in ((buffers[0], rec1), (buffers[1], rec2)):
            buf.parts.extend(rec)
            buf.size += sum(len(line) for line in rec) + 4
        pairs += 1
        batch_bases += len1 + len2
        chunk_bases += len1 + len2
        if buffers[0].size >= _WRITE_BLOCK:
            flush(final=False)
        if batch_bases >= rule.batch_bases:  # bwa closes its batch after this pair
            batch_bases = 0
            batches += 1
            if batches == rule.batches_per_chunk:
                finish()
    if next(records2, None) is not None:
        raise InvalidPairs("R1 holds fewer records than R2: the files are not a pair")
    if sink is not None:
        finish()
    return pairs_per_chunk
