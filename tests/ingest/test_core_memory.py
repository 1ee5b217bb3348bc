"""Ingest's use cases on in-memory adapters: registration, reads, the consent gate, removal and
the sweep, with no database, bucket or broker."""

from __future__ import annotations

import hashlib
import io
import uuid
from dataclasses import dataclass

import pytest
from opentelemetry import trace

from genomebus_common.contracts.errors import ChecksumMismatch
from genomebus_common.contracts.events import (
    ConsentChanged,
    ReferenceGenome,
    ResearchUse,
    SampleReceived,
    SampleRegistered,
    SampleRemoved,
)
from genomebus_common.contracts.identifiers import Pseudonymiser, parse_cpr
from genomebus_common.runtime.broker import Delivery
from genomebus_ingest.adapters.memory import (
    CountingRelay,
    MemoryReads,
    MemoryReferences,
    MemorySamples,
)
from genomebus_ingest.adapters.tracing import OtelTracing
from genomebus_ingest.core.errors import (
    RegistrationRejected,
    SampleConflict,
    SampleNotFound,
    WrongState,
)
from genomebus_ingest.core.ingest import Ingest
from genomebus_ingest.core.registration import RegisterSample
from genomebus_ingest.core.sample import reads_key
from genomebus_ingest.core.states import SampleStatus

from .fastq_data import pair

CPR = "241190-1234"
KEY = "5e" * 32
REFERENCE = ReferenceGenome(id="toy-ref", digest="SQC." + "A" * 32)
DELIVERY = Delivery(topic="genomebus.stage.progress", partition=0, offset=0, key=None)


@dataclass
class World:
    ingest: Ingest
    samples: MemorySamples
    reads: MemoryReads
    references: MemoryReferences
    relay: CountingRelay


@pytest.fixture
def world() -> World:
    samples, reads, references, relay = (
        MemorySamples(),
        MemoryReads(),
        MemoryReferences(REFERENCE),
        CountingRelay(),
    )
    ingest = Ingest(
        samples=samples,
        objects=reads,
        references=references,
        pseudonymiser=Pseudonymiser.from_secret(KEY),
        relay=relay,
        tracing=OtelTracing(trace.get_tracer("tests")),
    )
    return World(ingest, samples, reads, references, relay)


def pseudonym(cpr: str = CPR) -> str:
    return Pseudonymiser.from_secret(KEY).pseudonym(parse_cpr(cpr))


def registration(r1: bytes, r2: bytes, **overrides: object) -> RegisterSample:
    body: dict[str, object] = {
        "hospital_id": "RH",
        "specimen_id": f"SP{uuid.uuid4().hex[:8]}",
        "lis_order_id": "ORD-77",
        "national_id": CPR,
        "sequencing_run": "RUN-1",
        "read_group": {"id": "RG1", "library": "LIB1"},
        "priority": "urgent_clinical",
        "reference_id": REFERENCE.id,
        "reads": {
            "r1_sha256": hashlib.sha256(r1).hexdigest(),
            "r2_sha256": hashlib.sha256(r2).hexdigest(),
        },
    }
    body.update(overrides)
    return RegisterSample.model_validate(body)


async def consent(
    world: World,
    version: int,
    *,
    withdrawn: bool = False,
    research_use: ResearchUse = ResearchUse.ALLOWED,
    event_id: uuid.UUID | None = None,
) -> None:
    event = ConsentChanged(
        correlation_id=f"c-{version}",
        patient_pseudonym=pseudonym(),
        version=version,
        analysis_consent_given=True,
        research_use=research_use,
        withdrawn=withdrawn,
        recorded_by="tests",
        **({"event_id": event_id} if event_id else {}),
    )
    delivery = Delivery(topic="genomebus.consent.changed", partition=0, offset=version, key=None)
    await world.ingest.apply_consent(event, delivery)


async def uploaded(world: World, n: int = 6, **overrides: object) -> str:
    """A registered sample with both mates uploaded; its id."""
    r1, r2 = pair(n)
    view, created = await world.ingest.register(registration(r1, r2, **overrides))
    assert created and view.status is SampleStatus.AWAITING_READS
    for mate, data in (("R1", r1), ("R2", r2)):
        await world.ingest.put_reads(view.sample_id, "RH", mate, io.BytesIO(data))
    return view.sample_id


def published(world: World, kind: type) -> list:
    return [e for e in world.samples.outbox if isinstance(e, kind)]


async def test_a_registration_again_is_the_same_sample_and_other_content_conflicts(
    world: World,
) -> None:
    r1, r2 = pair(3)
    body = registration(r1, r2)
    first, created = await world.ingest.register(body)
    again, created_again = await world.ingest.register(body)
    assert created and not created_again and again == first
    assert first.upload == {m: f"/v1/samples/{first.sample_id}/reads/{m}" for m in ("R1", "R2")}
    with pytest.raises(SampleConflict):
        await world.ingest.register(body.model_copy(update={"lis_order_id": "ORD-78"}))


async def test_a_bad_national_id_or_an_unknown_reference_is_refused_and_recorded(
    world: World,
) -> None:
    r1, r2 = pair(3)
    with pytest.raises(RegistrationRejected) as bad_id:
        await world.ingest.register(registration(r1, r2, national_id="991399-0000"))
    with pytest.raises(RegistrationRejected) as unknown:
        await world.ingest.register(registration(r1, r2, reference_id="nowhere"))
    assert bad_id.value.reasons[0].startswith("national_id: ")
    assert unknown.value.reasons == ["reference_id: reference 'nowhere' is not registered"]
    assert [reasons for _, _, reasons in world.samples.rejections] == [
        tuple(bad_id.value.reasons),
        tuple(unknown.value.reasons),
    ]
    assert not world.samples.samples


async def test_checked_reads_wait_for_consent_then_the_sample_is_released_once(
    world: World,
) -> None:
    sample_id = await uploaded(world)
    waiting = world.samples.samples[sample_id]
    assert waiting.status is SampleStatus.AWAITING_CONSENT and waiting.read_pairs == 6
    assert [e.sample_id for e in published(world, SampleRegistered)] == [sample_id]
    assert not published(world, SampleReceived)

    event_id = uuid.uuid4()
    await consent(world, 1, event_id=event_id)
    await consent(world, 1, event_id=event_id)  # delivered again: the inbox drops it
    released = world.samples.samples[sample_id]
    assert released.status is SampleStatus.RECEIVED and released.consent_version == 1
    [event] = published(world, SampleReceived)
    assert event.event_id == released.event_id and event.read_pairs == 6
    assert event.patient_pseudonym == pseudonym() and event.reference == REFERENCE


async def test_a_consent_held_before_the_reads_releases_them_when_checked(world: World) -> None:
    await consent(world, 1)
    sample_id = await uploaded(world)
    assert world.samples.samples[sample_id].status is SampleStatus.RECEIVED
    assert len(published(world, SampleReceived)) == 1


async def test_an_older_consent_version_changes_nothing(world: World) -> None:
    await consent(world, 2, withdrawn=True)
    await consent(world, 1)  # late: version 2 (withdrawn) stays
    sample_id = await uploaded(world)
    quarantined = world.samples.samples[sample_id]
    assert quarantined.status is SampleStatus.QUARANTINED
    assert quarantined.reasons == ("consent withdrawn (version 2): never processed",)
    assert not published(world, SampleReceived)


async def test_a_research_sample_is_held_until_research_use_is_allowed(world: World) -> None:
    sample_id = await uploaded(world, priority="research")
    await consent(world, 1, research_use=ResearchUse.OWN_TREATMENT_ONLY)
    held = world.samples.samples[sample_id]
    assert held.status is SampleStatus.AWAITING_CONSENT and "held:" in held.reasons[0]
    await consent(world, 2, research_use=ResearchUse.ALLOWED)
    assert world.samples.samples[sample_id].status is SampleStatus.RECEIVED


async def test_bad_reads_reject_the_sample_and_keep_no_objects(world: World) -> None:
    r1, _ = pair(4)
    _, r2 = pair(5)  # one record more in R2
    view, _ = await world.ingest.register(registration(r1, r2))
    await world.ingest.put_reads(view.sample_id, "RH", "R1", io.BytesIO(r1))
    rejected = await world.ingest.put_reads(view.sample_id, "RH", "R2", io.BytesIO(r2))
    assert rejected.status is SampleStatus.REJECTED
    assert rejected.reasons == ["mates have different record counts: R1 has 4, R2 has 5"]
    assert not world.reads.reads and not published(world, SampleRegistered)
    with pytest.raises(WrongState):
        await world.ingest.put_reads(view.sample_id, "RH", "R1", io.BytesIO(pair(4)[0]))


async def test_an_upload_that_is_not_the_declared_file_stores_nothing(world: World) -> None:
    r1, r2 = pair(3)
    view, _ = await world.ingest.register(registration(r1, r2))
    with pytest.raises(ChecksumMismatch):
        await world.ingest.put_reads(view.sample_id, "RH", "R1", io.BytesIO(r2))
    assert not world.reads.reads
    assert world.samples.samples[view.sample_id].status is SampleStatus.AWAITING_READS


async def test_another_hospitals_sample_is_not_found(world: World) -> None:
    sample_id = await uploaded(world)
    with pytest.raises(SampleNotFound):
        await world.ingest.get(sample_id, "OUH")
    with pytest.raises(SampleNotFound):
        await world.ingest.remove(sample_id, "OUH", "not mine")


async def test_a_removal_deletes_the_reads_and_announces_itself_once(world: World) -> None:
    sample_id = await uploaded(world)
    assert world.reads.reads
    removed = await world.ingest.remove(sample_id, "RH", "mix-up")
    again = await world.ingest.remove(sample_id, "RH", "mix-up")
    assert removed.status is again.status is SampleStatus.REMOVED
    assert removed.reasons == ["removed by RH: mix-up"]
    assert not world.reads.reads
    [event] = published(world, SampleRemoved)
    assert event.sample_id == sample_id and event.requested_by == "RH"


async def test_reads_from_the_landing_bucket_are_copied_and_checked(world: World) -> None:
    r1, r2 = pair(5)
    world.reads.landing.update({"RH/run/R1.fq.gz": r1, "RH/run/R2.fq.gz": r2})
    landing = {"landing_r1_key": "RH/run/R1.fq.gz", "landing_r2_key": "RH/run/R2.fq.gz"}
    body = registration(r1, r2)
    body = body.model_copy(update={"reads": body.reads.model_copy(update=landing)})
    view, _ = await world.ingest.register(body)
    assert view.status is SampleStatus.AWAITING_CONSENT and view.read_pairs == 5
    assert world.reads.reads[reads_key(view.sample_id, "R1")] == r1

    # a second sample names the same originals: removing the first leaves them
    other = body.model_copy(update={"specimen_id": "SP-OTHER"})
    await world.ingest.register(other)
    await world.ingest.remove(view.sample_id, "RH", "duplicate")
    assert set(world.reads.landing) == {"RH/run/R1.fq.gz", "RH/run/R2.fq.gz"}
    await world.ingest.remove(other.sample_id, "RH", "duplicate too")
    assert not world.reads.landing


async def test_another_hospitals_landing_key_is_answered_as_missing(world: World) -> None:
    r1, r2 = pair(3)
    world.reads.landing.update({"OUH/R1.fq.gz": r1, "OUH/R2.fq.gz": r2})
    body = registration(r1, r2)
    landing = {"landing_r1_key": "OUH/R1.fq.gz", "landing_r2_key": "OUH/R2.fq.gz"}
    body = body.model_copy(update={"reads": body.reads.model_copy(update=landing)})
    view, _ = await world.ingest.register(body)
    assert view.status is SampleStatus.REJECTED
    assert view.reasons == ["R1: landing object 'OUH/R1.fq.gz' not found"]
    assert set(world.reads.landing) == {"OUH/R1.fq.gz", "OUH/R2.fq.gz"}


async def test_the_sweep_releases_a_sample_once_its_reference_is_back(world: World) -> None:
    sample_id = await uploaded(world)
    world.references.known.clear()
    await consent(world, 1)
    assert world.samples.samples[sample_id].status is SampleStatus.AWAITING_CONSENT

    assert await world.ingest.sweep(60) == (0, 0)  # not stale yet: left alone
    world.samples.stale.add(sample_id)
    assert await world.ingest.sweep(60) == (0, 1)  # decided again, still no reference
    assert world.samples.samples[sample_id].status is SampleStatus.AWAITING_CONSENT
    world.references.known[REFERENCE.id] = REFERENCE
    notified = world.relay.notified
    assert await world.ingest.sweep(60) == (0, 1)
    assert world.samples.samples[sample_id].status is SampleStatus.RECEIVED
    assert world.relay.notified == notified + 1


async def test_the_sweep_leaves_a_held_research_sample_to_the_next_consent(world: World) -> None:
    sample_id = await uploaded(world, priority="research")
    await consent(world, 1, research_use=ResearchUse.OWN_TREATMENT_ONLY)
    world.samples.stale.add(sample_id)
    assert await world.ingest.sweep(60) == (0, 0)


async def test_the_sweep_finishes_a_check_that_died(world: World) -> None:
    r1, r2 = pair(4)
    view, _ = await world.ingest.register(registration(r1, r2))
    # both mates stored, the check never ran (the process died)
    for mate, data in (("R1", r1), ("R2", r2)):
        sha = hashlib.sha256(data).hexdigest()
        ref = world.reads.put_reads(reads_key(view.sample_id, mate), io.BytesIO(data), sha)
        assert await world.samples.take_reads(view.sample_id, mate, ref)
    world.samples.stale.add(view.sample_id)
    assert await world.ingest.sweep(60) == (1, 0)
    assert world.samples.samples[view.sample_id].status is SampleStatus.AWAITING_CONSENT


async def test_progress_never_goes_back(world: World) -> None:
    from genomebus_common.contracts.events import Stage, StageProgress

    sample_id = await uploaded(world)
    for done in (0, 2, 1, 2):
        event = StageProgress(
            correlation_id=sample_id,
            sample_id=sample_id,
            patient_pseudonym=pseudonym(),
            reference=REFERENCE,
            stage=Stage.ALIGNMENT,
            unit_kind="read_chunk",
            units_done=done,
            units_total=3,
        )
        await world.ingest.apply_progress(event, DELIVERY)
    assert (await world.ingest.get(sample_id, "RH")).progress == {
        "alignment": {"done": 2, "total": 3, "unit_kind": "read_chunk"}
    }


async def test_the_memory_transaction_rolls_back_as_postgres_does(world: World) -> None:
    """The core's tests lean on it: a failure half-way leaves neither the state move nor the
    event, so a use case that published before failing would show here as it would in SQL."""
    sample_id = await uploaded(world)
    before = world.samples.samples[sample_id]
    published = len(world.samples.outbox)
    with pytest.raises(RuntimeError, match="half-way"):
        async with world.samples.changes() as tx:
            assert await tx.remove(sample_id, ("test",)) is not None
            await tx.publish(
                SampleRemoved(
                    correlation_id=sample_id,
                    sample_id=sample_id,
                    patient_pseudonym=before.patient_pseudonym,
                    hospital_id=before.hospital_id,
                    reason="test",
                    requested_by="test",
                )
            )
            raise RuntimeError("half-way")
    assert world.samples.samples[sample_id] == before
    assert len(world.samples.outbox) == published
