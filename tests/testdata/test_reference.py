from __future__ import annotations

from pathlib import Path

import pytest

from genomebus_testdata import describe, make_reference
from genomebus_testdata.reference import DEFAULT_START


def _sequence(fasta: Path) -> str:
    lines = fasta.read_text().splitlines()
    assert lines[0].startswith(">")
    return "".join(lines[1:])


def test_slice_is_deterministic_named_and_n_free(tmp_path: Path) -> None:
    a = make_reference(tmp_path / "a", length=50_000)
    b = make_reference(tmp_path / "b", length=50_000)
    assert a.name == f"chrX_{DEFAULT_START}_{DEFAULT_START + 50_000}.fa"
    assert a.read_bytes() == b.read_bytes()
    seq = _sequence(a)
    assert len(seq) == 50_000
    assert set(seq) <= set("ACGT")
    # real human sequence, not a uniform random one: GC well below 50% and repeats present
    gc = (seq.count("G") + seq.count("C")) / len(seq)
    assert 0.30 < gc < 0.50
    info = describe(a)
    assert (info.contig, info.start, info.length) == (a.stem, DEFAULT_START, 50_000)


def test_fai_matches_samtools(tmp_path: Path) -> None:
    import subprocess

    fasta = make_reference(tmp_path, length=10_000)
    ours = fasta.with_name(fasta.name + ".fai").read_text()
    copy = tmp_path / "copy.fa"
    copy.write_bytes(fasta.read_bytes())
    subprocess.run(["samtools", "faidx", str(copy)], check=True)
    assert Path(f"{copy}.fai").read_text() == ours


def test_offsets_are_consistent(tmp_path: Path) -> None:
    wide = _sequence(make_reference(tmp_path, start=3_000_000, length=2_000))
    narrow = _sequence(make_reference(tmp_path, start=3_000_137, length=500))
    assert narrow == wide[137:637]


def test_existing_output_is_reused_and_damage_is_repaired(tmp_path: Path) -> None:
    fasta = make_reference(tmp_path, length=20_000)
    good = fasta.read_bytes()
    stamp = fasta.stat().st_mtime_ns
    assert make_reference(tmp_path, length=20_000) == fasta
    assert fasta.stat().st_mtime_ns == stamp  # not rewritten

    fasta.write_bytes(good.replace(b"A", b"C", 1))
    make_reference(tmp_path, length=20_000)
    assert fasta.read_bytes() == good


def test_slice_over_an_n_gap_is_refused(tmp_path: Path) -> None:
    # chrX has a 50 kb N run at 7 623 882 (GRCh37): a reference with it would skew accuracy.
    with pytest.raises(ValueError, match="N"):
        make_reference(tmp_path, start=7_600_000, length=100_000)
