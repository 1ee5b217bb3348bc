"""A sample as ingest holds it, and what ingest tells a LIS about it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from genomebus_common.contracts.events import ObjectRef, Priority

from .registration import MATES, Mate, SampleRegistration
from .states import INITIAL, SampleStatus, Step, allows, takes_reads

TraceCarrier = dict[str, str]
Progress = dict[str, dict[str, Any]]


def reads_key(sample_id: str, mate: Mate) -> str:
    """Where a sample's mate lies in the reads bucket."""
    return f"samples/{sample_id}/{mate}.fastq.gz"


class SampleView(BaseModel):
    """What ingest says about one sample."""

    sample_id: str
    hospital_id: str
    specimen_id: str
    lis_order_id: str
    priority: Priority
    status: SampleStatus
    reasons: list[str] = []
    read_pairs: int | None = None
    reads_r1: ObjectRef | None = None
    reads_r2: ObjectRef | None = None
    event_id: uuid.UUID | None = None
    consent_version: int | None = Field(None, description="The consent version that released it.")
    progress: dict[str, dict[str, Any]] | None = Field(
        None,
        description="Per stage, units of its scattered work done of the total (read chunks "
        "for alignment, regions for calling): {stage: {done, total, unit_kind}}.",
    )
    upload: dict[str, str] | None = Field(
        None, description="Where to PUT each mate while the sample awaits its reads."
    )


@dataclass(frozen=True)
class Sample:
    """One sample's record: its registration (without the national id) and where it stands."""

    registration: SampleRegistration
    patient_pseudonym: str
    fingerprint: str
    status: SampleStatus = INITIAL
    reasons: tuple[str, ...] = ()
    reads_r1: ObjectRef | None = None
    reads_r2: ObjectRef | None = None
    read_pairs: int | None = None
    read_bases: int | None = None
    event_id: uuid.UUID | None = None
    consent_version: int | None = None
    progress: Progress | None = None
    #: Where the sample's trace began (the LIS's POST): later work continues that trace.
    trace_context: TraceCarrier | None = None

    @property
    def sample_id(self) -> str:
        return self.registration.sample_id

    @property
    def hospital_id(self) -> str:
        return self.registration.hospital_id

    @property
    def priority(self) -> Priority:
        return self.registration.priority

    def reads(self, mate: Mate) -> ObjectRef | None:
        return self.reads_r1 if mate == "R1" else self.reads_r2

    def holds_good(self, mate: Mate) -> bool:
        """The mate is stored and is the declared file: never overwrite it."""
        current = self.reads(mate)
        return current is not None and current.sha256 == self.registration.reads.declared(mate)

    @property
    def ready_for_check(self) -> bool:
        """Both mates stored and the check not yet done."""
        return allows(self.status, Step.PASS_CHECK) and bool(self.reads_r1 and self.reads_r2)

    def view(self) -> SampleView:
        return SampleView(
            sample_id=self.sample_id,
            hospital_id=self.hospital_id,
            specimen_id=self.registration.specimen_id,
            lis_order_id=self.registration.lis_order_id,
            priority=self.priority,
            status=self.status,
            reasons=list(self.reasons),
            read_pairs=self.read_pairs,
            reads_r1=self.reads_r1,
            reads_r2=self.reads_r2,
            event_id=self.event_id,
            consent_version=self.consent_version,
            progress=self.progress,
            upload={
                mate: f"/v1/samples/{self.sample_id}/reads/{mate}"
                for mate in MATES
                if self.reads(mate) is None
            }
            if takes_reads(self.status)
            else None,
        )
