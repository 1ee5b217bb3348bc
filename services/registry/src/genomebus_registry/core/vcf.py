"""Reading a called VCF: the rows a load stages, and the contract a producer must keep.

The parser streams (a whole genome never sits in memory) and refuses, rather than guesses about,
a VCF that breaks the contract: multi-allelic records, more than two ALT copies, unsorted rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from genomebus_common.contracts.errors import PermanentError

if TYPE_CHECKING:
    import pysam


class InvalidVcf(PermanentError):
    """The VCF cannot be read or is not what the contract promises (normalised, split)."""

    code = "invalid_vcf"


class GenotypeRow(NamedTuple):
    """One staged row: exactly the column order of the loader's staging table. (The public
    variant id is not staged: it is computed from the allele when an answer names it.)"""

    chrom: str
    pos: int
    ref: str
    alt: str
    alt_count: int
    dp: int | None
    gq: int | None


@dataclass
class ParseStats:
    records: int = 0
    genotypes: int = 0
    skipped_no_alt_call: int = 0
    skipped_symbolic: int = 0


def _int_or_none(value: object) -> int | None:
    if isinstance(value, tuple):  # Number=. fields come back as tuples
        value = value[0] if value else None
    return int(value) if isinstance(value, (int, float)) else None


def read_genotypes(
    path: Path, reference_digest: str, sample_id: str, stats: ParseStats | None = None
) -> Iterator[GenotypeRow]:
    """Stream a single-sample, normalised, split VCF as genotype rows (non-reference calls only).

    Records are expected one ALT each (``bcftools norm -m -any``); a multi-allelic record means
    the producer broke the contract, which is a permanent error rather than something to guess
    about. Symbolic and spanning-deletion alleles carry no sequence to identify and are skipped.
    """
    import pysam  # imported here: the parser is the only user and pysam is slow to import

    stats = stats if stats is not None else ParseStats()
    try:
        vcf = pysam.VariantFile(str(path))
    except (OSError, ValueError) as exc:
        raise InvalidVcf(f"cannot open the VCF: {exc}") from exc
    with vcf:
        names = list(vcf.header.samples)
        if not names:
            raise InvalidVcf("the VCF has no sample column")
        if len(names) == 1:
            column = 0
        elif sample_id in names:
            column = names.index(sample_id)
        else:
            raise InvalidVcf(f"the VCF has {len(names)} samples and none is {sample_id!r}")
        has_format_dp = "DP" in vcf.header.formats
        has_info_dp = "DP" in vcf.header.info
        has_gq = "GQ" in vcf.header.formats
        try:
            for record in vcf:
                stats.records += 1
                row = _row(record, column, has_format_dp, has_info_dp, has_gq, stats)
                if row is not None:
                    stats.genotypes += 1
                    yield row
        except (OSError, ValueError) as exc:
            raise InvalidVcf(f"the VCF is malformed after {stats.records} records: {exc}") from exc


def _row(
    record: pysam.VariantRecord,
    column: int,
    has_format_dp: bool,
    has_info_dp: bool,
    has_gq: bool,
    stats: ParseStats,
) -> GenotypeRow | None:
    """One record's genotype row, or None for a record the registry does not keep (no ALT, a
    symbolic allele, no ALT copy called): ``stats`` counts what was skipped."""
    alts = record.alts
    if not alts:
        return None
    if len(alts) != 1:
        raise InvalidVcf(
            f"{record.chrom}:{record.pos} has {len(alts)} ALT alleles; the registry "
            "takes normalised VCFs split to one ALT per record"
        )
    alt = alts[0].upper()
    if alt.startswith("<") or alt == "*" or "[" in alt or "]" in alt:
        stats.skipped_symbolic += 1
        return None
    call = record.samples[column]
    gt = call.get("GT") or ()
    alt_count = sum(1 for allele in gt if allele == 1)
    if alt_count == 0:
        stats.skipped_no_alt_call += 1
        return None
    if alt_count > 2:
        raise InvalidVcf(f"{record.chrom}:{record.pos}: more than two ALT copies")
    dp = _int_or_none(call.get("DP")) if has_format_dp else None
    if dp is None and has_info_dp:
        dp = _int_or_none(record.info.get("DP"))
    gq = _int_or_none(call.get("GQ")) if has_gq else None
    if record.ref is None:
        raise InvalidVcf(f"{record.chrom}:{record.pos} has no REF allele")
    return GenotypeRow(record.chrom, record.pos, record.ref.upper(), alt, alt_count, dp, gq)


def unique_calls(rows: Iterator[GenotypeRow]) -> Iterator[GenotypeRow]:
    """The rows with each allele once (the largest allele count kept): a block must hold a
    variant once. Rows must come position-sorted (a tabix-indexed VCF is), so only the rows of
    the current position are held; a position with one row (nearly all) passes straight
    through. Unsorted rows are refused (a duplicate could hide anywhere in them)."""
    group: list[GenotypeRow] = []
    done: set[str] = set()
    for row in rows:
        if group and (row[1] != group[0][1] or row[0] != group[0][0]):
            chrom, pos = group[0][0], group[0][1]
            if row[0] == chrom:
                backwards = row[1] < pos
            else:
                done.add(chrom)
                backwards = row[0] in done
            if backwards:
                raise InvalidVcf(
                    f"the VCF is not sorted by position: {row[0]}:{row[1]} after {chrom}:{pos}"
                )
            yield from (group if len(group) == 1 else _largest_per_allele(group))
            group = []
        group.append(row)
    yield from (group if len(group) <= 1 else _largest_per_allele(group))


def _largest_per_allele(group: list[GenotypeRow]) -> list[GenotypeRow]:
    held: dict[tuple[str, str], GenotypeRow] = {}
    for row in group:
        seen = held.get((row[2], row[3]))
        if seen is None or row[4] > seen[4]:
            held[(row[2], row[3])] = row
    return list(held.values())
