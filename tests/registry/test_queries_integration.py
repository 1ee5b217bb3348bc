"""Research answers come from the consent-aware views: restricted, withdrawn and unknown-consent
patients never count, a withdrawal is in force for the very next query, small counts are masked,
and every question lands in an append-only audit log."""

from __future__ import annotations

from collections.abc import Callable

import asyncpg
import pytest
from genomebus_registry.handlers import RegistryHandlers
from genomebus_registry.queries import Queries

from .conftest import RESEARCHER, UploadedVcf, consent, delivery, pseudonym, variants_called

pytestmark = pytest.mark.integration

SHARED = (1000, "A", "G", "0/1", 30, 99)  # carried by everyone below
HOM = (2000, "C", "T", "1/1", 30, 99)  # carried by everyone below, two copies
HIDDEN = (3000, "G", "C", "0/1", 30, 99)  # carried only by patients who may not be counted


async def cohort(handlers: RegistryHandlers, upload_vcf: Callable[..., UploadedVcf]) -> dict[str, list[str]]:
    """Six research-consenting patients and four who must never be counted."""
    common = upload_vcf([SHARED, HOM])
    hidden = upload_vcf([SHARED, HOM, HIDDEN])
    groups = {
        "allowed": [pseudonym(f"q-allowed-{i}") for i in range(6)],
        "restricted": [pseudonym("q-restricted")],
        "withdrawn": [pseudonym("q-withdrawn")],
        "no_analysis": [pseudonym("q-no-analysis")],
        "unknown": [pseudonym("q-unknown")],
    }
    for patient in groups["allowed"]:
        await handlers.consent_changed(consent(patient, 1), delivery())
        await handlers.variants_called(variants_called(common, patient), delivery())
    (restricted,) = groups["restricted"]
    await handlers.consent_changed(consent(restricted, 1, research=False), delivery())
    (withdrawn,) = groups["withdrawn"]
    await handlers.consent_changed(consent(withdrawn, 1), delivery())
    (no_analysis,) = groups["no_analysis"]
    (unknown,) = groups["unknown"]
    for patient in (restricted, withdrawn, unknown):
        await handlers.variants_called(variants_called(hidden, patient), delivery())
    # Loaded while allowed, withdrawn afterwards: the genotypes stay, but must not count.
    await handlers.consent_changed(consent(withdrawn, 2, withdrawn=True), delivery())
    # Loaded with no consent on record; the consent that arrives later denies analysis.
    await handlers.variants_called(variants_called(hidden, no_analysis), delivery())
    await handlers.consent_changed(consent(no_analysis, 1, analysis=False), delivery())
    return groups


async def test_research_answers_count_only_consenting_patients(
    handlers: RegistryHandlers, queries: Queries, pool: asyncpg.Pool, upload_vcf: Callable[..., UploadedVcf]
) -> None:
    groups = await cohort(handlers, upload_vcf)
    # Their genotypes are really in the table: only the views keep them out.
    assert await pool.fetchval("SELECT count(DISTINCT sample_id) FROM genotype_rows") == 10

    answer = await queries.allele(RESEARCHER, "chrT", 1000, "A", "G")
    (result,) = answer.results
    assert (result.carriers, result.allele_count, result.allele_number, result.allele_frequency) == (6, 6, 12, 0.5)
    hom = (await queries.allele(RESEARCHER, "chrT", 2000, "C", "T")).results[0]
    assert (hom.carriers, hom.allele_count, hom.allele_frequency) == (6, 12, 1.0)

    # A variant only the excluded patients carry: masked zero in a lookup, absent from a region.
    (hidden,) = (await queries.allele(RESEARCHER, "chrT", 3000, "G", "C")).results
    assert (hidden.carriers, hidden.allele_count, hidden.allele_frequency) == ("<5", "<5", None)
    region = await queries.region(RESEARCHER, "chrT", 1, 100_000)
    assert [(v.pos, v.carriers, v.allele_count) for v in region.variants] == [(1000, 6, 6), (2000, 6, 12)]

    # Only consenting carriers are recorded as touched by the research questions.
    touched = await pool.fetch(
        "SELECT patients FROM audit_log WHERE action LIKE 'research.%' ORDER BY id"
    )
    assert {p for row in touched for p in row["patients"]} == set(groups["allowed"])


async def test_a_withdrawal_takes_effect_on_the_very_next_query(
    handlers: RegistryHandlers, queries: Queries, upload_vcf: Callable[..., UploadedVcf]
) -> None:
    groups = await cohort(handlers, upload_vcf)
    first, second = groups["allowed"][:2]
    assert (await queries.allele(RESEARCHER, "chrT", 1000, "A", "G")).results[0].carriers == 6

    await handlers.consent_changed(consent(first, 2, withdrawn=True), delivery())
    after = (await queries.allele(RESEARCHER, "chrT", 1000, "A", "G")).results[0]
    assert (after.carriers, after.allele_number, after.allele_frequency) == (5, 10, 0.5)

    # Restricting research (not a withdrawal) also removes the patient from research at once,
    # and then fewer than five remain: counts masked, frequency withheld.
    await handlers.consent_changed(consent(second, 2, research=False), delivery())
    masked = (await queries.allele(RESEARCHER, "chrT", 1000, "A", "G")).results[0]
    # Four patients remain: not even the allele number (8) may say so; and eight alleles in
    # "<5" carriers would say four homozygotes, so the allele count goes with the carriers.
    assert (masked.carriers, masked.allele_count, masked.allele_number, masked.allele_frequency) == (
        "<5", "<5", "<10", None)
    region = await queries.region(RESEARCHER, "chrT", 900, 2100)
    assert [(v.pos, v.carriers, v.allele_count) for v in region.variants] == [
        (1000, "<5", "<5"), (2000, "<5", "<5")]


async def test_the_audit_log_records_who_why_and_whom_and_cannot_be_changed(
    handlers: RegistryHandlers, queries: Queries, pool: asyncpg.Pool, upload_vcf: Callable[..., UploadedVcf]
) -> None:
    groups = await cohort(handlers, upload_vcf)
    await queries.region(RESEARCHER, "chrT", 900, 1100)
    row = await pool.fetchrow("SELECT * FROM audit_log WHERE action = 'research.region'")
    assert (row["actor"], row["role"], row["purpose"], row["outcome"]) == (
        "researcher", "research", "allele frequency study", "answered")
    assert sorted(row["patients"]) == sorted(groups["allowed"]) and row["at"] is not None
    consent_rows = await pool.fetchval("SELECT count(*) FROM audit_log WHERE action = 'consent.changed'")
    assert consent_rows == 10  # every consent event of the cohort

    for statement in (
        "UPDATE audit_log SET purpose = 'nothing to see' WHERE id = $1",
        "DELETE FROM audit_log WHERE id = $1",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await pool.execute(statement, row["id"])
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await pool.execute("TRUNCATE audit_log")
    assert await pool.fetchval("SELECT purpose FROM audit_log WHERE id = $1", row["id"]) == "allele frequency study"


async def test_a_removed_sample_leaves_the_counts_at_once(
    handlers: RegistryHandlers, queries: Queries, pool: asyncpg.Pool, upload_vcf: Callable[..., UploadedVcf]
) -> None:
    from genomebus_common.events import SampleRemoved

    await cohort(handlers, upload_vcf)
    before = (await queries.allele(RESEARCHER, "chrT", 1000, "A", "G")).results[0]
    gone = await pool.fetchrow(
        "SELECT s.sample_id, s.patient_pseudonym FROM research_samples s ORDER BY s.sample_id LIMIT 1"
    )
    removal = SampleRemoved(
        correlation_id=gone["sample_id"],
        sample_id=gone["sample_id"],
        patient_pseudonym=gone["patient_pseudonym"],
        hospital_id="RH",
        reason="sample mix-up reported by the lab",
        requested_by="RH",
    )
    await handlers.sample_removed(removal, delivery())
    await handlers.sample_removed(removal, delivery())  # a redelivery changes nothing
    after = (await queries.allele(RESEARCHER, "chrT", 1000, "A", "G")).results[0]

    assert (before.carriers, after.carriers) == (6, 5)
    assert after.allele_number == before.allele_number - 2, "the cohort shrinks too"
    assert await pool.fetchval("SELECT count(*) FROM genotype_rows WHERE sample_id = $1", gone["sample_id"]) == 0
    row = await pool.fetchrow("SELECT removed_at, removal_reason FROM samples WHERE sample_id = $1", gone["sample_id"])
    assert row["removed_at"] is not None and "mix-up" in row["removal_reason"]
    audits = await pool.fetchval("SELECT count(*) FROM audit_log WHERE action = 'sample.removed'")
    assert audits == 1


async def test_a_patient_sequenced_twice_counts_once_and_the_counts_follow_every_change(
    handlers: RegistryHandlers, queries: Queries, pool: asyncpg.Pool, upload_vcf: Callable[..., UploadedVcf]
) -> None:
    """Counts are kept per variant, not counted per question: a second sample of a patient adds
    only what it carries beyond the first, its removal takes exactly that away again, and a
    withdrawal takes the patient out at once; the kept counts always equal a recount."""
    from genomebus_common.events import SampleRemoved

    patients = [pseudonym(f"twice-{i}") for i in range(6)]
    het = upload_vcf([SHARED])
    for patient in patients:
        await handlers.consent_changed(consent(patient, 1), delivery())
        await handlers.variants_called(variants_called(het, patient), delivery())
    twice = patients[0]
    second = variants_called(upload_vcf([(1000, "A", "G", "1/1", 30, 99), HOM]), twice)
    await handlers.variants_called(second, delivery())

    async def counts(pos: int, ref: str, alt: str) -> tuple[object, ...]:
        (r,) = (await queries.allele(RESEARCHER, "chrT", pos, ref, alt)).results
        return r.carriers, r.allele_count, r.allele_number

    async def recount_changes_nothing() -> bool:
        columns = "variant_no, carriers, allele_count, research_carriers, research_allele_count"
        async with pool.acquire() as conn, conn.transaction():
            kept = await conn.fetch(f"SELECT {columns} FROM variants ORDER BY 1")
            await conn.execute("SELECT registry_recount_all()")
            return kept == await conn.fetch(f"SELECT {columns} FROM variants ORDER BY 1")

    # The patient counts once, with two copies (the larger count), and the cohort does not grow.
    assert await counts(1000, "A", "G") == (6, 7, 12)
    assert await counts(2000, "C", "T") == ("<5", "<5", 12)
    assert await recount_changes_nothing()

    removal = SampleRemoved(
        correlation_id=second.sample_id, sample_id=second.sample_id, patient_pseudonym=twice,
        hospital_id="RH", reason="sample swap", requested_by="RH",
    )
    await handlers.sample_removed(removal, delivery())
    assert await counts(1000, "A", "G") == (6, 6, 12)
    assert await pool.fetchval(
        "SELECT research_carriers FROM variants WHERE pos = 2000") == 0, "its only carrier left"
    assert await recount_changes_nothing()

    await handlers.consent_changed(consent(twice, 2, withdrawn=True), delivery())
    assert await counts(1000, "A", "G") == (5, 5, 10)
    # The unrestricted counts (never shown) still hold the withdrawn patient's data.
    assert await pool.fetchval("SELECT carriers FROM variants WHERE pos = 1000") == 6
    assert await recount_changes_nothing()


async def test_a_region_comes_a_page_at_a_time_and_the_pages_add_up_to_the_whole(
    handlers: RegistryHandlers, queries: Queries, pool: asyncpg.Pool, upload_vcf: Callable[..., UploadedVcf]
) -> None:
    from genomebus_registry.domain import RegionCursor

    from .conftest import REFERENCE

    # Two references with a contig of the same name: pages go reference by reference.
    other = REFERENCE.model_copy(update={"id": "toy-ref-2", "digest": "SQC." + "C" * 32})
    for reference, positions in ((REFERENCE, range(100, 160, 10)), (other, range(105, 125, 10))):
        vcf = upload_vcf([(pos, "A", alt, "0/1", 30, 99) for pos in positions for alt in ("C", "G")])
        for i in range(5):  # five carriers, so nothing is masked away
            patient = pseudonym(f"q-paged-{reference.id}-{i}")
            await handlers.consent_changed(consent(patient, 1), delivery())
            await handlers.variants_called(variants_called(vcf, patient, reference=reference), delivery())

    whole = await queries.region(RESEARCHER, "chrT", 1, 1000, limit=1000)
    assert whole.next_cursor is None and len(whole.variants) == 16
    assert [(v.reference_digest, v.pos, v.alt) for v in whole.variants] == sorted(
        (v.reference_digest, v.pos, v.alt) for v in whole.variants)
    pages, after = [], None
    while True:
        page = await queries.region(RESEARCHER, "chrT", 1, 1000, limit=5, after=after)
        pages.append(page.variants)
        if page.next_cursor is None:
            break
        after = RegionCursor.decode(page.next_cursor)
    assert [len(p) for p in pages] == [5, 5, 5, 1]
    assert [v for p in pages for v in p] == whole.variants, "same rows, same order, none twice"
    # Each page's audit row names the patients whose calls it counted: the third page ends the
    # first reference (pos 150, 150) and starts the second (105, 105, 115), so it names both's.
    audited = await pool.fetch(
        "SELECT patients FROM audit_log WHERE action = 'research.region' ORDER BY id DESC LIMIT 4"
    )
    assert [len(row["patients"]) for row in reversed(audited)] == [5, 5, 10, 5]
