"""Alignment's plan on the real object store: chunks of a sample that fails are not left behind."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pytest

from genomebus_alignment.adapters.tools import SamtoolsAligner
from genomebus_alignment.config import AlignmentSettings
from genomebus_alignment.core.errors import ReadCountMismatch
from genomebus_alignment.work import AlignmentWork
from genomebus_common.runtime.objectstore import ObjectStore
from genomebus_common.stagekit.scatter import ScatterStore

from ..common.factories import sample_received

pytestmark = pytest.mark.integration


class KnownReference:
    def materialise(self, reference: object) -> tuple[Path, None]:
        return Path("/nonexistent/genome.fa"), None


def fastq(n: int, mate: int) -> bytes:
    return gzip.compress(
        "".join(f"@r{i}/{mate}\n{'A' * 100}\n+\n{'I' * 100}\n" for i in range(n)).encode()
    )


@pytest.mark.parametrize("declared", [10, 11])
async def test_a_sample_cut_into_chunks_or_refused_leaves_only_what_its_plan_names(
    store: ObjectStore, bucket: str, tmp_path: Path, declared: int
) -> None:
    r1 = store.put_stream(bucket, "in/r1.fq.gz", io.BytesIO(fastq(10, 1)))
    r2 = store.put_stream(bucket, "in/r2.fq.gz", io.BytesIO(fastq(10, 2)))
    source = sample_received(reads_r1=r1, reads_r2=r2, read_pairs=declared)
    settings = AlignmentSettings(
        chunk_bases=400, bwa_batch_bases=400, profile="dev", _env_file=None
    )  # type: ignore[call-arg]
    work = AlignmentWork(
        settings=settings,
        store=store,
        references=KnownReference(),
        tools=SamtoolsAligner(threads=1, sort_memory_mb=64),  # planning runs no tool
    )
    scatter = ScatterStore(store, bucket, f"samples/{source.sample_id}/alignment")
    if declared == 10:
        units = work.plan(source, scatter, tmp_path)
        assert [u["pairs"] for u in units] == [2, 2, 2, 2, 2]
        assert [u["first_pair"] for u in units] == [0, 2, 4, 6, 8]
        assert len(store.list_keys(bucket, scatter.work_prefix)) == 10
    else:
        with pytest.raises(ReadCountMismatch):
            work.plan(source, scatter, tmp_path)
        assert store.list_keys(bucket, scatter.work_prefix) == []
