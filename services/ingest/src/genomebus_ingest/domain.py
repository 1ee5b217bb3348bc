"""What a LIS sends, what ingest answers, and how a registration becomes an event."""

from __future__ import annotations

import hashlib
import json
import uuid
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from genomebus_common.contracts.events import (
    Identifier,
    ObjectKey,
    ObjectRef,
    Priority,
    Producer,
    ReadGroup,
    ReferenceGenome,
    SampleReceived,
    Sha256Hex,
)

Mate = Literal["R1", "R2"]
PRODUCER = Producer(service="ingest", version="0.1.0")


class ReadGroupIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Identifier
    library: Identifier
    platform: Literal["ILLUMINA", "MGI", "ONT", "PACBIO", "ELEMENT", "ULTIMA"] = "ILLUMINA"
    platform_unit: Identifier | None = None


class ReadsIn(BaseModel):
    """The FASTQ pair: declared checksums, and optionally where it already lies."""

    model_config = ConfigDict(extra="forbid")

    r1_sha256: Sha256Hex
    r2_sha256: Sha256Hex
    # Checked like every object key: one that could hold a national id is refused with a 422
    # (which never echoes it), not carried into records, logs and errors.
    landing_r1_key: ObjectKey | None = Field(
        None, description="Key in the landing bucket, if the LIS put the file there already."
    )
    landing_r2_key: ObjectKey | None = None


def landing_key_of(hospital_id: str, key: str) -> bool:
    """True if ``key`` lies under the hospital's own ``<hospital_id>/`` prefix of the landing
    bucket, with no empty, ``.`` or ``..`` segment that could lead out of it."""
    head, _, rest = key.partition("/")
    return (
        head == hospital_id
        and bool(rest)
        and all(part not in ("", ".", "..") for part in rest.split("/"))
    )


class SampleRegistration(BaseModel):
    """A sample's registration as ingest keeps it: everything but the national id."""

    model_config = ConfigDict(extra="forbid")

    hospital_id: Identifier
    specimen_id: Identifier
    lis_order_id: Identifier
    sequencing_run: Identifier
    read_group: ReadGroupIn
    priority: Priority
    reference_id: Identifier
    reads: ReadsIn

    @property
    def sample_id(self) -> str:
        """Unique on the bus: specimen ids are only unique within one hospital."""
        return f"{self.hospital_id}.{self.specimen_id}"


class RegisterSample(SampleRegistration):
    """A sample as a hospital's LIS registers it."""

    national_id: str = Field(
        description="CPR number (DDMMYY-SSSS) or replacement number. Never stored or forwarded: "
        "ingest turns it into a pseudonym at once.",
        repr=False,
    )

    def kept(self) -> SampleRegistration:
        return SampleRegistration.model_validate(self.model_dump(exclude={"national_id"}))

    def fingerprint(self, pseudonym: str) -> str:
        """Identity of the content, without the national id: decides 'same' vs '409'."""
        content = self.kept().model_dump(mode="json")
        content["patient_pseudonym"] = pseudonym
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


class SampleStatus(StrEnum):
    AWAITING_READS = "awaiting_reads"
    AWAITING_CONSENT = "awaiting_consent"  # checked and stored; waits for a written consent
    RECEIVED = "received"  # released into the pipeline
    REJECTED = "rejected"  # bad input: reasons say why; no objects kept
    QUARANTINED = "quarantined"  # the patient has withdrawn: kept, never processed
    REMOVED = "removed"  # the hospital withdrew it: reads deleted, sample.removed published


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


def sample_received(
    registration: SampleRegistration,
    *,
    pseudonym: str,
    reference: ReferenceGenome,
    r1: ObjectRef,
    r2: ObjectRef,
    read_pairs: int,
    read_bases: int | None = None,
) -> SampleReceived:
    sample_id = registration.sample_id
    return SampleReceived(
        correlation_id=sample_id,
        sample_id=sample_id,
        patient_pseudonym=pseudonym,
        reference=reference,
        producer=PRODUCER,
        hospital_id=registration.hospital_id,
        lis_order_id=registration.lis_order_id,
        priority=registration.priority,
        sequencing_run=registration.sequencing_run,
        read_group=ReadGroup(
            id=registration.read_group.id,
            sample=sample_id,
            library=registration.read_group.library,
            platform=registration.read_group.platform,
            platform_unit=registration.read_group.platform_unit,
        ),
        reads_r1=r1,
        reads_r2=r2,
        read_pairs=read_pairs,
        read_bases=read_bases,
    )
