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
from collections.abc import Mapping, Sequence
from pathlib import Path

from genomebus_common.contracts.errors import PermanentError, ToolFailed
from genomebus_common.contracts.events import ToolProvenance, VariantCounts
from genomebus_common.stagekit.tools import (
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

from ..core.errors import InvalidAlignment, ReferenceMismatch
from ..core.results import CallingResult

VCF_NAME = "variants.vcf.gz"
UNIT_NAME = "unit.bcf"


# --- checks before calling ---------------------------------------------------------------------


def bam_contigs(
    bam: Path | str, env: Mapping[str, str] | None = None
) -> tuple[list[tuple[str, int]], str | None]:
    """The BAM header's (name, length) per @SQ, in order, and its @HD sort order (``bam`` a
    path, or an htslib URL with ``env`` to reach it)."""
    contigs: list[tuple[str, int]] = []
    sort_order = None
    for line in run_tool(["samtools", "view", "-H", str(bam)], env=env).splitlines():
        fields = dict(f.split(":", 1) for f in line.split("\t")[1:] if ":" in f)
        if line.startswith("@SQ"):
            contigs.append((fields["SN"], int(fields["LN"])))
        elif line.startswith("@HD"):
            sort_order = fields.get("SO")
    return contigs, sort_order


def check_bam_matches_reference(
    bam: Path | str, reference_fasta: Path, env: Mapping[str, str] | None = None
) -> None:
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
    contigs, _ = bam_contigs(bam, env)
    name = _shown(bam)
    if not contigs:
        raise ReferenceMismatch(f"{name} has no @SQ lines: it was not aligned to a reference")
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
            f"BAM {name} does not match reference {Path(reference_fasta).name}: "
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


def _shown(bam: Path | str) -> str:
    return bam.name if isinstance(bam, Path) else bam.rsplit("/", 1)[-1]


def check_remote_bam(url: str, reference_fasta: Path, env: Mapping[str, str]) -> None:
    """The checks ``call_variants`` makes on a local BAM, made through htslib's ranged reads:
    complete (header and BGZF EOF, ``samtools quickcheck``), coordinate-sorted, and aligned to
    this reference."""
    try:
        run_tool(["samtools", "quickcheck", "-v", url], env=env)
    except ToolFailed as exc:
        raise InvalidAlignment(f"{_shown(url)} is truncated or not a BAM: {exc.reason}") from exc
    _, sort_order = bam_contigs(url, env)
    if sort_order != "coordinate":
        raise InvalidAlignment(f"{_shown(url)} is not coordinate-sorted (SO:{sort_order})")
    check_bam_matches_reference(url, reference_fasta, env)


def _unit_commands(regions: bool) -> list[Command]:
    """Calls of one unit: per-site, so a region's calls are the whole run's calls in it.
    --no-version: the unit's command line (with its region) does not belong in the sample's
    header."""
    ref, bam, bcf = Data("reference"), Data("bam"), Data("unit.bcf")
    where: list[str | Data] = ["-r", Data("regions")] if regions else []
    return [
        Command.of(
            "bcftools", "mpileup", "--no-version", "-f", ref, "-a", "AD,DP", *where, "-Ou", bam
        ),
        Command.of("bcftools", "call", "--no-version", "-mv", "-Ob", "-o", bcf),
    ]


def _gather_commands(threads: int, units: int) -> list[Command]:
    ref, vcf = Data("reference"), Data("vcf.gz")
    inputs = [Data(f"unit{i}.bcf") for i in range(units)]
    return [
        Command.of("bcftools", "concat", "--no-version", "-Ou", *inputs),
        Command.of(
            "bcftools",
            "norm",
            "-f",
            ref,
            "-m",
            "-any",
            "--check-ref",
            "e",
            "--threads",
            str(max(threads - 1, 0)),
            "-Oz",
            "-o",
            vcf,
        ),
    ]


def _index_command(threads: int) -> Command:
    return Command.of(
        "bcftools", "index", "-t", "-f", "--threads", str(max(threads - 1, 0)), Data("vcf.gz")
    )


def call_unit(
    bam: Path | str,
    reference_fasta: Path,
    workdir: Path,
    *,
    regions: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[Path, ToolProvenance]:
    """Call ``regions`` (all of the BAM when None) of ``bam`` (a path, or an htslib URL whose
    index is given as ``url##idx##path``) into an unnormalised BCF; the gather normalises."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    bcf = workdir / UNIT_NAME
    bcf.unlink(missing_ok=True)
    commands = _unit_commands(regions is not None)
    values = {"reference": str(reference_fasta), "bam": str(bam), "unit.bcf": str(bcf)}
    if regions is not None:
        values["regions"] = ",".join(regions)
    run_pipeline([c.argv(values) for c in commands], env=env)
    require_bgzf_eof(bcf, "the unit's calls")
    return bcf, ToolProvenance(
        name="bcftools", version=tool_version("bcftools"), command=display_pipeline(commands)
    )


def gather_calls(
    unit_bcfs: Sequence[Path], reference_fasta: Path, workdir: Path, *, threads: int = 2
) -> tuple[Path, Path, VariantCounts, list[ToolProvenance]]:
    """Concatenate the units' calls in genome order, normalise, index, and prove the result:
    BGZF EOF, and an index that counts every record. Returns (VCF, index, counts, provenance)."""
    if not unit_bcfs:
        raise ValueError("nothing to gather")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    vcf = workdir / VCF_NAME
    tbi = workdir / (VCF_NAME + ".tbi")
    for stale in (vcf, tbi):
        stale.unlink(missing_ok=True)
    values = {
        "reference": str(reference_fasta),
        "vcf.gz": str(vcf),
        **{f"unit{i}.bcf": str(path) for i, path in enumerate(unit_bcfs)},
    }
    commands = _gather_commands(threads, len(unit_bcfs))
    index = _index_command(threads)
    run_pipeline([c.argv(values) for c in commands])
    require_bgzf_eof(vcf, "the VCF")
    run_pipeline([index.argv(values)])
    require_nonempty(tbi, "the VCF index")
    counts = variant_counts(vcf)
    indexed = int(run_tool(["bcftools", "index", "-n", str(vcf)]).strip() or 0)
    if indexed != counts.records:
        raise ToolFailed(f"the VCF holds {counts.records} records but its index counts {indexed}")
    version = tool_version("bcftools")
    tools = [
        ToolProvenance(name="bcftools", version=version, command=display_pipeline(commands)),
        ToolProvenance(name="bcftools index", version=version, command=index.display()),
    ]
    return vcf, tbi, counts, tools


def call_variants(
    bam: Path, reference_fasta: Path, workdir: Path, *, threads: int = 2
) -> CallingResult:
    """Call, normalise and index a local BAM as one unit; check the VCF is complete and its
    index agrees with it.

    ``threads`` only speeds up compression: mpileup itself is single-threaded in 1.16.
    """
    if threads < 1:
        raise ValueError("threads must be at least 1")
    bam, reference_fasta, workdir = Path(bam), Path(reference_fasta), Path(workdir)
    _check_bam(bam)
    check_bam_matches_reference(bam, reference_fasta)
    bcf, unit_tool = call_unit(bam, reference_fasta, workdir / "unit")
    vcf, tbi, counts, tools = gather_calls([bcf], reference_fasta, workdir, threads=threads)
    bcf.unlink(missing_ok=True)
    merged = ToolProvenance(
        name="bcftools",
        version=tools[0].version,
        command=f"{unit_tool.command} | {tools[0].command}",
    )
    return CallingResult(vcf=vcf, index=tbi, counts=counts, tools=[merged, tools[1]])


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
    "bam_contigs",
    "call_unit",
    "call_variants",
    "check_remote_bam",
    "gather_calls",
    "check_bam_matches_reference",
    "variant_counts",
]
