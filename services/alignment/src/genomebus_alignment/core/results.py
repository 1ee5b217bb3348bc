"""What the aligner's tools hand back: plain values, so the stage's work can be written (and
tested) against the ``Aligner`` port without running bwa."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from genomebus_common.contracts.events import AlignmentMetrics, ToolProvenance

Aligner = Literal["bwa", "minimap2"]


@dataclass(frozen=True)
class AlignmentResult:
    """A whole sample aligned, duplicate-marked, indexed and checked."""

    bam: Path
    bai: Path
    metrics: AlignmentMetrics
    tools: list[ToolProvenance]
    read_pairs: int
    markdup_stats: Path


@dataclass(frozen=True)
class UnitAlignment:
    """One chunk's reads aligned, mate-fixed and coordinate-sorted (not yet duplicate-marked)."""

    bam: Path
    read_pairs: int
    tools: list[ToolProvenance]


@dataclass(frozen=True)
class GatheredAlignment:
    """The units' BAMs merged, duplicate-marked, indexed and checked."""

    bam: Path
    bai: Path
    markdup_stats: Path
    metrics: AlignmentMetrics
    tool: ToolProvenance


__all__ = ["Aligner", "AlignmentResult", "GatheredAlignment", "UnitAlignment"]
