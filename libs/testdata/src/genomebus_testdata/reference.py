"""A slice of the real human chrX (GRCh37) as the reference genome for demos, tests and benchmarks.

Why real sequence rather than a random one: aligners and callers behave differently on real DNA
(repeats, low-complexity stretches, homopolymers where indels are ambiguous). A random genome
would flatter every accuracy figure. The source is Debian's smalt-examples package, so nothing is
downloaded: ``hs37chrXtrunc.fa.gz`` holds GRCh37 chrX 1-70 Mb, 70 bases a line.

N runs in the first 10 Mb of the source (0-based start, 50 kb each unless noted):
0 (60 kb), 94 821, 231 384, 1 047 557, 1 134 113, 1 264 234, 2 068 238, 7 623 882.
The default start, 2.2 Mb, gives up to 5.42 Mb of unbroken sequence (2.2-2.7 Mb is PAR1).
"""

from __future__ import annotations

import gzip
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from . import cache
from .tools import ToolMissing

SOURCE_ENV = "GENOMEBUS_CHRX_FASTA"
SOURCE_NAME = "hs37chrXtrunc.fa.gz"
_SOURCE_CANDIDATES = (
    Path("/usr/share/doc/smalt/test/data") / SOURCE_NAME,
    Path("/usr/share/doc/smalt-examples/test/data") / SOURCE_NAME,
)

DEFAULT_START = 2_200_000
DEFAULT_LENGTH = 5_000_000
LINE_WIDTH = 60


@dataclass(frozen=True)
class ReferenceInfo:
    """What a reference FASTA is: a contig named after its place on GRCh37 chrX."""

    path: Path
    contig: str
    start: int  # 0-based offset on GRCh37 chrX of the contig's first base
    length: int


def find_source() -> Path:
    """Locate the smalt-examples chrX file (``GENOMEBUS_CHRX_FASTA`` overrides the search)."""
    override = os.environ.get(SOURCE_ENV)
    if override:
        if Path(override).is_file():
            return Path(override)
        raise ToolMissing(f"{SOURCE_ENV}={override} does not exist")
    for candidate in _SOURCE_CANDIDATES:
        if candidate.is_file():
            return candidate
    try:
        listed = subprocess.run(
            ["dpkg", "-L", "smalt-examples"], capture_output=True, text=True, check=False
        ).stdout.splitlines()
    except FileNotFoundError:
        listed = []
    for line in listed:
        if line.endswith(SOURCE_NAME) and Path(line).is_file():
            return Path(line)
    raise ToolMissing(
        f"{SOURCE_NAME} not found: install the Debian package 'smalt-examples' (and make sure "
        f"/usr/share/doc is not excluded by dpkg path-exclude, as in slim Docker images) "
        f"or set {SOURCE_ENV}"
    )


def contig_name(start: int, length: int) -> str:
    """``chrX_<start>_<end>``: 0-based half-open GRCh37 coordinates, so position p on the contig
    (1-based, as in VCF) is chrX:start+p on GRCh37."""
    return f"chrX_{start}_{start + length}"


def make_reference(
    out_dir: Path | str,
    *,
    length: int = DEFAULT_LENGTH,
    start: int = DEFAULT_START,
    max_n_fraction: float = 0.001,
) -> Path:
    """Write ``out_dir/chrX_<start>_<end>.fa`` (+ ``.fai``) and return its path.

    Reuses an existing file when its manifest and content hash match. Raises ValueError when the
    slice runs off the source or holds more than ``max_n_fraction`` N bases: an N gap inside the
    reference silently costs reads and variants and would skew every accuracy figure.
    """
    if length <= 0 or start < 0:
        raise ValueError(f"need start >= 0 and length > 0, got start={start} length={length}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = contig_name(start, length)
    fasta = out / f"{name}.fa"
    manifest = out / f"{name}.fa.json"
    source = find_source()
    params = {
        "source": SOURCE_NAME,
        "source_sha256": cache.sha256_file(source),
        "start": start,
        "length": length,
        "line_width": LINE_WIDTH,
    }
    if cache.load_valid(manifest, params) is not None:
        return fasta

    sequence = _read_slice(source, start, length)
    if len(sequence) < length:
        raise ValueError(
            f"the source holds only {start + len(sequence)} bases; cannot slice {start}+{length}"
        )
    n_count = sequence.count("N")
    if n_count > max_n_fraction * length:
        raise ValueError(
            f"{name} is {n_count / length:.1%} N (limit {max_n_fraction:.1%}); choose another "
            f"start (see genomebus_testdata.reference for the N runs of chrX)"
        )

    header = f">{name} GRCh37 chrX:{start + 1}-{start + length} from smalt-examples\n"
    tmp = fasta.with_name(fasta.name + ".tmp")
    with tmp.open("w") as handle:
        handle.write(header)
        for offset in range(0, length, LINE_WIDTH):
            handle.write(sequence[offset : offset + LINE_WIDTH] + "\n")
    os.replace(tmp, fasta)
    fai = fasta.with_name(fasta.name + ".fai")
    # The same index samtools faidx would write; mason writes one too if it is missing.
    fai.write_text(f"{name}\t{length}\t{len(header)}\t{LINE_WIDTH}\t{LINE_WIDTH + 1}\n")
    cache.write(manifest, params, [fasta, fai], contig=name)
    return fasta


def describe(fasta: Path | str) -> ReferenceInfo:
    """Read the contig name back from a FASTA made by `make_reference` (via its .fai)."""
    path = Path(fasta)
    fai = path.with_name(path.name + ".fai")
    first = fai.read_text().splitlines()[0].split("\t")
    contig, length = first[0], int(first[1])
    parts = contig.split("_")
    start = int(parts[1]) if len(parts) == 3 and parts[0] == "chrX" else 0
    return ReferenceInfo(path=path, contig=contig, start=start, length=length)


def _read_slice(source: Path, start: int, length: int) -> str:
    """Bases [start, start+length) of the single-record source, decompressing only what is
    needed."""
    end = start + length
    chunks: list[str] = []
    seen = 0
    with gzip.open(source, "rt", encoding="ascii") as handle:
        handle.readline()  # the FASTA header
        for line in handle:
            bases = line.strip()
            line_end = seen + len(bases)
            if line_end > start:
                chunks.append(bases[max(0, start - seen) : end - seen])
            seen = line_end
            if seen >= end:
                break
    return "".join(chunks).upper()
