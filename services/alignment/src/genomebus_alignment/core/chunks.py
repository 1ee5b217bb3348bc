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

import bisect
import contextlib
import itertools
import operator
import threading
import zlib
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from queue import Empty, Full, Queue
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


def fastq_lines(blocks: Iterable[bytes]) -> Generator[list[bytes], None, None]:
    """Whole records' lines (a multiple of 4, newlines dropped) from plain FASTQ bytes cut
    anywhere: a list per input block, so the caller works on thousands of records at a time.
    Assumes 4-line records, as the aligners do (ingest checked them)."""
    pending: list[bytes] = []
    tail = b""
    for block in blocks:
        lines = (tail + block).split(b"\n")
        tail = lines.pop()
        if pending:
            lines = pending + lines
        whole = len(lines) - len(lines) % 4
        pending = lines[whole:]
        if whole:
            yield lines[:whole] if pending else lines
    if tail:
        pending.append(tail)
    if pending:
        if len(pending) % 4:
            raise InvalidPairs("a FASTQ file ends inside a record")
        yield pending


def fastq_records(blocks: Iterable[bytes]) -> Iterator[tuple[list[bytes], int]]:
    """(the record's four lines, its sequence length), record by record (for tests and small
    inputs; ``split_pairs`` works on whole blocks)."""
    for lines in fastq_lines(blocks):
        for i in range(0, len(lines), 4):
            yield lines[i : i + 4], len(lines[i + 1])


class ChunkSink(Protocol):
    """Where one chunk's two FASTQ files go (gzip-compressed by ``split_pairs``)."""

    def write(self, mate: int, data: bytes) -> None: ...

    def close(self, pairs: int, bases: int) -> None: ...


def _prefetched(blocks: Iterable[bytes], depth: int = 8) -> Iterator[bytes]:
    """``blocks``, produced in a thread of their own up to ``depth`` ahead: the two mates'
    decompression (zlib releases the GIL) then runs beside each other and beside the cutting.
    An error in the producer is raised here, in order; memory stays ``depth`` blocks."""
    # blocks, then None at the end, or the producer's error
    queue: Queue[bytes | BaseException | None] = Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for block in blocks:
                while not stop.is_set():
                    try:
                        queue.put(block, timeout=0.1)
                        break
                    except Full:
                        continue
                if stop.is_set():
                    return
            queue.put(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            queue.put(exc)

    thread = threading.Thread(target=produce, name="chunk-read", daemon=True)
    thread.start()
    try:
        while (item := queue.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # let a producer blocked on a full queue see the stop
            with contextlib.suppress(Empty):
                queue.get_nowait()
            thread.join(0.05)


class _Mate:
    """One mate's records waiting to be cut, and the compressor of its current chunk."""

    def __init__(self, blocks: Iterable[bytes]) -> None:
        self.source = fastq_lines(_prefetched(blocks))
        self.lines: list[bytes] = []
        self.start = 0  # lines before this were written already
        self.done = False

    def records(self) -> int:
        return (len(self.lines) - self.start) // 4

    def fill(self, wanted: int) -> None:
        """Read blocks until ``wanted`` records wait (or the file ends)."""
        if self.start:
            del self.lines[: self.start]
            self.start = 0
        while not self.done and len(self.lines) // 4 < wanted:
            block = next(self.source, None)
            if block is None:
                self.done = True
            else:
                self.lines.extend(block)

    def take(self, records: int) -> bytes:
        end = self.start + 4 * records
        data = b"\n".join(self.lines[self.start : end]) + b"\n"
        self.start = end
        return data


class _Cutter:
    """``split_pairs``' state: the mates, the open chunk (its sink and two compressors), and
    where the open bwa batch stands."""

    def __init__(
        self,
        r1: Iterable[bytes],
        r2: Iterable[bytes],
        rule: ChunkRule,
        open_chunk: Callable[[int], ChunkSink],
        level: int,
    ) -> None:
        self.mates = (_Mate(r1), _Mate(r2))
        self.rule, self.open_chunk, self.level = rule, open_chunk, level
        self.pairs_per_chunk: list[int] = []
        self.sink: ChunkSink | None = None
        self.compressors: list[zlib._Compress] = []
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="chunk-gzip")
        self.pending: list[Future[bytes]] = []
        self.chunk_pairs = self.chunk_bases = self.batch_bases = self.batches = 0

    def drain(self) -> None:
        assert self.sink is not None
        for mate, future in enumerate(self.pending):
            if data := future.result():
                self.sink.write(mate, data)
        self.pending.clear()

    def emit(self, records: int, *, final: bool) -> None:
        self.drain()
        for mate, compressor in zip(self.mates, self.compressors, strict=True):
            data = mate.take(records) if records else b""

            def work(data: bytes = data, compressor: zlib._Compress = compressor) -> bytes:
                out = compressor.compress(data)
                return out + compressor.flush() if final else out

            self.pending.append(self.pool.submit(work))

    def window(self, size: int) -> int:
        """Read up to ``size`` pairs ahead; how many whole pairs wait (0: both files ended)."""
        for mate in self.mates:
            mate.fill(size)
        r1, r2 = self.mates[0].records(), self.mates[1].records()
        if min(r1, r2) == 0 and (r1 or r2):
            shorter, longer = ("R2", "R1") if r1 else ("R1", "R2")
            raise InvalidPairs(
                f"{shorter} holds fewer records than {longer}: the files are not a pair"
            )
        return min(r1, r2)

    def cumulative_bases(self, n: int) -> list[int]:
        """cumulative[i]: bases of the open batch after i pairs of this window."""
        a, b = self.mates
        sizes = map(
            operator.add,
            map(len, a.lines[a.start + 1 : a.start + 4 * n : 4]),
            map(len, b.lines[b.start + 1 : b.start + 4 * n : 4]),
        )
        return list(itertools.accumulate(sizes, initial=self.batch_bases))

    def start_chunk(self) -> None:
        self.sink = self.open_chunk(len(self.pairs_per_chunk))
        self.compressors = [zlib.compressobj(self.level, wbits=31) for _ in range(2)]
        self.chunk_pairs = self.chunk_bases = 0

    def close_chunk(self) -> None:
        assert self.sink is not None
        self.drain()
        self.sink.close(self.chunk_pairs, self.chunk_bases)
        self.pairs_per_chunk.append(self.chunk_pairs)
        self.sink, self.batches = None, 0

    def cut(self, n: int) -> None:
        """Place the ``n`` waiting pairs in chunks, closing a chunk after its last batch."""
        cumulative = self.cumulative_bases(n)
        started_at = 0  # where in ``cumulative`` terms the open batch began
        done = 0  # pairs of this window placed in a chunk so far
        while done < n:
            if self.sink is None:
                self.start_chunk()
            # bwa closes its batch after the first pair at which the batch reaches K
            close = bisect.bisect_left(cumulative, started_at + self.rule.batch_bases, lo=done + 1)
            end = min(close, n)
            self.chunk_pairs += end - done
            self.chunk_bases += cumulative[end] - cumulative[done]
            if close > n:  # the batch goes on into the next window
                self.emit(end - done, final=False)
                break
            taken, done, started_at = end - done, end, cumulative[end]
            self.batches += 1
            if self.batches == self.rule.batches_per_chunk:
                self.emit(taken, final=True)
                self.close_chunk()
            else:
                self.emit(taken, final=False)
        self.batch_bases = cumulative[n] - started_at

    def finish(self) -> None:
        if self.sink is not None:
            self.emit(0, final=True)
            self.close_chunk()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        for mate in self.mates:  # stops the reader threads too, on an error as well
            mate.source.close()


def split_pairs(
    r1: Iterable[bytes],
    r2: Iterable[bytes],
    rule: ChunkRule,
    open_chunk: Callable[[int], ChunkSink],
    *,
    level: int = 1,
    window: int = 8_192,
) -> list[int]:
    """Cut the pair of plain FASTQ streams into chunks by ``rule``; each chunk's R1 and R2 go,
    gzip-compressed (``level``), to the sink ``open_chunk(index)`` returns. Returns the pairs
    in each chunk. Level 1: the chunks are read once, by the aligner, so speed beats size.

    A whole genome is over a billion records, so nothing here runs per record in Python: each
    ``window`` of pairs is measured with C-level ``map``/``accumulate``, batch ends are found
    by bisection, and the two mates are compressed in two threads (zlib releases the GIL).
    """
    cutter = _Cutter(r1, r2, rule, open_chunk, level)
    try:
        while n := cutter.window(window):
            cutter.cut(n)
        cutter.finish()
    finally:
        cutter.close()
    return cutter.pairs_per_chunk
