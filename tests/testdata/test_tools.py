from __future__ import annotations

import pytest

from genomebus_testdata import ToolFailed, ToolMissing, find_source
from genomebus_testdata.tools import PACKAGES, find_tool, run, run_pipeline


@pytest.mark.parametrize("tool", sorted(PACKAGES))
def test_required_tool_is_installed(tool: str) -> None:
    assert find_tool(tool).is_file()


def test_smalt_examples_chrx_is_installed() -> None:
    assert find_source().stat().st_size > 19_000_000


def test_missing_tool_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ToolMissing, match="Debian package 'tabix'"):
        find_tool("bgzip")


def test_bad_override_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENOMEBUS_MASON_SIMULATOR", "/nonexistent/mason_simulator")
    with pytest.raises(ToolMissing, match="GENOMEBUS_MASON_SIMULATOR"):
        find_tool("mason_simulator")


def test_missing_chrx_source_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENOMEBUS_CHRX_FASTA", "/nonexistent/hs37chrXtrunc.fa.gz")
    with pytest.raises(ToolMissing, match="GENOMEBUS_CHRX_FASTA"):
        find_source()


def test_failed_tool_carries_its_stderr() -> None:
    with pytest.raises(ToolFailed, match="samtools"):
        run(["samtools", "view", "/nonexistent.bam"])


def test_pipeline_fails_when_an_early_stage_fails() -> None:
    # The last stage succeeds on empty input; pipefail semantics must still report the first.
    with pytest.raises(ToolFailed, match="nonexistent"):
        run_pipeline([["samtools", "view", "-h", "/nonexistent.bam"], ["bgzip", "-c"]])
