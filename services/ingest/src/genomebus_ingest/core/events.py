"""The events ingest publishes about a sample, built from what it holds."""

from __future__ import annotations

from genomebus_common.contracts.events import (
    ObjectRef,
    Producer,
    ReadGroup,
    ReferenceGenome,
    SampleReceived,
    SampleRegistered,
    SampleRemoved,
)

from .registration import SampleRegistration
from .sample import Sample

PRODUCER = Producer(service="ingest", version="0.1.0")


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


def released(sample: Sample, reference: ReferenceGenome) -> SampleReceived:
    """The SampleReceived of a checked sample (both mates stored, pairs counted)."""
    if sample.reads_r1 is None or sample.reads_r2 is None or sample.read_pairs is None:
        raise ValueError(f"sample {sample.sample_id} is not checked; it cannot be released")
    return sample_received(
        sample.registration,
        pseudonym=sample.patient_pseudonym,
        reference=reference,
        r1=sample.reads_r1,
        r2=sample.reads_r2,
        read_pairs=sample.read_pairs,
        read_bases=sample.read_bases,
    )


def registered(sample: Sample) -> SampleRegistered:
    """The hospital now treats this patient: consent learns it from this event, sent only once
    the sample's reads are in and checked (a bare registration naming a stolen national id
    makes no one a treating hospital)."""
    return SampleRegistered(
        correlation_id=sample.sample_id,
        sample_id=sample.sample_id,
        patient_pseudonym=sample.patient_pseudonym,
        hospital_id=sample.hospital_id,
    )


def removed(sample: Sample, hospital_id: str, reason: str) -> SampleRemoved:
    return SampleRemoved(
        correlation_id=sample.sample_id,
        sample_id=sample.sample_id,
        patient_pseudonym=sample.patient_pseudonym,
        hospital_id=hospital_id,
        reason=reason,
        requested_by=hospital_id,
    )
