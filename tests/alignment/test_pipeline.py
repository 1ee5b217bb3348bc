"""The alignment pipeline against the real tools, on a small simulated genome."""

from __future__ import annotations

import gzip
import os
import stat
import subprocess
import time
from pathlib import Path

import pytest

from genomebus_alignment.adapters import pipeline as pipeline_module
from genomebus_alignment.adapters.pipeline import (
    BWA_INDEX_SUFFIXES,
    AlignmentResult,
    ReferenceNotIndexed,
    align,
)
from genomebus_alignment.core.fastq import InvalidReads
from genomebus_common.contracts.errors import PermanentError, ToolFailed, ToolFailedTransiently
from genomebus_common.stagekit.tools import Command, Data, has_bgzf_eof, tool_version

from .data import READ_GROUP, SmallDataset, write_subset

pytestmark = pytest.mark.tools  # runs the real bio tools


def _samtools(*args: str) -> str:
    return subprocess.run(["samtools", *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def small_pair(small_dataset: SmallDataset, tmp_path: Path) -> tuple[Path, Path]:
    """2000 pairs: enough to run every stage, quick enough for the failure tests."""
    return (
        write_subset(small_dataset.r1, tmp_path / "s1.fq.gz", 2000),
        write_subset(small_dataset.r2, tmp_path / "s2.fq.gz", 2000),
    )


def test_index_reference_wrote_bwa_index_and_fai(small_dataset: SmallDataset) -> None:
    for suffix in (*BWA_INDEX_SUFFIXES, ".fai"):
        assert Path(str(small_dataset.reference) + suffix).is_file(), suffix


def test_bwa_bam_is_complete_indexed_and_counts_match(
    aligned_bwa: AlignmentResult, small_dataset: SmallDataset
) -> None:
    result = aligned_bwa
    assert result.bam.is_file() and has_bgzf_eof(result.bam)
    assert result.bai.is_file() and result.bai.name.endswith(".bam.bai")
    subprocess.run(["samtools", "quickcheck", str(result.bam)], check=True)
    assert result.read_pairs == small_dataset.read_pairs
    assert result.metrics.reads_total == 2 * small_dataset.read_pairs
    # The spec's own count, independently of the flagstat the pipeline used.
    assert int(_samtools("view", "-c", "-F", "0x900", str(result.bam))) == 2 * result.read_pairs
    # The index works: a region query needs it.
    assert int(_samtools("view", "-c", str(result.bam), "chrB:1000-2000")) > 0


def test_bwa_metrics_are_plausible(aligned_bwa: AlignmentResult) -> None:
    metrics = aligned_bwa.metrics
    assert metrics.mapping_rate > 0.95
    assert 0 <= metrics.duplicate_rate < 0.05
    assert 25 < metrics.mean_coverage < 35  # 30x simulated, minus duplicates and edges


def test_bam_is_sorted_marked_and_carries_the_read_group(aligned_bwa: AlignmentResult) -> None:
    header = _samtools("view", "-H", str(aligned_bwa.bam))
    assert "SO:coordinate" in header
    rg = next(line for line in header.splitlines() if line.startswith("@RG"))
    assert f"ID:{READ_GROUP.id}" in rg and f"SM:{READ_GROUP.sample}" in rg
    assert f"LB:{READ_GROUP.library}" in rg and f"PU:{READ_GROUP.platform_unit}" in rg
    assert "samtools markdup" in header  # @PG line
    first = _samtools("view", str(aligned_bwa.bam), "chrA:5000-5100").splitlines()[0]
    assert f"RG:Z:{READ_GROUP.id}" in first and "MC:Z:" in first  # fixmate -m ran


def test_provenance_has_versions_and_no_paths(
    aligned_bwa: AlignmentResult, small_dataset: SmallDataset
) -> None:
    tools = {t.name: t for t in aligned_bwa.tools}
    assert set(tools) == {"bwa", "samtools"}
    assert tools["bwa"].version == tool_version("bwa") and tools["bwa"].version.startswith("0.7")
    assert tools["samtools"].version.startswith("1.")
    for tool in tools.values():
        assert tool.command
        assert str(small_dataset.reference.parent) not in tool.command
        assert "/tmp" not in tool.command and READ_GROUP.sample not in tool.command
    assert tools["bwa"].command.startswith(
        "bwa mem -K 100000000 -J <first-read> -t 2 -R <read-group> <reference>"
    )
    assert "samtools markdup" in tools["samtools"].command


def test_minimap2_from_paths(small_dataset: SmallDataset, tmp_path: Path) -> None:
    result = align(
        small_dataset.r1,
        small_dataset.r2,
        small_dataset.reference,
        READ_GROUP,
        tmp_path,
        aligner="minimap2",
    )
    assert has_bgzf_eof(result.bam) and result.bai.is_file()
    assert result.metrics.reads_total == 2 * small_dataset.read_pairs
    assert result.metrics.mapping_rate > 0.95
    assert 25 < result.metrics.mean_coverage < 35
    assert [t.name for t in result.tools] == ["minimap2", "samtools"]
    assert result.tools[0].version.startswith("2.")


def test_truncated_gzip_is_a_clear_permanent_error(
    small_pair: tuple[Path, Path], tmp_path: Path, small_dataset: SmallDataset
) -> None:
    r1, r2 = small_pair
    data = r1.read_bytes()
    cut = tmp_path / "cut.fq.gz"
    cut.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(InvalidReads, match=r"R1: gzip stream is truncated") as info:
        align(cut, r2, small_dataset.reference, READ_GROUP, tmp_path / "work")
    assert isinstance(info.value, PermanentError)
    assert not (tmp_path / "work" / "tmp" / "r1.fastq").exists()  # FIFOs cleaned up


def test_pair_of_unequal_length_is_refused(
    small_pair: tuple[Path, Path], tmp_path: Path, small_dataset: SmallDataset
) -> None:
    r1, _ = small_pair
    shorter = write_subset(small_dataset.r2, tmp_path / "short.fq.gz", 1500)
    # Either the counts disagree, or bwa stopped at the shorter file (it exits 0, warning).
    with pytest.raises(
        PermanentError, match=r"R1 holds 2000 reads but R2 holds 1500|fewer sequences"
    ):
        align(r1, shorter, small_dataset.reference, READ_GROUP, tmp_path / "work")


def test_fastq_cut_between_lines_is_refused(
    small_pair: tuple[Path, Path], tmp_path: Path, small_dataset: SmallDataset
) -> None:
    _, r2 = small_pair
    with gzip.open(small_dataset.r1, "rb") as src:
        lines = [src.readline() for _ in range(2000 * 4 - 2)]
    bad = tmp_path / "bad.fq.gz"
    with gzip.open(bad, "wb") as out:
        out.writelines(lines)
    with pytest.raises(InvalidReads, match="not a multiple of 4"):
        align(bad, r2, small_dataset.reference, READ_GROUP, tmp_path / "work")


def test_plain_fastq_is_refused(
    small_pair: tuple[Path, Path], tmp_path: Path, small_dataset: SmallDataset
) -> None:
    plain = tmp_path / "plain.fq"
    plain.write_bytes(gzip.decompress(small_pair[0].read_bytes()))
    with pytest.raises(InvalidReads, match="not gzip-compressed"):
        align(plain, small_pair[1], small_dataset.reference, READ_GROUP, tmp_path / "work")


def test_unindexed_reference_is_refused(
    small_pair: tuple[Path, Path], tmp_path: Path, small_dataset: SmallDataset
) -> None:
    bare = tmp_path / "bare.fa"
    bare.write_bytes(small_dataset.reference.read_bytes())
    with pytest.raises(ReferenceNotIndexed, match=r"not indexed \(missing bare\.fa\.fai"):
        align(*small_pair, bare, READ_GROUP, tmp_path / "work")


def _fake_tool(bin_dir: Path, name: str, script: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_killed_aligner_is_transient(
    small_pair: tuple[Path, Path],
    tmp_path: Path,
    small_dataset: SmallDataset,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An OOM kill looks like SIGKILL: the same input may well succeed on retry."""
    _fake_tool(tmp_path / "bin", "bwa", 'head -c 1000 "$7" > /dev/null; kill -KILL $$')
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(ToolFailedTransiently, match="bwa mem was killed by SIGKILL"):
        align(*small_pair, small_dataset.reference, READ_GROUP, tmp_path / "work")


def test_aligner_rejecting_input_is_permanent_with_stderr(
    small_pair: tuple[Path, Path],
    tmp_path: Path,
    small_dataset: SmallDataset,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    message = "[E::bwa_idx_load_from_disk] fail to locate the index"
    _fake_tool(tmp_path / "bin", "bwa", f'echo "{message}" >&2; exit 1')
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    expected = r"bwa mem exited with status 1.*fail to locate the index"
    with pytest.raises(ToolFailed, match=expected) as info:
        align(*small_pair, small_dataset.reference, READ_GROUP, tmp_path / "work")
    assert not isinstance(info.value, ToolFailedTransiently)


def test_missing_aligner_is_transient(
    small_pair: tuple[Path, Path],
    tmp_path: Path,
    small_dataset: SmallDataset,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Not installed on this host is a deployment fault: another attempt (host) may succeed."""
    monkeypatch.setattr(
        pipeline_module,
        "_aligner_command",
        lambda aligner, threads, batch_bases=0, **_kw: Command.of(
            "genomebus-no-such-aligner", Data("r1.fastq")
        ),
    )
    with pytest.raises(ToolFailedTransiently, match="not installed") as info:
        align(*small_pair, small_dataset.reference, READ_GROUP, tmp_path / "work")
    assert info.value.code == "tool_missing"


def test_retry_in_the_same_workdir_succeeds(
    small_pair: tuple[Path, Path], tmp_path: Path, small_dataset: SmallDataset
) -> None:
    """A handler retrying after a crash reuses its workdir: stale temporaries must not matter."""
    work = tmp_path / "work"
    (work / "tmp").mkdir(parents=True)
    (work / "tmp" / "sort.0000.bam").write_bytes(b"stale")
    (work / "aligned.bam").write_bytes(b"stale")
    first = align(*small_pair, small_dataset.reference, READ_GROUP, work)
    assert first.read_pairs == 2000 and has_bgzf_eof(first.bam)
    assert not (work / "tmp").exists()


def test_a_feeder_that_cannot_start_leaves_no_aligner_behind(
    small_pair: tuple[Path, Path],
    tmp_path: Path,
    small_dataset: SmallDataset,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No thread to be had for R2's feeder: the error comes back at once, and bwa, which would
    wait for R2's FIFO for ever, is not left running."""
    from genomebus_common.stagekit import tools

    real_start = tools.FifoFeeder.start
    started: list[str] = []

    def start(self: tools.FifoFeeder) -> None:
        started.append(self.name)
        if len(started) == 2:
            raise RuntimeError("can't start new thread")
        real_start(self)

    monkeypatch.setattr(tools.FifoFeeder, "start", start)
    begun = time.monotonic()
    with pytest.raises(RuntimeError, match="can't start new thread"):
        align(*small_pair, small_dataset.reference, READ_GROUP, tmp_path / "work")
    assert time.monotonic() - begun < 30
    assert not tools._running, "every pipeline collected: no tool left running"
