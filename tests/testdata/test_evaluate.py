from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from genomebus_testdata import SimulatedSample, ToolFailed, describe, evaluate


def _split(vcf: Path) -> tuple[list[str], list[list[str]]]:
    with gzip.open(vcf, "rt") as handle:
        lines = handle.read().splitlines()
    header = [line for line in lines if line.startswith("#")]
    return header, [line.split("\t") for line in lines if not line.startswith("#")]


def _write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    header = [h for h in header if not h.startswith("#CHROM")]
    header += ['##FILTER=<ID=LowQual,Description="low quality">']
    header += ["#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tsimulated"]
    rows = sorted(rows, key=lambda r: int(r[1]))
    path.write_text("\n".join(header + ["\t".join(r) for r in rows]) + "\n")
    return path


def _is_snv(row: list[str]) -> bool:
    return len(row[3]) == 1 and len(row[4]) == 1


def test_truth_against_itself_is_perfect(sample: SimulatedSample, reference: Path) -> None:
    acc = evaluate(sample.truth_vcf, sample.truth_vcf, reference)
    for kind in (acc.snv, acc.indel):
        assert (kind.precision, kind.recall, kind.f1, kind.genotype_concordance) == (1, 1, 1, 1)
    assert acc.snv.tp == sample.snv_count and acc.indel.tp == sample.indel_count
    assert "F1 1.0000" in acc.summary()


def test_dropping_a_tenth_gives_recall_0_9(
    sample: SimulatedSample, reference: Path, tmp_path: Path
) -> None:
    header, rows = _split(sample.truth_vcf)
    kept = []
    for kind_rows in ([r for r in rows if _is_snv(r)], [r for r in rows if not _is_snv(r)]):
        kept += [r for i, r in enumerate(kind_rows) if i % 10 != 0]
    acc = evaluate(_write(tmp_path / "calls.vcf", header, kept), sample.truth_vcf, reference)
    assert acc.snv.precision == acc.indel.precision == 1.0
    assert acc.snv.recall == pytest.approx(0.9, abs=0.01)
    assert acc.indel.recall == pytest.approx(0.9, abs=0.015)
    assert acc.snv.f1 == pytest.approx(2 * 0.9 / 1.9, abs=0.01)
    assert len(acc.snv.false_negatives) == acc.snv.fn


def test_false_positives_and_genotypes(
    sample: SimulatedSample, reference: Path, tmp_path: Path
) -> None:
    header, rows = _split(sample.truth_vcf)
    truth_positions = {int(r[1]) for r in rows}
    sequence = "".join(reference.read_text().splitlines()[1:])
    fakes = []
    for pos in range(1_000, 200_000, 10_000):  # 20 SNVs the sample does not have
        if not any(abs(pos - p) < 10 for p in truth_positions):
            base = sequence[pos - 1]
            alt = "A" if base != "A" else "C"
            fakes.append([rows[0][0], str(pos), ".", base, alt, "50", "PASS", ".", "GT", "0/1"])
    # a filtered call does not count as a call
    other_base = "T" if sequence[149_999] != "T" else "G"
    filtered = [rows[0][0], "150000", ".", sequence[149_999], other_base,
                "3", "LowQual", ".", "GT", "0/1"]  # fmt: skip
    # every genotype reported as unphased het: alleles all found, hom genotypes all wrong
    calls = [r[:9] + ["0/1"] for r in rows] + fakes + [filtered]
    acc = evaluate(_write(tmp_path / "calls.vcf", header, calls), sample.truth_vcf, reference)
    assert acc.snv.fp == len(fakes) and acc.indel.fp == 0
    assert acc.snv.recall == acc.indel.recall == 1.0
    assert acc.snv.precision == pytest.approx(acc.snv.tp / (acc.snv.tp + len(fakes)))
    snv_hom = sum(1 for r in rows if _is_snv(r) and r[9] == "1|1")
    assert acc.snv.genotype_matches == acc.snv.tp - snv_hom
    assert acc.indel.genotype_concordance == 1.0  # indels are all het
    assert acc.ignored_calls == 1
    assert evaluate(
        tmp_path / "calls.vcf", sample.truth_vcf, reference, pass_only=False
    ).snv.fp == (len(fakes) + 1)


def test_indel_spelled_differently_still_matches(reference: Path, tmp_path: Path) -> None:
    """A 1-bp deletion in a homopolymer, written left-aligned in the truth and right-shifted in
    the calls, must be one and the same variant after normalisation."""
    sequence = "".join(reference.read_text().splitlines()[1:])
    run_start = next(i for i in range(1, len(sequence) - 6) if sequence[i : i + 5] == "AAAAA"
                     and sequence[i - 1] != "A" and sequence[i + 5] != "A")  # fmt: skip
    contig = describe(reference).contig
    header = [
        "##fileformat=VCFv4.2",
        f"##contig=<ID={contig},length={len(sequence)}>",
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
    ]
    # VCF positions are 1-based; sequence[run_start] is the first A, at position run_start + 1
    left = [contig, str(run_start), ".", sequence[run_start - 1] + "A", sequence[run_start - 1],
            ".", "PASS", ".", "GT", "0|1"]  # fmt: skip
    right = [contig, str(run_start + 4), ".", "AA", "A", ".", "PASS", ".", "GT", "0/1"]
    truth = _write(tmp_path / "truth.vcf", header, [left])
    calls = _write(tmp_path / "calls.vcf", header, [right])
    acc = evaluate(calls, truth, reference)
    assert (acc.indel.tp, acc.indel.fp, acc.indel.fn) == (1, 0, 0)
    assert acc.indel.genotype_concordance == 1.0


def test_calls_on_another_reference_fail_loudly(
    sample: SimulatedSample, reference: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other.fa"
    contig = describe(reference).contig
    other.write_text(
        f">{contig}\n" + "".join(reversed("".join(reference.read_text().splitlines()[1:]))) + "\n"
    )
    with pytest.raises(ToolFailed, match="norm"):
        evaluate(sample.truth_vcf, sample.truth_vcf, other)
