"""Research answers come from the consent-aware views: restricted, withdrawn and unknown-consent
patients never count, a withdrawal is in force for the very next query, small groups of patients
are withheld (disclosure.py), and every question lands in an append-only audit log.

The cohorts are large enough that the counts these tests are about are shown exactly: at least
five carriers, five non-carriers, five heterozygotes and five homozygotes, and still so after the
one withdrawal or removal a test makes (tests/security holds the disclosure rule's own tests)."""

from __future__ import annotations

from collections.abc import Callable

import asyncpg
import pytest

from genomebus_registry.adapters.postgres import counts as counts_adapter
from genomebus_registry.adapters.postgres.handlers import RegistryHandlers
from genomebus_registry.adapters.postgres.queries import Queries

from .conftest import RESEARCHER, UploadedVcf, consent, delivery, pseudonym, variants_called

pytestmark = pytest.mark.integration

SHARED = (1000, "A", "G", "0/1", 30, 99)  # one copy: the "het" group and every excluded patient
SHARED_TWICE = (1000, "A", "G", "1/1", 30, 99)  # two copies: the "hom" group
HOM = (2000, "C", "T", "1/1", 30, 99)  # two copies: the "het" group and every excluded patient
HIDDEN = (3000, "G", "C", "0/1", 30, 99)  # carried only by patients who may not be counted
FAR = (200_000, "T", "A", "0/1", 30, 99)  # the "others" group: outside every region asked for


async def cohort(
    handlers: RegistryHandlers, upload_vcf: Callable[..., UploadedVcf]
) -> dict[str, list[str]]:
    """Eighteen research-consenting patients (six carry SHARED once and HOM twice, six carry
    SHARED twice, six carry neither) and four who must never be counted."""
    vcfs = {
        "het": upload_vcf([SHARED, HOM]),
        "hom": upload_vcf([SHARED_TWICE]),
        "others": upload_vcf([FAR]),
    }
    hidden = upload_vcf([SHARED, HOM, HIDDEN])
    groups = {
        **{group: [pseudonym(f"q-{group}-{i}") for i in range(6)] for group in vcfs},
        "restricted": [pseudonym("q-restricted")],
        "withdrawn": [pseudonym("q-withdrawn")],
        "no_analysis": [pseudonym("q-no-analysis")],
        "unknown": [pseudonym("q-unknown")],
    }
    groups["allowed"] = [p for group in vcfs for p in groups[group]]
    for group, vcf in vcfs.items():
        for patient in groups[group]:
            await handlers.consent_changed(consent(patient, 1), delivery())
            await handlers.variants_called(variants_called(vcf, patient), delivery())
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
    handlers: RegistryHandlers,
    queries: Queries,
    pool: asyncpg.Pool,
    upload_vcf: Callable[..., UploadedVcf],
) -> None:
    groups = await cohort(handlers, upload_vcf)
    # Their genotypes are really in the table: only the views keep them out.
    assert await pool.fetchval("SELECT count(DISTINCT sample_id) FROM genotype_rows") == 22

    # Twelve carriers of 18 (the four excluded would make 16 of 22), six with two copies.
    answer = await queries.allele(RESEARCHER, "chrT", 1000, "A", "G")
    (result,) = answer.results
    assert (
        result.carriers,
        result.allele_count,
        result.allele_number,
        result.allele_frequency,
    ) == (12, 18, 36, 0.5)
    # Six carriers, all homozygous: no heterozygote, so the allele count would say "all six
    # carry two copies"; it is withheld (a range), the carriers are not.
    hom = (await queries.allele(RESEARCHER, "chrT", 2000, "C", "T")).results[0]
    assert (hom.carriers, hom.allele_count, hom.allele_frequency) == (6, "6-12", None)

    # A variant only the excluded patients carry: answered like any rare one, absent from a region.
    (hidden,) = (await queries.allele(RESEARCHER, "chrT", 3000, "G", "C")).results
    assert (hidden.carriers, hidden.allele_count, hidden.allele_frequency) == ("<5", "<10", None)
    region = await queries.region(RESEARCHER, "chrT", 1, 100_000)
    assert [(v.pos, v.carriers, v.allele_count) for v in region.variants] == [
        (1000, 12, 18),
        (2000, 6, "6-12"),
    ]

    # Only consenting carriers are recorded as touched by the research questions.
    touched = await pool.fetch(
        "SELECT patients FROM audit_log WHERE action LIKE 'research.%' ORDER BY id"
    )
    assert {p for row in touched for p in row["patients"]} == set(groups["het"] + groups["hom"])


async def test_a_withdrawal_takes_effect_on_the_very_next_query(
    handlers: RegistryHandlers, queries: Queries, upload_vcf: Callable[..., UploadedVcf]
) -> None:
    groups = await cohort(handlers, upload_vcf)
    first, second = groups["het"][:2]
    assert (await queries.allele(RESEARCHER, "chrT", 1000, "A", "G")).results[0].carriers == 12

    await handlers.consent_changed(consent(first, 2, withdrawn=True), delivery())
    after = (await queries.allele(RESEARCHER, "chrT", 1000, "A", "G")).results[0]
    assert (after.carriers, after.allele_count, after.allele_number, after.allele_frequency) == (
        11,
        17,
        34,
        0.5,
    )

    # Restricting research (not a withdrawal) also removes the patient from research at once,
    # and then four heterozygotes remain: the allele count (16) minus the carriers (10) would
    # say so, so the count and the frequency are withheld.
    await handlers.consent_changed(consent(second, 2, research=False), delivery())
    masked = (await queries.allele(RESEARCHER, "chrT", 1000, "A", "G")).results[0]
    assert (
        masked.carriers,
        masked.allele_count,
        masked.allele_number,
        masked.allele_frequency,
    ) == (10, "10-20", 32, None)
    # HOM's carriers are down to four: it leaves the region answer altogether.
    region = await queries.region(RESEARCHER, "chrT", 900, 2100)
    assert [(v.pos, v.carriers, v.allele_count) for v in region.variants] == [(1000, 10, "10-20")]


async def test_the_audit_log_records_who_why_and_whom_and_cannot_be_changed(
    handlers: RegistryHandlers,
    queries: Queries,
    pool: asyncpg.Pool,
    upload_vcf: Callable[..., UploadedVcf],
) -> None:
    groups = await cohort(handlers, upload_vcf)
    await queries.region(RESEARCHER, "chrT", 900, 1100)
    row = await pool.fetchrow("SELECT * FROM audit_log WHERE action = 'research.region'")
    assert (row["actor"], row["role"], row["purpose"], row["outcome"]) == (
        "researcher",
        "research",
        "allele frequency study",
        "answered",
    )
    assert (
        sorted(row["patients"]) == sorted(groups["het"] + groups["hom"]) and row["at"] is not None
    )
    consent_rows = await pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'consent.changed'"
    )
    assert consent_rows == 22  # every consent event of the cohort

    for statement in (
        "UPDATE audit_log SET purpose = 'nothing to see' WHERE id = $1",
        "DELETE FROM audit_log WHERE id = $1",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await pool.execute(statement, row["id"])
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await pool.execute("TRUNCATE audit_log")
    assert (
        await pool.fetchval("SELECT purpose FROM audit_log WHERE id = $1", row["id"])
        == "allele frequency study"
    )


async def test_a_removed_sample_leaves_the_counts_at_once(
    handlers: RegistryHandlers,
    queries: Queries,
    pool: asyncpg.Pool,
    upload_vcf: Callable[..., UploadedVcf],
) -> None:
    from genomebus_common.contracts.events import SampleRemoved

    groups = await cohort(handlers, upload_vcf)
    before = (await queries.allele(RESEARCHER, "chrT", 1000, "A", "G")).results[0]
    gone = await pool.fetchrow(
        "SELECT s.sample_id, s.patient_pseudonym FROM research_samples s WHERE patient_pseudonym "
        "= $1",
        groups["het"][0],
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

    assert (before.carriers, after.carriers) == (12, 11)
    assert after.allele_number == before.allele_number - 2, "the cohort shrinks too"
    # Out of every answer at commit; its genotypes are deleted by the next fold.
    await counts_adapter.fold(pool)
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM genotype_rows WHERE sample_id = $1", gone["sample_id"]
        )
        == 0
    )
    row = await pool.fetchrow(
        "SELECT removed_at, removal_reason FROM samples WHERE sample_id = $1", gone["sample_id"]
    )
    assert row["removed_at"] is not None and "mix-up" in row["removal_reason"]
    audits = await pool.fetchval("SELECT count(*) FROM audit_log WHERE action = 'sample.removed'")
    assert audits == 1


async def test_a_patient_sequenced_twice_counts_once_and_the_counts_follow_every_change(
    handlers: RegistryHandlers,
    queries: Queries,
    pool: asyncpg.Pool,
    upload_vcf: Callable[..., UploadedVcf],
) -> None:
    """Counts are kept per variant, not counted per question: a second sample of a patient adds
    only what it carries beyond the first, its removal takes exactly that away again, and a
    withdrawal takes the patient out at once; the kept counts always equal a recount."""
    from genomebus_common.contracts.events import SampleRemoved

    # Six carry SHARED once, five twice, five carry neither: every group of SHARED five or more.
    patients = [pseudonym(f"twice-{i}") for i in range(16)]
    het, hom, far = upload_vcf([SHARED]), upload_vcf([SHARED_TWICE]), upload_vcf([FAR])
    for i, patient in enumerate(patients):
        await handlers.consent_changed(consent(patient, 1), delivery())
        vcf = het if i < 6 else hom if i < 11 else far
        await handlers.variants_called(variants_called(vcf, patient), delivery())
    twice = patients[0]

    async def counts(pos: int, ref: str, alt: str) -> tuple[object, ...]:
        (r,) = (await queries.allele(RESEARCHER, "chrT", pos, ref, alt)).results
        return r.carriers, r.allele_count, r.allele_number

    async def recount_changes_nothing() -> bool:
        """Stored + pending equals a recount from the blocks, before and after a fold."""
        exact = []
        for _ in range(2):
            async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
                kept = await conn.fetch("SELECT * FROM registry_counts_now() ORDER BY 1")
                exact.append(
                    kept == await conn.fetch("SELECT * FROM registry_recount() ORDER BY 1")
                )
            await counts_adapter.fold(pool)
        return all(exact)

    async def kept(pos: int, columns: str) -> int:
        return await pool.fetchval(
            f"SELECT coalesce(sum({columns}), 0) FROM registry_counts_now() "
            "WHERE (key >> 11) & 4294967295 = $1",
            pos,
        )

    assert await counts(1000, "A", "G") == (11, 16, 32)
    assert await recount_changes_nothing()
    # The patient counts once, with two copies (the larger count), and the cohort does not grow.
    second = variants_called(upload_vcf([(1000, "A", "G", "1/1", 30, 99), HOM]), twice)
    await handlers.variants_called(second, delivery())
    assert await counts(1000, "A", "G") == (11, 17, 32)
    assert await counts(2000, "C", "T") == ("<5", "<10", 32)  # one carrier: withheld...
    assert await kept(2000, "research_het + research_hom") == 1  # ...but kept
    assert await recount_changes_nothing()

    removal = SampleRemoved(
        correlation_id=second.sample_id,
        sample_id=second.sample_id,
        patient_pseudonym=twice,
        hospital_id="RH",
        reason="sample swap",
        requested_by="RH",
    )
    await handlers.sample_removed(removal, delivery())
    assert await counts(1000, "A", "G") == (11, 16, 32)
    assert await kept(2000, "research_het + research_hom") == 0, "its only carrier left"
    assert await recount_changes_nothing()

    await handlers.consent_changed(consent(twice, 2, withdrawn=True), delivery())
    assert await counts(1000, "A", "G") == (10, 15, 30)
    # The unrestricted counts (never shown) still hold the withdrawn patient's data.
    assert await kept(1000, "all_het + all_hom") == 11
    assert await recount_changes_nothing()


async def test_a_region_comes_a_page_at_a_time_and_the_pages_add_up_to_the_whole(
    handlers: RegistryHandlers,
    queries: Queries,
    pool: asyncpg.Pool,
    upload_vcf: Callable[..., UploadedVcf],
) -> None:
    from genomebus_registry.core.cursors import RegionCursor

    from .conftest import REFERENCE

    # Two references with a contig of the same name: pages go reference by reference.
    other = REFERENCE.model_copy(update={"id": "toy-ref-2", "digest": "SQC." + "C" * 32})
    for reference, positions in ((REFERENCE, range(100, 160, 10)), (other, range(105, 125, 10))):
        vcf = upload_vcf(
            [(pos, "A", alt, "0/1", 30, 99) for pos in positions for alt in ("C", "G")]
        )
        # Five carriers and five who carry none of them (a variant far away), so that no
        # variant is withheld from the listing (disclosure rules 0 and 1).
        for i, records in enumerate([vcf] * 5 + [upload_vcf([FAR])] * 5):
            patient = pseudonym(f"q-paged-{reference.id}-{i}")
            await handlers.consent_changed(consent(patient, 1), delivery())
            await handlers.variants_called(
                variants_called(records, patient, reference=reference), delivery()
            )

    whole = await queries.region(RESEARCHER, "chrT", 1, 1000, limit=1000)
    assert whole.next_cursor is None and len(whole.variants) == 16
    assert [(v.reference_digest, v.pos, v.alt) for v in whole.variants] == sorted(
        (v.reference_digest, v.pos, v.alt) for v in whole.variants
    )
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
