"""FASTQ pair checks, streamed: gzip intact, records well formed, mates paired by name and count.

Both mates are read once, in step, a few MiB at a time: memory stays flat whatever the sample
size. Records are checked a batch at a time with list operations rather than line by line, so
checking costs about as much as decompressing; only when a batch is bad do we walk it to say
exactly where (mate, record number), because a LIS operator has to find that record among
millions. Problems are collected, not raised, so a rejection lists them all.
"""

from __future__ import annotations

import gzip
import zlib
from collections import deque
from dataclasses import dataclass, field
from typing import BinaryIO

from genomebus_common.contracts.identifiers import redact_national_ids

MAX_PROBLEMS = 10
_CHUNK = 4 * 1024 * 1024
# No sequencer writes a FASTQ line near this long (long-read records are ~100 kb); a longer one
# is refused as soon as it is seen, so a small gzip bomb of one endless line cannot grow the
# check's memory past a few chunks.
MAX_LINE = 1024 * 1024
_SHOWN_NAME = 120  # characters of a read name a reason may quote


@dataclass
class FastqReport:
    read_pairs: int = 0
    bases: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _shown(name: bytes) -> str:
    """A read name as a reason may quote it: short, and with anything shaped like a national id
    redacted (a LIS may have put one in the read names)."""
    text = name[:_SHOWN_NAME].decode("ascii", errors="replace")
    return redact_national_ids(text) + ("..." if len(name) > _SHOWN_NAME else "")


def _mate_name(header: bytes) -> bytes:
    """The read name without its mate suffix: '@r1/1' and '@r1 1:N:0' both give b'r1'."""
    name = header[1:].split(maxsplit=1)[0] if len(header) > 1 else b""
    if name.endswith((b"/1", b"/2")):
        name = name[:-2]
    return name


class _Mate:
    """One mate's records, a batch at a time, with its problems recorded in the report."""

    def __init__(self, label: str, stream: BinaryIO, report: FastqReport) -> None:
        self.label = label
        self.gzip = gzip.GzipFile(fileobj=stream, mode="rb")
        self.report = report
        self.count = 0  # records read so far
        self.tail = b""
        self.broken = False
        self.names: deque[bytes] = deque()  # checked names not yet paired with the other mate
        self.keep_names = True  # False once the other mate has ended: only counting goes on
        self.bases = 0

    def problem(self, text: str) -> None:
        self.broken = True
        if len(self.report.problems) < MAX_PROBLEMS:
            self.report.problems.append(f"{self.label}: {text}")

    def fill(self) -> bool:
        """Read and check the next batch into ``names``; False at the end or when broken."""
        if self.broken:
            return False
        try:
            data = self.gzip.read(_CHUNK)
        except (EOFError, zlib.error, gzip.BadGzipFile, OSError) as exc:
            self.problem(f"gzip stream is damaged or truncated after record {self.count} ({exc})")
            return False
        if not data:
            if self.tail.strip():
                self.problem(
                    f"record {self.count + 1}: incomplete record at end of file "
                    "(a FASTQ record has 4 lines)"
                )
            return False
        lines = (self.tail + data).split(b"\n")
        self.tail = lines.pop()
        if len(self.tail) > MAX_LINE or (lines and max(map(len, lines)) > MAX_LINE):
            self.problem(
                f"after record {self.count}: a line is longer than {MAX_LINE // 1024} KiB "
                "(not FASTQ, or a damaged file)"
            )
            self.tail = b""
            return False
        extra = len(lines) % 4
        if extra:
            self.tail = b"\n".join(lines[-extra:]) + b"\n" + self.tail
            del lines[-extra:]
        if not lines:
            return True
        if b"\r" in data:
            lines = [line.rstrip(b"\r") for line in lines]
        headers, seqs, pluses, quals = lines[0::4], lines[1::4], lines[2::4], lines[3::4]
        seq_lengths = list(map(len, seqs))
        if (
            all(h[:1] == b"@" for h in headers)
            and all(p[:1] == b"+" for p in pluses)
            and seq_lengths == list(map(len, quals))
            and min(seq_lengths) > 0
        ):
            if self.keep_names:
                self.names.extend(map(_mate_name, headers))
            self.bases += sum(seq_lengths)
            self.count += len(headers)
            return True
        self._explain(headers, seqs, pluses, quals)
        return False

    def _explain(
        self, headers: list[bytes], seqs: list[bytes], pluses: list[bytes], quals: list[bytes]
    ) -> None:
        """The slow path: find the first bad record of a batch and say what is wrong with it."""
        for i, (header, seq, plus, qual) in enumerate(
            zip(headers, seqs, pluses, quals, strict=True)
        ):
            where = f"record {self.count + i + 1}"
            if header[:1] != b"@":
                return self.problem(f"{where}: header line must start with '@'")
            if plus[:1] != b"+":
                return self.problem(f"{where}: third line must start with '+'")
            if len(seq) != len(qual):
                return self.problem(
                    f"{where}: sequence has {len(seq)} bases but quality has {len(qual)} values"
                )
            if not seq:
                return self.problem(f"{where}: empty sequence")
        return None


def check_pair(r1: BinaryIO, r2: BinaryIO) -> FastqReport:
    """Check both mates in step; returns the pair count and every problem found."""
    report = FastqReport()
    one, two = _Mate("R1", r1, report), _Mate("R2", r2, report)
    open_ = {one: True, two: True}
    while True:
        # Read on the side that is behind; when it has ended, drain the other to count it.
        behind, ahead = (one, two) if len(one.names) <= len(two.names) else (two, one)
        side = behind if open_[behind] else ahead if open_[ahead] else None
        if side is None:
            break
        open_[side] = side.fill()
        for _ in range(min(len(one.names), len(two.names))):
            a, b = one.names.popleft(), two.names.popleft()
            if a != b:
                report.problems.append(
                    f"mates differ at record {report.read_pairs + 1}: R1 is "
                    f"{_shown(a)!r}, R2 is {_shown(b)!r}"
                )
                return report
            report.read_pairs += 1
        if one.broken or two.broken:
            return report
        for ended, other in ((one, two), (two, one)):
            if not open_[ended] and not ended.names and other.keep_names:
                # Nothing left to pair with: the rest of the other mate is only counted, never
                # held (a 1-record R1 beside millions of R2 names would fill memory).
                other.keep_names = False
                other.names.clear()
    report.bases = one.bases + two.bases
    if one.count != two.count:
        report.problems.append(
            f"mates have different record counts: R1 has {one.count}, R2 has {two.count}"
        )
    elif report.read_pairs == 0:
        report.problems.append("no reads")
    return report
