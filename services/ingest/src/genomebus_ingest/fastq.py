"""FASTQ pair checks, streamed: gzip intact, records well formed, mates paired by name and count.

Everything is read once, in lockstep from both mates, a line at a time: memory stays flat
whatever the sample size. The checks stop at the first problem of each kind and say exactly
where it is (mate, record number), because a LIS operator has to find it in a file of millions
of records. Problems are collected rather than raised one by one so a rejection lists them all.
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO

MAX_PROBLEMS = 10


@dataclass
class FastqReport:
    read_pairs: int = 0
    bases: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _mate_name(header: bytes) -> bytes:
    """The read name without its mate suffix: '@r1/1' and '@r1 1:N:0' both give b'r1'."""
    name = header[1:].split(maxsplit=1)[0] if len(header) > 1 else b""
    if name.endswith((b"/1", b"/2")):
        name = name[:-2]
    return name


class _Records:
    """Iterates 4-line FASTQ records of one gzip stream, recording problems instead of raising."""

    def __init__(self, label: str, stream: BinaryIO, report: FastqReport) -> None:
        self.label = label
        self.lines = gzip.GzipFile(fileobj=stream, mode="rb")
        self.report = report
        self.count = 0
        self.broken = False

    def problem(self, text: str) -> None:
        self.broken = True
        if len(self.report.problems) < MAX_PROBLEMS:
            self.report.problems.append(f"{self.label}: {text}")

    def next(self) -> tuple[bytes, bytes] | None:
        """(name, sequence) of the next record, or None at the end or after a fatal problem."""
        if self.broken:
            return None
        try:
            header = self.lines.readline()
            if not header:
                return None
            seq, plus, qual = self.lines.readline(), self.lines.readline(), self.lines.readline()
        except (EOFError, zlib.error, gzip.BadGzipFile, OSError) as exc:
            self.problem(f"gzip stream is damaged or truncated after record {self.count} ({exc})")
            return None
        self.count += 1
        where = f"record {self.count}"
        if not qual:
            self.problem(f"{where}: incomplete record at end of file (a FASTQ record has 4 lines)")
            return None
        if not header.startswith(b"@"):
            self.problem(f"{where}: header line must start with '@'")
            return None
        if not plus.startswith(b"+"):
            self.problem(f"{where}: third line must start with '+'")
            return None
        seq, qual = seq.rstrip(b"\r\n"), qual.rstrip(b"\r\n")
        if len(seq) != len(qual):
            self.problem(
                f"{where}: sequence has {len(seq)} bases but quality has {len(qual)} values"
            )
            return None
        if not seq:
            self.problem(f"{where}: empty sequence")
            return None
        return _mate_name(header.rstrip(b"\r\n")), seq


def check_pair(r1: BinaryIO, r2: BinaryIO) -> FastqReport:
    """Check both mates in lockstep; returns the pair count and every problem found."""
    report = FastqReport()
    one, two = _Records("R1", r1, report), _Records("R2", r2, report)
    while True:
        a, b = one.next(), two.next()
        if a is None or b is None:
            break
        if a[0] != b[0]:
            report.problems.append(
                f"mates differ at record {one.count}: R1 is {a[0].decode(errors='replace')!r}, "
                f"R2 is {b[0].decode(errors='replace')!r}"
            )
            break
        report.read_pairs += 1
        report.bases += len(a[1]) + len(b[1])
    if not report.problems and (a is None) != (b is None):
        longer, shorter = (one, two) if b is None else (two, one)
        # drain the longer one to report both counts
        while longer.next() is not None:
            pass
        report.problems.append(
            f"mates have different record counts: {longer.label} has {longer.count}, "
            f"{shorter.label} has {shorter.count}"
        )
    if not report.problems and report.read_pairs == 0:
        report.problems.append("no reads")
    return report
