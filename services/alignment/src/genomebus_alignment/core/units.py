"""Alignment's plan of a sample, as values: which units there are and what each one records.

The work (``genomebus_alignment.work``) reads and stores the reads; these are the decisions it
takes on the way, pure so that they are tested without a FASTQ file or an object store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .chunks import ChunkRule
from .errors import ReadCountMismatch
from .results import Aligner


@dataclass(frozen=True)
class UnitIdentity:
    """What a chunk's records depend on besides its reads: fixed in the plan, so a rolling
    update that changes the settings never mixes two aligners or batch sizes in one BAM."""

    aligner: Aligner
    batch_bases: int

    def fields(self) -> dict[str, Any]:
        return {"aligner": self.aligner, "batch_bases": self.batch_bases}

    @classmethod
    def of_unit(cls, unit: Mapping[str, Any], default: UnitIdentity) -> UnitIdentity:
        """The identity a unit was planned with (``default`` for a plan from before it was
        recorded)."""
        return cls(
            unit.get("aligner", default.aligner), unit.get("batch_bases", default.batch_bases)
        )


def fits_one_chunk(read_bases: int | None, rule: ChunkRule) -> bool:
    """Whether the sample is known to hold fewer bases than one chunk's batches: it is then one
    unit, exactly the files as sent, so nothing is read, cut or stored twice."""
    return read_bases is not None and read_bases < rule.batch_bases * rule.batches_per_chunk


def whole_sample_unit(
    r1: dict[str, Any],
    r2: dict[str, Any],
    pairs: int,
    bases: int | None,
    identity: UnitIdentity,
) -> dict[str, Any]:
    """The one unit of a sample that fits one chunk: its reads are the files as sent."""
    return {
        "r1": r1,
        "r2": r2,
        "pairs": pairs,
        "bases": bases,
        "first_pair": 0,
        **identity.fields(),
    }


def number_units(units: Sequence[dict[str, Any]], identity: UnitIdentity) -> None:
    """Where each chunk's pairs start in the sample (bwa -J), and its identity, in place."""
    first = 0
    for unit in units:
        unit["first_pair"] = first
        unit.update(identity.fields())
        first += unit["pairs"]


def require_pairs(counted: int, expected: int, expected_because: str) -> None:
    """Raise ``ReadCountMismatch`` unless alignment ``counted`` the ``expected`` pairs: no read
    may be lost or invented on the way from ingest to the BAM. ``expected_because`` says who
    counted them ("ingest counted 10 read pairs")."""
    if counted != expected:
        raise ReadCountMismatch(f"{expected_because}, alignment read {counted}")


__all__ = [
    "UnitIdentity",
    "fits_one_chunk",
    "number_units",
    "require_pairs",
    "whole_sample_unit",
]
