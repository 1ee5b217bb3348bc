"""Valid events for tests, built the way producers build them."""

from __future__ import annotations

import hashlib
import uuid

from genomebus_common.contracts.events import (
    ConsentChanged,
    ObjectRef,
    Priority,
    ReadGroup,
    ReferenceGenome,
    ResearchUse,
    SampleReceived,
    SampleRemoved,
)

PSEUDONYM = "pk1_" + hashlib.sha256(b"patient-1").hexdigest()
REFERENCE = ReferenceGenome(id="GRCh37-chrX-70M", digest="SQC." + "A" * 32)


def object_ref(name: str = "reads_R1.fastq.gz", data: bytes = b"@r\nACGT\n+\nIIII\n") -> ObjectRef:
    return ObjectRef(
        bucket="genomebus-reads",
        key=f"samples/S1/{name}",
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
    )


def sample_received(sample_id: str | None = None, **overrides: object) -> SampleReceived:
    sample_id = sample_id or f"S-{uuid.uuid4().hex[:8]}"
    fields: dict[str, object] = dict(
        correlation_id=sample_id,
        sample_id=sample_id,
        patient_pseudonym=PSEUDONYM,
        reference=REFERENCE,
        hospital_id="RH",
        lis_order_id="ORD-1",
        priority=Priority.ROUTINE,
        sequencing_run="RUN-1",
        read_group=ReadGroup(id="RG1", sample=sample_id, library="LIB1"),
        reads_r1=object_ref("reads_R1.fastq.gz"),
        reads_r2=object_ref("reads_R2.fastq.gz"),
        read_pairs=1,
    )
    fields.update(overrides)
    return SampleReceived(**fields)  # type: ignore[arg-type]


def consent_changed(version: int = 1, *, withdrawn: bool = False) -> ConsentChanged:
    """A consent version of ``PSEUDONYM``: given with research allowed, or a withdrawal."""
    return ConsentChanged(
        correlation_id=f"C-{version}",
        patient_pseudonym=PSEUDONYM,
        version=version,
        analysis_consent_given=not withdrawn,
        withdrawn=withdrawn,
        research_use=ResearchUse.OWN_TREATMENT_ONLY if withdrawn else ResearchUse.ALLOWED,
        recorded_by="counsellor",
    )


def sample_removed(sample_id: str = "S-1", hospital_id: str = "RH") -> SampleRemoved:
    """The hospital's withdrawal of one of ``PSEUDONYM``'s samples."""
    return SampleRemoved(
        correlation_id=sample_id,
        sample_id=sample_id,
        patient_pseudonym=PSEUDONYM,
        hospital_id=hospital_id,
        reason="wrong patient",
        requested_by="lis",
    )
