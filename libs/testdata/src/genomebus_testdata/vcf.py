"""Just enough VCF for the truth sets and the evaluation (standard library only, no pysam).

Why not pysam/cyvcf2: both are heavy binary wheels, and everything here is one sample on one
contig after ``bcftools norm`` has done the hard part (left-alignment, splitting multi-allelics).
"""

from __future__ import annotations

import gzip
import io
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .tools import ToolFailed, find_tool


@dataclass(frozen=True)
class Record:
    """One biallelic record (after splitting) and the first sample's genotype."""

    chrom: str
    pos: int
    ref: str
    alt: str
    filter: str
    gt: str | None

    @property
    def key(self) -> tuple[str, int, str, str]:
        return (self.chrom, self.pos, self.ref, self.alt)

    @property
    def kind(self) -> str:
        """``snv``, ``indel`` or ``other`` (MNPs and complex alleles left after atomizing)."""
        if len(self.ref) == 1 and len(self.alt) == 1:
            return "snv"
        if len(self.ref) != len(self.alt):
            return "indel"
        return "other"

    @property
    def dosage(self) -> int | None:
        """Copies of the ALT allele; phase and ploidy-specific spelling (``0|1`` vs ``1/0``) are
        ignored because a caller cannot know the simulator's phase."""
        if self.gt is None or "." in self.gt:
            return None
        return sum(1 for allele in self.gt.replace("|", "/").split("/") if allele == "1")


def open_text(path: Path) -> io.TextIOBase:
    """Open a plain or gzip/bgzip VCF for reading text."""
    with path.open("rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt")
    return path.open("r")


def parse(lines: Iterator[str] | io.TextIOBase) -> Iterator[Record]:
    """Records of a VCF whose multi-allelic sites are already split; ALT ``*``/``.``/``<*>``
    and genotype-free sample columns yield nothing comparable and are dropped."""
    for line in lines:
        if line.startswith("#") or not line.strip():
            continue
        fields = line.rstrip("\n").split("\t")
        alt = fields[4]
        if alt in (".", "*", "<*>", "<NON_REF>"):
            continue
        gt: str | None = None
        if len(fields) > 9:
            keys = fields[8].split(":")
            values = fields[9].split(":")
            if "GT" in keys and keys.index("GT") < len(values):
                gt = values[keys.index("GT")]
        yield Record(fields[0], int(fields[1]), fields[3].upper(), alt.upper(), fields[6], gt)


def normalized(vcf: Path, reference: Path) -> list[Record]:
    """Records after left-aligning against ``reference``, splitting multi-allelics and
    atomizing MNPs, so that two spellings of the same variant get the same key.

    ``--check-ref e`` (bcftools' default) makes a call set made on another reference fail loudly
    instead of scoring zero.
    """
    argv = [
        str(find_tool("bcftools")), "norm", "--no-version", "-f", str(reference),
        "-c", "e", "-m", "-any", "-a", "--atom-overlaps", ".", "-Ov", str(vcf),
    ]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ToolFailed(f"{' '.join(argv)} exited with {proc.returncode}:\n{proc.stderr[-2000:]}")
    return list(parse(iter(proc.stdout.splitlines())))
