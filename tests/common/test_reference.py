"""Reference genomes: content digests, registration once, a verified local cache."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from genomebus_common.contracts.errors import DataConflict
from genomebus_common.contracts.events import ReferenceGenome
from genomebus_common.runtime.objectstore import ObjectStore
from genomebus_common.stagekit.reference import (
    ReferenceRegistry,
    UnknownReference,
    collection_digest,
    fasta_digests,
    sha512t24u,
)


def _fasta(path: Path, sequences: dict[str, str], width: int = 60) -> Path:
    with path.open("w") as out:
        for name, seq in sequences.items():
            out.write(f">{name} description\n")
            for i in range(0, len(seq), width):
                out.write(seq[i : i + width] + "\n")
    return path


def _random_sequence(n: int, seed: int) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice("ACGT") for _ in range(n))


def test_refget_digest_matches_the_ga4gh_test_vector() -> None:
    assert sha512t24u(b"ACGT") == "aKF498dAxcJAqme6QYQ7EZ07-fiw8Kw2"


def test_digest_depends_on_content_not_layout(tmp_path: Path) -> None:
    seqs = {"chr1": "acgt" * 50, "chr2": "TTGA" * 30}
    a = collection_digest(fasta_digests(_fasta(tmp_path / "a.fa", seqs, width=60)))
    b = collection_digest(fasta_digests(_fasta(tmp_path / "b.fa", seqs, width=17)))
    renamed = collection_digest(
        fasta_digests(_fasta(tmp_path / "c.fa", {"1": seqs["chr1"], "2": seqs["chr2"]}))
    )
    changed = collection_digest(
        fasta_digests(_fasta(tmp_path / "d.fa", {**seqs, "chr2": "TTGA" * 29 + "TTGC"}))
    )
    assert a == b
    assert len({a, renamed, changed}) == 3
    assert fasta_digests(tmp_path / "a.fa")[0].digest == "SQ." + sha512t24u(
        seqs["chr1"].upper().encode()
    )


@pytest.mark.integration
def test_register_once_materialise_verified_and_refuse_unknowns(
    store: ObjectStore, bucket: str, tmp_path: Path
) -> None:
    fasta = _fasta(
        tmp_path / "ref.fa", {"c1": _random_sequence(5000, 1), "c2": _random_sequence(3000, 2)}
    )
    registry = ReferenceRegistry(store, tmp_path / "cache", bucket=bucket)
    manifest = registry.register("toy-1", fasta, tmp_path / "work")
    assert manifest.total_length == 8000
    assert {"genome.fa", "genome.fa.fai", "genome.fa.bwt", "genome.fa.sa"} <= set(manifest.files)
    assert registry.register("toy-1", fasta, tmp_path / "work") == manifest, "idempotent"

    local, again = registry.materialise(manifest.reference)
    assert again == manifest
    assert local.read_bytes() == fasta.read_bytes()
    assert (local.parent / "genome.fa.bwt").stat().st_size > 0
    first_mtime = local.stat().st_mtime_ns
    registry.materialise(manifest.reference)
    assert local.stat().st_mtime_ns == first_mtime, "downloaded once per digest"

    other = _fasta(tmp_path / "other.fa", {"c1": _random_sequence(5000, 3)})
    with pytest.raises(DataConflict, match="already registered with other content"):
        registry.register("toy-1", other, tmp_path / "work")
    with pytest.raises(UnknownReference, match="not registered"):
        registry.materialise(ReferenceGenome(id="nope", digest=manifest.reference.digest))
    wrong = ReferenceGenome(id="toy-1", digest="SQC." + "A" * 32)
    with pytest.raises(UnknownReference, match="registered with digest"):
        registry.resolve(wrong)
