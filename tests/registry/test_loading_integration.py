"""Loading called variants: COPY into staging, one transaction per sample, idempotent, and
consent re-checked under a lock at commit (a withdrawn patient's sample is quarantined)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable

import asyncpg
import pytest
from genomebus_common.errors import ChecksumMismatch, DataConflict
from genomebus_common.events import VariantsReady
from genomebus_registry.domain import InvalidVcf, variant_id
from genomebus_registry.handlers import RegistryHandlers
from genomebus_registry.loader import apply_consent

from .conftest import (
    REFERENCE,
    UploadedVcf,
    consent,
    delivery,
    pseudonym,
    removal,
    variants_called,
)

pytestmark = pytest.mark.integration

RECORDS = [(100, "A", "G", "0/1", 30, 99), (250, "C", "T", "1/1", 12, 40), (900, "GA", "G", "0/1", 8, None)]


async def snapshot(pool: asyncpg.Pool) -> dict[str, list]:
    """Everything a load may change, in a comparable form."""
    return {
        "variants": [tuple(r) for r in await pool.fetch("SELECT * FROM variants ORDER BY 1")],
        "genotypes": [tuple(r) for r in await pool.fetch("SELECT * FROM genotype_rows ORDER BY 1, 2")],
        "samples": [
            tuple(r) for r in await pool.fetch(
                "SELECT sample_id, quarantined, genotypes_loaded, variants_loaded FROM samples ORDER BY 1")
        ],
        "outbox": [tuple(r) for r in await pool.fetch("SELECT event_id, topic FROM genomebus_outbox ORDER BY id")],
    }


async def _until_blocked(pool: asyncpg.Pool, load: asyncio.Task[None]) -> int:
    """Wait until the load waits on a row lock (or ends); returns how many sessions wait."""
    waiting = 0
    for _ in range(200):
        waiting = await pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'"
        )
        if waiting or load.done():
            break
        await asyncio.sleep(0.05)
    return waiting


async def test_a_sample_loads_by_copy_once_however_often_it_is_delivered(
    handlers: RegistryHandlers, pool: asyncpg.Pool, upload_vcf: Callable[..., UploadedVcf]
) -> None:
    patient = pseudonym("loader-1")
    await handlers.consent_changed(consent(patient, 1), delivery())
    event = variants_called(upload_vcf(RECORDS), patient)

    await handlers.variants_called(event, delivery())
    first = await snapshot(pool)
    assert first["genotypes"] == [
        (event.sample_id, variant_id(REFERENCE.digest, "chrT", pos, ref, alt), count, dp, gq)
        for pos, ref, alt, count, dp, gq in sorted(
            (
                (100, "A", "G", 1, 30, 99),
                (250, "C", "T", 2, 12, 40),
                (900, "GA", "G", 1, 8, None),
            ),
            key=lambda r: variant_id(REFERENCE.digest, "chrT", r[0], r[1], r[2]),
        )
    ]
    assert len(first["variants"]) == 3 and first["samples"] == [(event.sample_id, False, 3, 3)]
    provenance = await pool.fetchrow("SELECT * FROM samples")
    assert provenance["patient_pseudonym"] == patient and provenance["hospital_id"] == "RH"
    assert provenance["reference_digest"] == REFERENCE.digest and provenance["consent_version"] == 1
    assert provenance["vcf_sha256"] == event.vcf.sha256 and provenance["bam_sha256"] == event.bam.sha256
    assert json.loads(provenance["tools"]) == [{"name": "bcftools", "version": "1.21", "command": None}]

    # The same event again (a redelivery), and the same VCF under a new event id (a republish).
    await handlers.variants_called(event, delivery())
    await handlers.variants_called(event.model_copy(update={"event_id": uuid.uuid4()}), delivery())
    assert await snapshot(pool) == first
    payloads = await pool.fetch("SELECT payload FROM genomebus_outbox")
    ready = [VariantsReady.model_validate_json(bytes(r["payload"])) for r in payloads]
    assert len(ready) == 1
    assert (ready[0].sample_id, ready[0].genotypes_loaded, ready[0].variants_loaded) == (event.sample_id, 3, 3)
    assert ready[0].correlation_id == event.correlation_id and ready[0].vcf == event.vcf

    # A second sample sharing variants adds genotypes but no duplicate variants.
    other = variants_called(upload_vcf(RECORDS[:2] + [(300, "T", "C", "0/1", 9, 9)]), patient)
    await handlers.variants_called(other, delivery())
    assert await pool.fetchval("SELECT count(*) FROM variants") == 4
    assert await pool.fetchval("SELECT variants_loaded FROM samples WHERE sample_id = $1", other.sample_id) == 1

    # The same sample id with another VCF is a conflict, not an overwrite.
    clash = variants_called(upload_vcf(RECORDS[:1]), patient, sample_id=event.sample_id)
    with pytest.raises(DataConflict):
        await handlers.variants_called(clash, delivery())


async def test_a_late_sample_of_a_withdrawn_patient_is_quarantined(
    handlers: RegistryHandlers, pool: asyncpg.Pool, upload_vcf: Callable[..., UploadedVcf]
) -> None:
    patient = pseudonym("loader-withdrawn")
    await handlers.consent_changed(consent(patient, 1), delivery())
    await handlers.consent_changed(consent(patient, 2, withdrawn=True), delivery())
    event = variants_called(upload_vcf(RECORDS), patient)
    await handlers.variants_called(event, delivery())

    sample = await pool.fetchrow("SELECT * FROM samples WHERE sample_id = $1", event.sample_id)
    assert sample["quarantined"] and "withdrawn" in sample["quarantine_reason"]
    assert sample["consent_version"] == 2 and sample["genotypes_loaded"] == 0
    assert await pool.fetchval("SELECT count(*) FROM genotypes") == 0
    assert await pool.fetchval("SELECT count(*) FROM variants") == 0
    assert await pool.fetchval("SELECT count(*) FROM genomebus_outbox") == 0
    assert await pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'sample.quarantined' AND $1 = ANY(patients)", patient
    ) == 1


async def test_a_withdrawal_committing_during_a_load_quarantines_it(
    handlers: RegistryHandlers, pool: asyncpg.Pool, upload_vcf: Callable[..., UploadedVcf]
) -> None:
    """The withdrawal holds the patient's row while the load runs: the load's check at commit
    waits for it and then sees the withdrawal, so nothing of the sample becomes visible."""
    patient = pseudonym("loader-race")
    await handlers.consent_changed(consent(patient, 1), delivery())
    event = variants_called(upload_vcf(RECORDS), patient)
    async with pool.acquire() as withdrawing:
        tx = withdrawing.transaction()
        await tx.start()
        assert await apply_consent(withdrawing, consent(patient, 2, withdrawn=True))
        load = asyncio.create_task(handlers.variants_called(event, delivery()))
        waiting = await _until_blocked(pool, load)
        assert waiting == 1 and not load.done(), "the load must wait for the consent change"
        await tx.commit()
    await load
    sample = await pool.fetchrow("SELECT * FROM samples WHERE sample_id = $1", event.sample_id)
    assert sample["quarantined"] and sample["consent_version"] == 2
    assert await pool.fetchval("SELECT count(*) FROM genotypes") == 0
    assert await pool.fetchval("SELECT count(*) FROM genomebus_outbox") == 0


async def test_a_consent_given_again_during_a_load_is_the_one_that_decides(
    handlers: RegistryHandlers, pool: asyncpg.Pool, upload_vcf: Callable[..., UploadedVcf]
) -> None:
    """The mirror case: withdrawn when the load starts, consenting again when it commits. The
    load decides from the consent in force at commit, so the sample loads."""
    other = pseudonym("loader-reconsent-other")  # loaded first: the sample's partition exists
    await handlers.consent_changed(consent(other, 1), delivery())
    await handlers.variants_called(variants_called(upload_vcf(RECORDS), other), delivery())
    patient = pseudonym("loader-reconsent")
    await handlers.consent_changed(consent(patient, 1), delivery())
    await handlers.consent_changed(consent(patient, 2, withdrawn=True), delivery())
    event = variants_called(upload_vcf(RECORDS), patient)
    async with pool.acquire() as consenting:
        tx = consenting.transaction()
        await tx.start()
        assert await apply_consent(consenting, consent(patient, 3))
        load = asyncio.create_task(handlers.variants_called(event, delivery()))
        waiting = await _until_blocked(pool, load)
        assert waiting == 1 and not load.done(), "the load must wait for the consent change"
        await tx.commit()
    await load
    sample = await pool.fetchrow("SELECT * FROM samples WHERE sample_id = $1", event.sample_id)
    assert not sample["quarantined"] and sample["consent_version"] == 3
    assert await pool.fetchval(
        "SELECT count(*) FROM genotype_rows WHERE sample_id = $1", event.sample_id) == len(RECORDS)
    assert await pool.fetchval("SELECT count(*) FROM genomebus_outbox") == 2


async def test_consent_versions_only_grow_and_every_change_is_audited(
    handlers: RegistryHandlers, pool: asyncpg.Pool
) -> None:
    patient = pseudonym("consent-order")
    v2 = consent(patient, 2, research=False)
    await handlers.consent_changed(v2, delivery())
    await handlers.consent_changed(consent(patient, 1), delivery())  # late, older
    await handlers.consent_changed(v2, delivery())  # redelivered
    row = await pool.fetchrow("SELECT * FROM consents WHERE patient_pseudonym = $1", patient)
    assert (row["version"], row["research_use"], row["withdrawn"]) == (2, "own_treatment_only", False)
    audit = await pool.fetch("SELECT * FROM audit_log WHERE action = 'consent.changed' ORDER BY id")
    assert [a["outcome"] for a in audit] == ["applied", "ignored_not_newer"]
    assert all(a["patients"] == [patient] and a["actor"] == "consent-desk" for a in audit)


async def test_a_broken_or_corrupted_vcf_leaves_nothing_behind(
    handlers: RegistryHandlers, pool: asyncpg.Pool, upload_vcf: Callable[..., UploadedVcf]
) -> None:
    patient = pseudonym("loader-broken")
    broken = variants_called(upload_vcf([(100, "A", "G,T", "1/2", 30, 99)]), patient)
    with pytest.raises(InvalidVcf):
        await handlers.variants_called(broken, delivery())
    good = upload_vcf(RECORDS)
    corrupted = variants_called(good, patient)
    corrupted = corrupted.model_copy(update={"vcf": good.vcf.model_copy(update={"sha256": "0" * 64})})
    with pytest.raises(ChecksumMismatch):
        await handlers.variants_called(corrupted, delivery())
    for table in ("samples", "genotypes", "variants", "genomebus_inbox", "genomebus_outbox"):
        assert await pool.fetchval(f"SELECT count(*) FROM {table}") == 0, table


async def test_a_sample_removed_before_its_variants_arrive_is_never_loaded(
    handlers: RegistryHandlers, pool: asyncpg.Pool, upload_vcf: Callable[..., UploadedVcf]
) -> None:
    patient = pseudonym("loader-removed-first")
    await handlers.consent_changed(consent(patient, 1), delivery())
    event = variants_called(upload_vcf(RECORDS), patient)
    await handlers.sample_removed(removal(event), delivery())  # overtakes variants.called
    await handlers.variants_called(event, delivery())

    assert await pool.fetchval("SELECT count(*) FROM genotype_rows") == 0
    assert await pool.fetchval("SELECT count(*) FROM genomebus_outbox") == 0, "no variants.ready"
    assert await pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'sample.load_refused' AND $1 = ANY(patients)",
        patient,
    ) == 1


async def test_a_vcf_called_again_for_a_removed_sample_is_refused_not_parked(
    handlers: RegistryHandlers, pool: asyncpg.Pool, upload_vcf: Callable[..., UploadedVcf]
) -> None:
    """Loaded, removed by the hospital, then variants called again (another VCF): refused and
    audited, not raised as a conflict that goes to the dead-letter topic."""
    patient = pseudonym("loader-removed-recalled")
    await handlers.consent_changed(consent(patient, 1), delivery())
    event = variants_called(upload_vcf(RECORDS), patient)
    await handlers.variants_called(event, delivery())
    await handlers.sample_removed(removal(event, "consent form lost"), delivery())
    recalled = variants_called(upload_vcf(RECORDS[:1]), patient, sample_id=event.sample_id)
    assert recalled.vcf.sha256 != event.vcf.sha256
    await handlers.variants_called(recalled, delivery())  # must not raise DataConflict

    assert await pool.fetchval(
        "SELECT count(*) FROM genotypes g JOIN samples s USING (sample_no) WHERE s.sample_id = $1",
        event.sample_id) == 0
    assert await pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'sample.load_refused' AND $1 = ANY(patients)",
        patient,
    ) == 1

    # The hospital sends the removal again (a new event): audited as already removed.
    await handlers.sample_removed(removal(event, "consent form lost"), delivery())
    outcomes = [r["outcome"] for r in await pool.fetch(
        "SELECT outcome FROM audit_log WHERE action = 'sample.removed' AND $1 = ANY(patients) "
        "ORDER BY id", patient)]
    assert outcomes == ["removed", "already_removed"]


async def test_making_a_partition_does_not_wait_for_loads_or_block_queries(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as loading, pool.acquire() as maker:
        tx = loading.transaction()
        await tx.start()
        await loading.execute("LOCK TABLE genotypes IN ROW EXCLUSIVE MODE")  # what a load holds
        await maker.execute("SET lock_timeout = '3s'")
        try:
            assert await maker.fetchval("SELECT registry_ensure_genotypes_partition(64 * 40)")
        finally:
            await tx.rollback()
    names = {r["relname"] for r in await pool.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'genotypes'::regclass")}
    assert {"genotypes_b40", "genotypes_b41"} <= names, "its block, and the next one ahead"
    assert not await pool.fetchval("SELECT registry_ensure_genotypes_partition(64 * 40 + 5)")


async def test_two_loads_needing_the_same_new_partition_both_go_on(pool: asyncpg.Pool) -> None:
    """At every 64-sample boundary two loads may draw numbers in the same new block: the one
    that waited for the other must find the partition made, not fail (its load would be
    dead-lettered)."""
    async with pool.acquire() as first, pool.acquire() as second:
        tx = first.transaction()
        await tx.start()
        assert await first.fetchval("SELECT registry_ensure_genotypes_partition(64 * 50)")
        waiting = asyncio.create_task(
            second.fetchval("SELECT registry_ensure_genotypes_partition(64 * 50 + 1)"))
        await asyncio.sleep(0.3)  # the second is waiting for the first's lock now
        assert not waiting.done()
        await tx.commit()
        assert await asyncio.wait_for(waiting, 10) is False, "made by the other: not an error"
    names = {r["relname"] for r in await pool.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'genotypes'::regclass")}
    assert {"genotypes_b50", "genotypes_b51"} <= names
