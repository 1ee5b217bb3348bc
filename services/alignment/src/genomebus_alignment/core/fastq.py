"""Decompressing gzipped FASTQ on its way to the aligner, counting records as they pass.

Why decompress in Python rather than let bwa read the gzip itself: the records must be counted
(to prove later that every read reached the BAM), and a truncated gzip must be *detected*. bwa
and minimap2 read a truncated gzip up to the break and then carry on as if the file had ended,
so the damage would surface only as a confusing count mismatch, or not at all when a file is
cut on a record boundary. zlib does the work in C and releases the GIL, so this costs one
decompression, which the aligner would otherwise have done itself.

Memory stays bounded: input is read in fixed chunks and each decompression call is capped, so
even a "gzip bomb" never expands more than ``_OUT_CHUNK`` bytes at once.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from genomebus_common.contracts.errors import PermanentError

_IN_CHUNK = 256 * 1024
_OUT_CHUNK = 1024 * 1024
_GZIP_MAGIC = b"\x1f\x8b"


class InvalidReads(PermanentError):
    """The reads file itself is damaged or malformed: retrying cannot help."""

    code = "invalid_reads"


@dataclass
class FastqCount:
    """Filled in while the data stream past; final only once the stream is exhausted."""

    label: str
    lines: int = 0
    bytes_out: int = 0
    complete: bool = False

    @property
    def records(self) -> int:
        return self.lines // 4


def _first_block(read: Callable[[int], bytes], label: str) -> bytes:
    """The stream's first block, refused unless it starts a gzip member."""
    first = read(_IN_CHUNK)
    if not first:
        raise InvalidReads(f"{label}: the reads file is empty (expected gzip-compressed FASTQ)")
    if not first.startswith(_GZIP_MAGIC):
        raise InvalidReads(f"{label}: not gzip-compressed (expected gzip-compressed FASTQ)")
    return first


def gunzip_members(read: Callable[[int], bytes], label: str) -> Iterator[bytes]:
    """Decompressed bytes of a (possibly multi-member, e.g. bgzip) gzip stream.

    Raises ``InvalidReads`` when the stream is not gzip, is corrupt, or ends inside a member.
    """
    pending = _first_block(read, label)
    decomp = zlib.decompressobj(wbits=31)
    member_open = True
    while True:
        try:
            while True:
                if not member_open:
                    if pending.strip(b"\x00") == b"":  # zero padding after the last member
                        break
                    decomp = zlib.decompressobj(wbits=31)
                    member_open = True
                out = decomp.decompress(pending, _OUT_CHUNK)
                if out:
                    yield out
                if decomp.eof:
                    member_open = False
                    pending = decomp.unused_data
                    continue
                pending = decomp.unconsumed_tail
                # A full output buffer may hide more output for input already consumed: drain.
                if not pending and len(out) < _OUT_CHUNK:
                    break
        except zlib.error as exc:
            raise InvalidReads(f"{label}: corrupt gzip data ({exc})") from exc
        more = read(_IN_CHUNK)
        if not more:
            break
        pending = more
    if member_open:
        raise InvalidReads(
            f"{label}: gzip stream is truncated (ended inside a compressed block); "
            "the reads file is incomplete"
        )


def counted_fastq(read: Callable[[int], bytes], count: FastqCount) -> Iterator[bytes]:
    """Plain FASTQ chunks from a gzip stream, counting lines into ``count`` as they pass.

    A FASTQ record is four lines (the aligners reject multi-line sequence FASTQ anyway), so
    a line total that is not a multiple of four means a file cut short or malformed.
    """
    last_byte = b"\n"
    for chunk in gunzip_members(read, count.label):
        count.lines += chunk.count(b"\n")
        count.bytes_out += len(chunk)
        last_byte = chunk[-1:]
        yield chunk
    if last_byte != b"\n":
        count.lines += 1
        yield b"\n"
    if count.lines % 4:
        raise InvalidReads(
            f"{count.label}: FASTQ has {count.lines} lines, not a multiple of 4 "
            "(truncated or not 4-line FASTQ)"
        )
    count.complete = True
