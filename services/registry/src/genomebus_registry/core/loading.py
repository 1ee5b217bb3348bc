"""What a load and a removal do, decided apart from the SQL that carries them out.

A load writes its blocks before it locks the patient (so a consent change waits milliseconds,
not a whole genome), then decides with the consent in force at commit: write the blocks now if
consent came back since the early look, take them back if it was withdrawn meanwhile, or keep
what was written. A loaded sample is announced once: the VariantsReady id derives from the
sample and its VCF, so even two VariantsCalled events for one VCF can never announce it twice.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass

from genomebus_common.contracts.events import Producer

#: The inbox's consumer name and the audit actor of every load and removal.
CONSUMER = "registry"
PRODUCER = Producer(service="registry", version="0.1.0")
_READY_NAMESPACE = uuid.UUID("6f1d3c1e-5b1a-4c61-9a8e-7d2b0c9e4a11")


def ready_event_id(sample_id: str, vcf_sha256: str) -> uuid.UUID:
    return uuid.uuid5(_READY_NAMESPACE, f"{sample_id}:{vcf_sha256}")


@dataclass(frozen=True)
class LoadCounts:
    variants_new: int
    genotypes: int


class BlocksStep(enum.Enum):
    """What the load does with the sample's blocks once it holds the patient's lock."""

    WRITE = "write"  # consent allows use and nothing was written at the early look
    DELETE = "delete"  # written, but consent forbids use now
    KEEP = "keep"  # as they are: written and allowed, or neither


def blocks_at_commit(forbids_use: str | None, written: bool) -> BlocksStep:
    """The step for the consent in force at commit (``forbids_use``: ConsentState's)."""
    if forbids_use is None and not written:
        return BlocksStep.WRITE
    if forbids_use is not None and written:
        return BlocksStep.DELETE
    return BlocksStep.KEEP


def load_audit(forbids_use: str | None) -> tuple[str, str]:
    """The audit row's (action, outcome) of a load that ends loaded or quarantined."""
    if forbids_use:
        return "sample.quarantined", forbids_use
    return "sample.loaded", "loaded"


def removal_outcome(*, marked: bool, known: bool) -> str:
    """The audit outcome of a removal: it marked the sample, found it marked, or never saw it."""
    if marked:
        return "removed"
    return "already_removed" if known else "not_loaded_here"
