"""Loading called variants: COPY into staging, one transaction per sample, idempotent, and
consent re-checked under a lock at commit (a withdrawn patient's sample is quarantined)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable

import asyncpg
import pytest

from genomebus_common.contracts.errors import ChecksumMismatch, DataConflict
from genomebus_common.contracts.events import VariantsReady
from genomebus_registry.adapters.postgres import consent as consent_sql
from genomebus_registry.adapters.postgres import counts, loader
from genomebus_registry.adapters.postgres.consent import apply_consent
from genomebus_registry.adapters.postgres.handlers import RegistryHandlers
from genomebus_registry.core.vcf import InvalidVcf

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

RECORDS = [
    (100, "A", "G", "0/1", 30, 99),
    (250, "C", "T", "1/1", 12, 40),
    (900, "GA", "G", "0/1", 8, None),
]


async def snapshot(pool: asyncpg.Pool) -> dict[str, list]:
    """Everything a load may change, in a comparable form."""
    return {
        "alleles": [
            tuple(r) for r in await pool.fetch("SELECT * FROM variant_alleles ORDER BY 1, 2, 3")
        ],
        "genotypes": [
            tuple(r)
            for r in await pool.fetch(
                "SELECT sample_id, chrom, pos, ref, alt, alt_count, dp, gq FROM genotype_rows "
                "ORDER BY 1, 2, 3, 4, 5"
            )
        ],
        "pending": [
            tuple(r)
            for r in await pool.fetch(
                "SELECT patient_pseudonym, samples, w_all, w_research FROM pending_adjustments "
                "ORDER BY id"
            )
        ],
        "samples": [
            tuple(r)
            for r in await pool.fetch(
                "SELECT sample_id, quarantined, genotypes_loaded, variants_loaded FROM samples "
                "ORDER BY 1"
            )
        ],
        "outbox": [
            tuple(r)
            for r in await pool.fetch("SELECT event_id, topic FROM genomebus_outbox ORDER BY id")
        ],
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
        (event.sample_id, "chrT", 100, "A", "G", 1, 30, 99),
        (event.sample_id, "chrT", 250, "C", "T", 2, 12, 40),
        (event.sample_id, "chrT", 900, "GA", "G", 1, 8, None),
    ]
    # The SNVs need no dictionary entry; the deletion gets the first code after them.
    assert [a[1:] for a in first["alleles"]] == [(900, 16, "GA", "G")]
    assert first["samples"] == [(event.sample_id, False, 3, 3)]
    assert first["pending"] == [(patient, [1], 1, 1)], "one entry: the patient's contribution"
    provenance = await pool.fetchrow("SELECT * FROM samples")
    assert provenance["patient_pseudonym"] == patient and provenance["hospital_id"] == "RH"
    assert provenance["reference_digest"] == REFERENCE.digest and provenance["consent_version"] == 1
    assert (
        provenance["vcf_sha256"] == event.vcf.sha256
        and provenance["bam_sha256"] == event.bam.sha256
    )
    assert json.loads(provenance["tools"]) == [
        {"name": "bcftools", "version": "1.21", "command": None}
    ]

    # The same event again (a redelivery), and the same VCF under a new event id (a republish).
    await handlers.variants_called(event, delivery())
    await handlers.variants_called(event.model_copy(update={"event_id": uuid.uuid4()}), delivery())
    assert await snapshot(pool) == first
    payloads = await pool.fetch("SELECT payload FROM genomebus_outbox")
    ready = [VariantsReady.model_validate_json(bytes(r["payload"])) for r in payloads]
    assert len(ready) == 1
    assert (ready[0].sample_id, ready[0].genotypes_loaded, ready[0].variants_loaded) == (
        event.sample_id,
        3,
        3,
    )
    assert ready[0].correlation_id == event.correlation_id and ready[0].vcf == event.vcf

    # A second sample sharing variants adds genotypes but no duplicate variants.
    other = variants_called(upload_vcf(RECORDS[:2] + [(300, "T", "C", "0/1", 9, 9)]), patient)
    await handlers.variants_called(other, delivery())
    assert await pool.fetchval("SELECT count(*) FROM variant_alleles") == 1, "the deletion, once"
    assert (
        await pool.fetchval(
            "SELECT variants_loaded FROM samples WHERE sample_id = $1", other.sample_id
        )
        == 3
    )
    # The patient's contribution goes from the first sample to both, by two entries.
    assert [
        tuple(r)
        for r in await pool.fetch(
            "SELECT samples, w_all, w_research FROM pending_adjustments ORDER BY id"
        )
    ] == [([1], 1, 1), ([1], -1, -1), ([1, 3], 1, 1)]

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
    assert await pool.fetchval("SELECT count(*) FROM genotype_blocks") == 0
    assert await pool.fetchval("SELECT count(*) FROM pending_adjustments") == 0
    assert await pool.fetchval("SELECT count(*) FROM genomebus_outbox") == 0
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM audit_log WHERE action = 'sample.quarantined' AND $1 = "
            "ANY(patients)",
            patient,
        )
        == 1
    )


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
    assert await pool.fetchval("SELECT count(*) FROM genotype_blocks") == 0, "its blocks taken back"
    assert await pool.fetchval("SELECT count(*) FROM pending_adjustments") == 0
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
        "SELECT count(*) FROM genotype_rows WHERE sample_id = $1", event.sample_id
    ) == len(RECORDS)
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
    assert (row["version"], row["research_use"], row["withdrawn"]) == (
        2,
        "own_treatment_only",
        False,
    )
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
    corrupted = corrupted.model_copy(
        update={"vcf": good.vcf.model_copy(update={"sha256": "0" * 64})}
    )
    with pytest.raises(ChecksumMismatch):
        await handlers.variants_called(corrupted, delivery())
    for table in (
        "samples",
        "genotype_blocks",
        "pending_adjustments",
        "genomebus_inbox",
        "genomebus_outbox",
    ):
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
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM audit_log WHERE action = 'sample.load_refused' AND $1 = "
            "ANY(patients)",
            patient,
        )
        == 1
    )


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

    await counts.fold(pool)  # the removed sample's blocks go with the fold
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM genotype_blocks g JOIN samples s USING (sample_no) WHERE "
            "s.sample_id = $1",
            event.sample_id,
        )
        == 0
    )
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM audit_log WHERE action = 'sample.load_refused' AND $1 = "
            "ANY(patients)",
            patient,
        )
        == 1
    )

    # The hospital sends the removal again (a new event): audited as already removed.
    await handlers.sample_removed(removal(event, "consent form lost"), delivery())
    outcomes = [
        r["outcome"]
        for r in await pool.fetch(
            "SELECT outcome FROM audit_log WHERE action = 'sample.removed' AND $1 = ANY(patients) "
            "ORDER BY id",
            patient,
        )
    ]
    assert outcomes == ["removed", "already_removed"]


async def test_a_load_waits_for_no_other_patient_and_a_withdrawal_for_no_load(
    handlers: RegistryHandlers, pool: asyncpg.Pool, upload_vcf: Callable[..., UploadedVcf]
) -> None:
    """A load holds nothing another patient's change needs: while one patient's load has written
    its blocks and not committed, another patient's withdrawal commits at once, and so does a
    fold (each would wait for the load's commit if they shared a lock)."""
    loading, withdrawing = pseudonym("concurrent-load"), pseudonym("concurrent-withdraw")
    for patient in (loading, withdrawing):
        await handlers.consent_changed(consent(patient, 1), delivery())
    await handlers.variants_called(variants_called(upload_vcf(RECORDS), withdrawing), delivery())
    event = variants_called(upload_vcf(RECORDS), loading)
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        # What a load holds at its longest: the blocks written, the patient's row locked.
        sample_no = await loader.next_sample_no(conn)
        await consent_sql.read_consent(conn, loading, lock=True)
        await conn.execute(
            "INSERT INTO genotype_blocks VALUES ($1, 1, 0, '{4}', '{30}', '{99}')", sample_no
        )
        await conn.execute(
            "INSERT INTO pending_adjustments (patient_pseudonym, reference_digest, samples, w_all,"
            " w_research) VALUES ($1, $2, ARRAY[$3::int], 1, 1)",
            loading,
            REFERENCE.digest,
            sample_no,
        )
        try:
            await asyncio.wait_for(
                handlers.consent_changed(consent(withdrawing, 2, withdrawn=True), delivery()), 5
            )
            assert (await asyncio.wait_for(counts.fold(pool), 5)).entries >= 1
        finally:
            await tx.rollback()
    assert await pool.fetchval(
        "SELECT withdrawn FROM consents WHERE patient_pseudonym = $1", withdrawing
    )
    await handlers.variants_called(event, delivery())
    assert await pool.fetchval(
        "SELECT count(*) FROM genotype_rows WHERE sample_id = $1", event.sample_id
    ) == len(RECORDS)
