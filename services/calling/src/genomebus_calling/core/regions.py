"""Cutting the genome into regions that are called apart and give the calls of the whole.

Per-site calling (``bcftools mpileup | call``) has no state from one position to the next, and
``mpileup -r`` still reads every read overlapping its region, so a region's calls are the
whole run's calls inside it (measured: identical records for 1, 2, 4 and 7 regions). The one
step that looks across positions, ``bcftools norm`` (left-aligning indels, which can move a
record before a region's start), runs once over the concatenation, in the gather.

Fixed windows rather than N-gaps: the result does not depend on where the cuts are, so the
cheaper rule wins (N-gaps need a pass over the reference, and buy only fewer reads counted
twice at the edges). Contigs smaller than a window are packed together in genome order, so a
reference with thousands of decoy or alt contigs still gives units of similar size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def region(name: str, start: int, end: int) -> str:
    """htslib's region string, braced when the contig name itself holds a colon."""
    shown = f"{{{name}}}" if ":" in name else name
    return f"{shown}:{start}-{end}"


def plan_regions(contigs: Sequence[tuple[str, int]], window: int) -> list[list[str]]:
    """Units of regions (1-based, inclusive), in the contigs' order, about ``window`` bp each."""
    if window < 1:
        raise ValueError("window must be positive")
    units: list[list[str]] = []
    packed: list[str] = []
    packed_bp = 0
    for name, length in contigs:
        if length <= 0:
            continue
        if length < window:
            if packed and packed_bp + length > window:
                units.append(packed)
                packed, packed_bp = [], 0
            packed.append(region(name, 1, length))
            packed_bp += length
            continue
        if packed:
            units.append(packed)
            packed, packed_bp = [], 0
        count = -(-length // window)  # windows of equal size, the last not a sliver
        size = -(-length // count)
        for i in range(count):
            units.append([region(name, i * size + 1, min((i + 1) * size, length))])
    if packed:
        units.append(packed)
    return units


def region_bases(text: str, sizes: Mapping[str, int]) -> int:
    """The bases an htslib region string covers (a bare contig name: the whole contig)."""
    name, _, span = text.rpartition(":")
    start, _, end = span.partition("-")
    return int(end) - int(start) + 1 if name else sizes.get(text, 0)


def region_units(
    contigs: Sequence[tuple[str, int]], window: int, bam_size: int
) -> list[dict[str, Any]]:
    """The plan's units: each one's regions, the bases they cover, and its share of the BAM's
    bytes (its time limit follows from it: a unit reads about its share of the BAM)."""
    units = plan_regions(contigs, window)
    sizes = dict(contigs)
    bases = [sum(region_bases(r, sizes) for r in regions) for regions in units]
    total = sum(sizes.values()) or 1
    return [
        {"regions": regions, "bases": n, "bam_share_bytes": bam_size * n // total}
        for regions, n in zip(units, bases, strict=True)
    ]
