from __future__ import annotations

import gzip
import subprocess
from pathlib import Path

from genomebus_testdata import SimulatedSample, describe, read_pairs_for, simulate_sample
from genomebus_testdata.simulate import fix_mason_vcf


def _records(vcf: Path) -> list[list[str]]:
    with gzip.open(vcf, "rt") as handle:
        return [line.rstrip("\n").split("\t") for line in handle if not line.startswith("#")]


def test_read_pairs_for_coverage() -> None:
    assert read_pairs_for(30, 1_000_000) == 100_000
    assert read_pairs_for(30, 200_000, read_length=100) == 30_000


def test_same_seed_same_bytes_other_seed_other_sample(reference: Path, tmp_path: Path) -> None:
    kwargs = {"read_pairs": 2_000, "snv_rate": 0.001, "indel_rate": 0.0002}
    a = simulate_sample(reference, tmp_path / "a", seed=5, **kwargs)  # type: ignore[arg-type]
    b = simulate_sample(reference, tmp_path / "b", seed=5, **kwargs)
    c = simulate_sample(reference, tmp_path / "c", seed=6, **kwargs)
    for name in ("truth_vcf", "reads_1", "reads_2"):
        assert getattr(a, name).read_bytes() == getattr(b, name).read_bytes(), name
    assert a.truth_vcf.read_bytes() != c.truth_vcf.read_bytes()
    assert a.reads_1.read_bytes() != c.reads_1.read_bytes()


def test_reuse_when_unchanged(reference: Path, tmp_path: Path) -> None:
    first = simulate_sample(reference, tmp_path, read_pairs=500, seed=3)
    stamp = first.reads_1.stat().st_mtime_ns
    again = simulate_sample(reference, tmp_path, read_pairs=500, seed=3)
    assert again == first
    assert again.reads_1.stat().st_mtime_ns == stamp
    other = simulate_sample(reference, tmp_path, read_pairs=600, seed=3)
    assert other.read_pairs == 600
    assert other.reads_1.stat().st_mtime_ns != stamp


def test_truth_vcf_is_valid_and_human_like(sample: SimulatedSample, reference: Path) -> None:
    contig = describe(reference).contig
    header = subprocess.run(
        ["bcftools", "view", "-h", str(sample.truth_vcf)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "##FORMAT=<ID=GT," in header
    assert f"##contig=<ID={contig},length=200000>" in header
    assert Path(f"{sample.truth_vcf}.tbi").is_file()

    records = _records(sample.truth_vcf)
    assert len(records) == sample.snv_count + sample.indel_count
    assert sample.snv_count > 150 and sample.indel_count > 60
    seen_snv_positions: set[int] = set()
    for fields in records:
        assert fields[0] == contig
        assert fields[8] == "GT" and fields[9] in {"0|1", "1|0", "1|1"}, fields
        assert "," not in fields[4]  # no tri-allelic sites left
        if len(fields[3]) == 1 and len(fields[4]) == 1:
            assert int(fields[1]) not in seen_snv_positions  # no split sites left
            seen_snv_positions.add(int(fields[1]))
    # about 2 het : 1 hom for SNVs (indels are all het)
    assert 1.3 < (sample.het_count - sample.indel_count) / sample.hom_count < 3.0


def test_reads_are_paired_and_as_many_as_asked(sample: SimulatedSample) -> None:
    for path in (sample.reads_1, sample.reads_2):
        with gzip.open(path, "rt") as handle:
            lines = handle.read().splitlines()
        assert len(lines) == 4 * sample.read_pairs
        assert {len(s) for s in lines[1::4]} == {150}
    assert abs(sample.coverage - 30) < 0.1


def test_fix_mason_vcf_quirks(tmp_path: Path) -> None:
    raw = tmp_path / "mason.vcf"
    raw.write_text(
        "##fileformat=VCFv4.1\n##reference=/some/where/ref.fa\n##contig=<ID=c,length=100>\n"
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tsimulated\n"
        "c\t5\tsim_snp_0\tC\tA,T\t.\tPASS\t.\t.\t2|1\n"  # tri-allelic -> het
        "c\t9\tsim_snp_1\tG\tT\t.\tPASS\t.\t.\t1|1\n"  # hom stays
        "c\t20\tsim_snp_2\tG\tA\t.\tPASS\t.\t.\t1|0\n"  # one site split over two records
        "c\t20\tsim_snp_2\tG\tA\t.\tPASS\t.\t.\t0|1\n"
        "c\t30\tsim_small_indel_0\tAAA\tA\t.\tPASS\t.\t.\t0|1\n"
    )
    out = tmp_path / "truth.vcf"
    counts = fix_mason_vcf(raw, out, seed=1, reference_name="ref.fa")
    text = out.read_text()
    assert "##reference=ref.fa\n" in text
    assert '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n#CHROM' in text
    rows = [line.split("\t") for line in text.splitlines() if not line.startswith("#")]
    assert [(r[1], r[8]) for r in rows] == [("5", "GT"), ("9", "GT"), ("20", "GT"), ("30", "GT")]
    assert rows[0][4] in {"A", "T"} and rows[0][9] in {"0|1", "1|0"}
    # haplotype 1 had T (allele 2 of "A,T"): if it kept its allele, the ALT is T
    assert (rows[0][4], rows[0][9]) in {("T", "1|0"), ("A", "0|1")}
    assert (rows[1][4], rows[1][9]) == ("T", "1|1")
    assert (rows[2][4], rows[2][9]) == ("A", "1|1")
    assert counts == {"snv": 3, "indel": 1, "het": 2, "hom": 2}
    assert fix_mason_vcf(raw, tmp_path / "again.vcf", seed=1, reference_name="ref.fa") == counts
    assert (tmp_path / "again.vcf").read_text() == text
