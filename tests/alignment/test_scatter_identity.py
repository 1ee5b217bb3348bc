"""A sample cut into 1, 2 or 4 chunks, each aligned alone and then gathered, gives the records of
the whole sample aligned in one piece (the real tools, on the simulated genome)."""

from __future__ import annotations

import gzip
import subprocess
from pathlib import Path

import pytest

from genomebus_alignment.adapters.pipeline import align, align_unit, gather_alignments
from genomebus_alignment.core.chunks import ChunkRule, split_pairs

from .data import READ_GROUP, SmallDataset

pytestmark = pytest.mark.tools  # runs the real bio tools

BATCH = 750_000  # 30k pairs x 200 bases = 6 Mbp: 8 batches


class FileSink:
    def __init__(self, folder: Path, index: int) -> None:
        self.paths = [folder / f"c{index}_{m}.fq.gz" for m in (1, 2)]
        self.files = [p.open("wb") for p in self.paths]

    def write(self, mate: int, data: bytes) -> None:
        self.files[mate].write(data)

    def close(self, pairs: int, bases: int) -> None:
        for f in self.files:
            f.close()


def gz_blocks(path: Path):
    with gzip.open(path, "rb") as handle:
        while block := handle.read(1 << 16):
            yield block


def scattered(data: SmallDataset, folder: Path, aligner: str, batches_per_chunk: int) -> list[str]:
    folder.mkdir()
    sinks: list[FileSink] = []

    def open_chunk(index: int) -> FileSink:
        sinks.append(FileSink(folder, index))
        return sinks[-1]

    pairs = split_pairs(
        gz_blocks(data.r1), gz_blocks(data.r2), ChunkRule(BATCH, batches_per_chunk), open_chunk
    )
    bams = []
    for i, sink in enumerate(sinks):
        unit = align_unit(
            sink.paths[0],
            sink.paths[1],
            data.reference,
            READ_GROUP,
            folder / f"u{i}",
            aligner=aligner,
            threads=2,
            batch_bases=BATCH,  # type: ignore[arg-type]
            first_pair=sum(pairs[:i]),
        )
        assert unit.read_pairs == pairs[i]
        bams.append(unit.bam)
    bam, *_ = gather_alignments(bams, data.reference, folder / "gather", expected_pairs=sum(pairs))
    records = subprocess.run(
        ["samtools", "view", str(bam)], capture_output=True, text=True, check=True
    )
    assert len(sinks) == 8 // batches_per_chunk
    return records.stdout.splitlines()


@pytest.mark.parametrize("aligner", ["minimap2", "bwa"])
def test_the_records_do_not_depend_on_how_many_chunks(
    small_dataset: SmallDataset, tmp_path: Path, aligner: str
) -> None:
    """minimap2 aligns each pair alone: identical in any chunking. bwa estimates insert sizes
    per batch, so chunks are cut at its batches."""
    whole = scattered(small_dataset, tmp_path / "one", aligner, 8)
    assert len(whole) >= 60_000
    # a sample of one chunk streams through markdup in one pipeline: the same records again
    streamed = align(
        small_dataset.r1,
        small_dataset.r2,
        small_dataset.reference,
        READ_GROUP,
        tmp_path / "streamed",
        aligner=aligner,
        batch_bases=BATCH,
    )  # type: ignore[arg-type]
    records = subprocess.run(
        ["samtools", "view", str(streamed.bam)], capture_output=True, text=True, check=True
    )
    assert records.stdout.splitlines() == whole
    for per_chunk in (4, 2):
        assert scattered(small_dataset, tmp_path / f"by{per_chunk}", aligner, per_chunk) == whole


@pytest.fixture(scope="module")
def repeat_rich(tmp_path_factory: pytest.TempPathFactory) -> SmallDataset:
    """A real 1 Mb slice of human chrX (repeats and all) and 20k simulated pairs on it: reads
    with several equally good hits, where bwa's tie-break decides the placement."""
    from genomebus_alignment.adapters.pipeline import index_reference
    from genomebus_testdata import make_reference, simulate_sample

    folder = tmp_path_factory.mktemp("repeat_rich")
    reference = make_reference(folder / "ref", length=1_000_000)
    if not Path(f"{reference}.bwt").exists():
        index_reference(reference)
    sample = simulate_sample(reference, folder / "sample", read_pairs=20_000, seed=5)
    return SmallDataset(reference, sample.reads_1, sample.reads_2, [], sample.read_pairs)


def test_bwa_places_tied_reads_as_in_one_piece(repeat_rich: SmallDataset, tmp_path: Path) -> None:
    """Stock bwa numbers a chunk's reads from 0 and breaks ties by that number, so ~0.05% of
    records moved between chunkings; genomebus's bwa takes the chunk's offset (-J)."""
    # BATCH again: 20k pairs x 300 bases = 6 Mbp, 8 batches
    whole = scattered(repeat_rich, tmp_path / "one", "bwa", 8)
    ties = [r for r in whole if r.split("\t")[4] == "0" and not int(r.split("\t")[1]) & 4]
    assert ties, "the slice has multi-mapping reads (else this test proves nothing)"
    for per_chunk in (4, 2):
        assert scattered(repeat_rich, tmp_path / f"by{per_chunk}", "bwa", per_chunk) == whole
