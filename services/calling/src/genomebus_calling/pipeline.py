"""Checked BAM -> normalised, bgzipped, indexed, checked VCF, with variant counts.

::

    bcftools mpileup -a AD,DP | bcftools call -mv | bcftools norm -f ref -m -any  -> .vcf.gz
    bcftools index -t

Normalisation choices, made for the registry downstream: indels are left-aligned against the
reference and multiallelic sites are split into one record per ALT (``-m -any``), so the same
variant from two samples is always the same (CHROM, POS, REF, ALT) key. ``--check-ref e``
makes a REF that disagrees with the reference a hard error rather than a silent record.

Before any calling, the BAM's @SQ lines must name the same contigs with the same lengths as
the reference's .fai: a BAM aligned to another reference would otherwise be "called" into
plausible-looking but wrong variants. bcftools 1.16 has no ``--write-index`` (it arrived in
1.17), hence the separate index step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from genomebus_common.errors import PermanentError, ToolFailed
from genomebus_common.events import ToolProvenance, VariantCounts
from genomebus_common.tools import (
    Command,
    Data,
    display_pipeline,
    read_fai,
    require_bgzf_eof,
    require_nonempty,
    run_pipeline,
    run_tool,
    tool_version,
)

VCF_NAME = "variants.vcf.gz"


class ReferenceMismatch(PermanentError):
    """The BAM was aligned to another reference than the one it is to be called against."""

    code = "reference_mismatch"


class InvalidAlignment(PermanentError):
    """The BAM is unusable for calling (truncated, unsorted, missing)."""

    code = "invalid_alignment"


@dataclass(frozen=True)
class CallingResult:
    vcf: Path
    index: Path
    counts: VariantCounts
    tools: list[ToolProvenance]


# --- checks before calling ---------------------------------------------------------------------


def bam_contigs(bam: Path) -> tuple[list[tuple[str, int]], str | None]:
    """The BAM header's (name, length) per @SQ, in order, and its @HD sort order."""
    contigs: list[tuple[str, int]] = []
    sort_order = None
    for line in run_tool(["samtools", "view", "-H", str(bam)]).splitlines():
        fields = dict(f.split(":", 1) for f in line.split("\t")[1:] if ":" in f)
        if line.startswith("@SQ"):
            contigs.append((fields["SN"], int(fields["LN"])))
        elif line.startswith("@HD"):
            sort_order = fields.get("SO")
    return contigs, sort_order


def check_bam_matches_reference(bam: Path, reference_fasta: Path) -> None:
    """Raise ``ReferenceMismatch`` unless the BAM's contigs are the reference's, name and length.

    Order is not compared (a re-ordered dictionary is the same reference), names and lengths
    are. Same names and lengths with different bases cannot be seen here; that is what the
    reference digest carried by the events is for.
    """
    fai = Path(str(reference_fasta) + ".fai")
    if not Path(reference_fasta).is_file() or not fai.is_file():
        raise PermanentError(
            f"reference {Path(reference_fasta).name} or its .fai index is missing",
            code="reference_not_indexed",
        )
    ref = dict(read_fai(fai))
    contigs, _ = bam_contigs(bam)
    if not contigs:
        raise ReferenceMismatch(f"{bam.name} has no @SQ lines: it was not aligned to a reference")
    in_bam = dict(contigs)
    problems = []
    only_bam = [n for n in in_bam if n not in ref]
    only_ref = [n for n in ref if n not in in_bam]
    wrong_length = [
        f"{n} (BAM {in_bam[n]}, reference {ref[n]})"
        for n in in_bam
        if n in ref and in_bam[n] != ref[n]
    ]
    if only_bam:
        problems.append("contigs not in the reference: " + _few(only_bam))
    if only_ref:
        problems.append("reference contigs absent from the BAM: " + _few(only_ref))
    if wrong_length:
        problems.append("lengths differ: " + _few(wrong_length))
    if problems:
        raise ReferenceMismatch(
            f"BAM {bam.name} does not match reference {Path(reference_fasta).name}: "
            + "; ".join(problems)
        )


def _few(items: list[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _check_bam(bam: Path) -> None:
    if not bam.is_file():
        raise InvalidAlignment(f"BAM not found: {bam.name}")
    try:
        require_bgzf_eof(bam, "the input BAM")
    except ToolFailed as exc:
        raise InvalidAlignment(str(exc)) from exc
    _, sort_order = bam_contigs(bam)
    if sort_order != "coordinate":
        raise InvalidAlignment(f"{bam.name} is not coordinate-sorted (SO:{sort_order})")


# --- calling -----------------------------------------------------------------------------------


def _commands(threads: int) -> list[Command]:
    ref, bam, vcf = Data("reference"), Data("bam"), Data("vcf.gz")
    return [
        Command.of("bcftools", "mpileup", "-f", ref, "-a", "AD,DP", "-Ou", bam),
        Command.of("bcftools", "call", "-mv", "-Ou"),
        Command.of(
            "bcftools", "norm", "-f", ref, "-m", "-any", "--check-ref", "e",
            "--threads", str(max(threads - 1, 0)), "-Oz", "-o", vcf,
        ),
    ]


def _index_command(threads: int) -> Command:
    return Command.of("bcftools", "index", "-t", "-f", "--threads", str(max(threads - 1, 0)),
                      Data("vcf.gz"))


def call_variants(
    bam: Path, reference_fasta: Path, workdir: Path, *, threads: int = 2
) -> CallingResult:
    """Call, normalise and index; check the VCF is complete and its index agrees with it.

    ``threads`` only speeds up compression: mpileup itself is single-threaded in 1.16.
    """
    if threads < 1:
        raise ValueError("threads must be at least 1")
    bam, reference_fasta, workdir = Path(bam), Path(reference_fasta), Path(workdir)
    _check_bam(bam)
    check_bam_matches_reference(bam, reference_fasta)

    workdir.mkdir(parents=True, exist_ok=True)
    vcf = workdir / VCF_NAME
    tbi = workdir / (VCF_NAME + ".tbi")
    for stale in (vcf, tbi):
        stale.unlink(missing_ok=True)
    values = {"reference": str(reference_fasta), "bam": str(bam), "vcf.gz": str(vcf)}
    commands = _commands(threads)
    index = _index_command(threads)
    run_pipeline([c.argv(values) for c in commands])
    require_bgzf_eof(vcf, "the VCF")
    run_pipeline([index.argv(values)])
    require_nonempty(tbi, "the VCF index")

    counts = variant_counts(vcf)
    indexed = int(run_tool(["bcftools", "index", "-n", str(vcf)]).strip() or 0)
    if indexed != counts.records:
        raise ToolFailed(
            f"the VCF holds {counts.records} records but its index counts {indexed}"
        )
    version = tool_version("bcftools")
    tools = [
        ToolProvenance(name="bcftools", version=version, command=display_pipeline(commands)),
        ToolProvenance(name="bcftools index", version=version, command=index.display()),
    ]
    return CallingResult(vcf=vcf, index=tbi, counts=counts, tools=tools)


# --- counts ------------------------------------------------------------------------------------


_SN = re.compile(r"^SN\t\d+\tnumber of ([^:]+):\t(\d+)$")


def variant_counts(vcf: Path) -> VariantCounts:
    """Counts from ``bcftools stats``, which reads every record of the file (not the index).

    ti/tv is over SNVs (None without transversions); het/hom is heterozygous over homozygous
    ALT genotypes, SNVs and indels together (None without hom-alt genotypes).
    """
    report = run_tool(["bcftools", "stats", "-s", "-", str(vcf)])
    sn: dict[str, int] = {}
    ts = tv = 0
    hets = homs = 0
    for line in report.splitlines():
        if m := _SN.match(line):
            sn[m.group(1)] = int(m.group(2))
            continue
        cols = line.split("\t")
        if cols[0] == "TSTV":
            ts, tv = int(cols[2]), int(cols[3])
        elif cols[0] == "PSC":
            # [4]nRefHom [5]nNonRefHom [6]nHets: SNVs only (indels are in PSI).
            homs += int(cols[4])
            hets += int(cols[5])
        elif cols[0] == "PSI":
            # [8]nInsHets [9]nDelHets [10]nInsAltHoms [11]nDelAltHoms
            hets += int(cols[7]) + int(cols[8])
            homs += int(cols[9]) + int(cols[10])
    if "records" not in sn:
        raise ToolFailed("bcftools stats reported no record count")
    return VariantCounts(
        records=sn["records"],
        snv=sn.get("SNPs", 0),
        indel=sn.get("indels", 0),
        ti_tv=ts / tv if tv else None,
        het_hom_ratio=hets / homs if homs else None,
    )


__all__ = [
    "CallingResult",
    "InvalidAlignment",
    "ReferenceMismatch",
    "call_variants",
    "check_bam_matches_reference",
    "variant_counts",
]
