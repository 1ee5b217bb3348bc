"""In-memory stand-ins for alignment's (and calling's) ports: the object store, the reference
cache and the aligner's tools, so the stage's work is tested without MinIO or bwa."""

from __future__ import annotations

import contextlib
import hashlib
import io
from collections.abc import Iterator, Sequence
from pathlib import Path

from genomebus_alignment.core.results import (
    Aligner,
    AlignmentResult,
    GatheredAlignment,
    UnitAlignment,
)
from genomebus_common.contracts.events import (
    AlignmentMetrics,
    ObjectRef,
    ReadGroup,
    ReferenceGenome,
    ToolProvenance,
)
from genomebus_common.stagekit.work import ReadStream

METRICS = AlignmentMetrics(reads_total=2, mapping_rate=1.0, duplicate_rate=0.0, mean_coverage=1.0)


class MemoryStore:
    """``StageObjects`` in a dict: (bucket, key) -> (bytes, content type)."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], tuple[bytes, str]] = {}

    def put_bytes(
        self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> ObjectRef:
        self.objects[(bucket, key)] = (data, content_type)
        return ObjectRef(
            bucket=bucket,
            key=key,
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
            content_type=content_type,
        )

    def put_file(
        self, bucket: str, key: str, path: Path, *, content_type: str = "application/octet-stream"
    ) -> ObjectRef:
        return self.put_bytes(bucket, key, path.read_bytes(), content_type)

    @contextlib.contextmanager
    def open(self, ref: ObjectRef) -> Iterator[io.BytesIO]:
        yield io.BytesIO(self.objects[(ref.bucket, ref.key)][0])

    def download(self, ref: ObjectRef, path: Path) -> Path:
        path.write_bytes(self.objects[(ref.bucket, ref.key)][0])
        return path

    def remove(self, bucket: str, key: str) -> None:
        self.objects.pop((bucket, key), None)

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        return sorted(k for b, k in self.objects if b == bucket and k.startswith(prefix))


class FixedReference:
    """Every reference is one local FASTA (never opened by the fake tools)."""

    def __init__(self, fasta: Path) -> None:
        self.fasta = fasta
        self.asked: list[ReferenceGenome] = []

    def materialise(self, reference: ReferenceGenome) -> tuple[Path, object]:
        self.asked.append(reference)
        return self.fasta, None


def _tool(name: str, command: str) -> ToolProvenance:
    return ToolProvenance(name=name, version="test", command=command)


class FakeAligner:
    """``AlignerTools`` that counts the pairs it is given (4 lines each, gzip-compressed) and
    writes a "BAM" naming them; ``lose`` pairs go missing, as a broken aligner's would."""

    def __init__(self, lose: int = 0) -> None:
        self.lose = lose
        self.calls: list[tuple[str, dict[str, object]]] = []

    @staticmethod
    def _pairs(stream: ReadStream | Path) -> int:
        import gzip

        limit = 16 * 1024 * 1024  # test chunks are kilobytes: a bound, not a sample's size
        if isinstance(stream, Path):
            with stream.open("rb") as file:
                data = file.read(limit + 1)
        else:
            data = stream.read(limit + 1)
        assert len(data) <= limit, "a test chunk larger than the fake aligner reads"
        return gzip.decompress(data).count(b"\n") // 4

    def align_unit(
        self,
        r1: ReadStream | Path,
        r2: ReadStream | Path,
        reference_fasta: Path,
        read_group: ReadGroup,
        workdir: Path,
        *,
        aligner: Aligner,
        batch_bases: int,
        first_pair: int,
    ) -> UnitAlignment:
        pairs = self._pairs(r1) - self.lose
        self.calls.append(("unit", {"aligner": aligner, "first_pair": first_pair}))
        workdir.mkdir(parents=True, exist_ok=True)
        bam = workdir / "sorted.bam"
        bam.write_bytes(f"unit from {first_pair}: {pairs}\n".encode())
        tools = [_tool(aligner, f"{aligner} mem"), _tool("samtools", "fixmate | sort")]
        return UnitAlignment(bam=bam, read_pairs=pairs, tools=tools)

    def align_whole(
        self,
        r1: ReadStream | Path,
        r2: ReadStream | Path,
        reference_fasta: Path,
        read_group: ReadGroup,
        workdir: Path,
        *,
        aligner: Aligner,
        batch_bases: int,
    ) -> AlignmentResult:
        pairs = self._pairs(r1) - self.lose
        self.calls.append(("whole", {"aligner": aligner}))
        workdir.mkdir(parents=True, exist_ok=True)
        bam, bai = workdir / "aligned.bam", workdir / "aligned.bam.bai"
        bam.write_bytes(b"whole")
        bai.write_bytes(b"index")
        tools = [_tool(aligner, f"{aligner} mem"), _tool("samtools", "fixmate | markdup")]
        return AlignmentResult(
            bam=bam, bai=bai, metrics=METRICS, tools=tools, read_pairs=pairs, markdup_stats=bam
        )

    def gather(
        self,
        unit_bams: Sequence[Path],
        reference_fasta: Path,
        workdir: Path,
        *,
        expected_pairs: int,
    ) -> GatheredAlignment:
        self.calls.append(("gather", {"units": [p.read_bytes() for p in unit_bams]}))
        workdir.mkdir(parents=True, exist_ok=True)
        bam, bai = workdir / "aligned.bam", workdir / "aligned.bam.bai"
        bam.write_bytes(b"".join(p.read_bytes() for p in unit_bams))
        bai.write_bytes(b"index")
        return GatheredAlignment(
            bam=bam, bai=bai, markdup_stats=bam, metrics=METRICS, tool=_tool("samtools", "merge")
        )
