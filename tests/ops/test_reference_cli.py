"""``genomebus-reference``, as an operator uses it, against the real MinIO and the real
samtools and bwa: add (with progress), list, show; adding again is a no-op; other content or
another sex-chromosome description under a registered id is refused; a description that does
not fit the FASTA is refused before anything is stored."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from genomebus_common.runtime.objectstore import ObjectStore
from genomebus_common.stagekit.reference import Interval, ReferenceRegistry, SexChromosomes
from genomebus_ops.reference_cli import _parser, run

pytestmark = pytest.mark.tools  # samtools faidx and bwa index


def _fasta(path: Path, seed: int, lengths: dict[str, int]) -> Path:
    rng = random.Random(seed)
    with path.open("w") as out:
        for name, length in lengths.items():
            sequence = "".join(rng.choice("ACGT") for _ in range(length))
            out.write(f">{name}\n")
            out.writelines(sequence[i : i + 60] + "\n" for i in range(0, length, 60))
    return path


SMALL = {"chr1": 3000, "chrX": 2000, "chrY": 1500}


def _run(
    argv: list[str], registry: ReferenceRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    status = run(_parser().parse_args(argv), registry, tmp_path / "work")
    return status, capsys.readouterr().out


def test_add_list_show_and_add_again(
    store: ObjectStore, bucket: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = ReferenceRegistry(store, tmp_path / "cache", bucket=bucket)
    fasta = _fasta(tmp_path / "small.fa", 1, SMALL)
    add = ["add", "small", str(fasta), "--x", "chrX", "--y", "chrY", "--par", "chrX:1-100"]
    status, out = _run([*add, "--par", "chrY:1-100"], registry, tmp_path, capsys)
    assert status == 0
    for step in ("digesting", "samtools faidx", "bwa index", "uploading 7/7", "digest    SQC."):
        assert step in out, f"no {step!r} in:\n{out}"
    assert "X=chrX Y=chrY; PARs: chrX:1-100, chrY:1-100" in out

    status, out = _run(["list"], registry, tmp_path, capsys)
    assert status == 0 and out.startswith("small\tSQC.") and "6,500 bases" in out

    status, out = _run(["show", "small", "--json"], registry, tmp_path, capsys)
    shown = json.loads(out)
    assert shown["sex_chromosomes"]["pars"][1] == {"contig": "chrY", "start": 1, "end": 100}
    assert set(shown["files"]) == {
        "genome.fa",
        *(f"genome.fa.{s}" for s in ["fai", "amb", "ann", "bwt", "pac", "sa"]),
    }

    status, out = _run([*add, "--par", "chrY:1-100"], registry, tmp_path, capsys)
    assert status == 0 and "already registered with this content" in out
    assert "uploading" not in out, "the same content again stores nothing"


def test_other_content_or_description_under_a_registered_id_is_refused(
    store: ObjectStore, bucket: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = ReferenceRegistry(store, tmp_path / "cache", bucket=bucket)
    first = _fasta(tmp_path / "a.fa", 1, SMALL)
    assert (
        _run(["add", "ref", str(first), "--x", "chrX", "--y", "chrY"], registry, tmp_path, capsys)[
            0
        ]
        == 0
    )
    other = _fasta(tmp_path / "b.fa", 2, SMALL)
    from genomebus_common.contracts.errors import DataConflict

    with pytest.raises(DataConflict, match="other content"):
        _run(["add", "ref", str(other)], registry, tmp_path, capsys)
    with pytest.raises(DataConflict, match="another sex-chromosome description"):
        _run(["add", "ref", str(first), "--x", "chrY", "--y", "chrX"], registry, tmp_path, capsys)
    assert registry.find("ref") is not None and registry.find(
        "ref"
    ).sex_chromosomes == SexChromosomes(  # type: ignore[union-attr]
        x="chrX", y="chrY"
    )


def test_a_description_that_does_not_fit_the_fasta_stores_nothing(
    store: ObjectStore, bucket: str, tmp_path: Path
) -> None:
    from genomebus_common.contracts.errors import PermanentError

    registry = ReferenceRegistry(store, tmp_path / "cache", bucket=bucket)
    fasta = _fasta(tmp_path / "a.fa", 1, SMALL)
    wrong = SexChromosomes(x="X", y="chrY", pars=(Interval(contig="chrY", start=1, end=9999),))
    with pytest.raises(PermanentError) as refused:
        registry.register("ref", fasta, tmp_path / "work", sex_chromosomes=wrong)
    assert "'X' is not in the FASTA" in str(refused.value)
    assert "ends past chrY's 1,500 bases" in str(refused.value)
    assert registry.ids() == []


def test_a_par_is_parsed_or_refused_with_its_text() -> None:
    assert Interval.parse("chrX:10,001-2,781,479") == Interval(
        contig="chrX", start=10001, end=2781479
    )
    for bad in ("chrX", "chrX:5-1", ":1-2", "chrX:a-b"):
        with pytest.raises(ValueError, match="CONTIG:START-END"):
            Interval.parse(bad)
