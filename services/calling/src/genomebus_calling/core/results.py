"""What the caller's tools hand back: plain values, so the stage's work can be written (and
tested) against the ``CallerTools`` port without running bcftools."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from genomebus_common.contracts.events import ToolProvenance, VariantCounts


@dataclass(frozen=True)
class CallingResult:
    """A local BAM called, normalised, indexed and checked in one piece."""

    vcf: Path
    index: Path
    counts: VariantCounts
    tools: list[ToolProvenance]


@dataclass(frozen=True)
class RegionCalls:
    """One unit's calls: an unnormalised BCF, and how it was made."""

    bcf: Path
    tool: ToolProvenance


@dataclass(frozen=True)
class GatheredCalls:
    """The units' calls concatenated, normalised, indexed and checked."""

    vcf: Path
    tbi: Path
    counts: VariantCounts
    tools: list[ToolProvenance]


__all__ = ["CallingResult", "GatheredCalls", "RegionCalls"]
