"""Property: whatever the order of consent changes, loads, sample removals, folds and research
questions, a patient who has not allowed research, or has withdrawn, never contributes to a
research answer, and every answer equals what a plain model of the consent rules computes.

Queries run with a disclosure threshold of 1, and every example starts with three patients in
the background who never change (one carries every allele once, one twice, one none of them), so
that no genotype group is ever empty and every answer is exact and comparable (disclosure.py
withholds empty groups too); the audit log's "patients touched" of every research answer is
checked against the consenting set. After every step, the counts as every answer reads them
(stored + pending adjustments) and the cohort sizes are checked against a brute-force recount
over the eligible samples' blocks, in one snapshot, and the research flags of the samples in use
against the consents: 0 differences.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genomebus_common.contracts.events import SampleRemoved
from genomebus_common.runtime.db import connect_pool
from genomebus_common.runtime.objectstore import ObjectStore
from genomebus_registry.adapters.postgres import counts
from genomebus_registry.adapters.postgres.handlers import RegistryHandlers
from genomebus_registry.adapters.postgres.queries import Queries
from genomebus_registry.schema import migrations

from .conftest import RESEARCHER, UploadedVcf, consent, delivery, pseudonym, variants_called

pytestmark = pytest.mark.integration

PATIENTS = [pseudonym(f"prop-{i}") for i in range(3)]
# Three samples' worth of genotypes with overlapping variants: (pos, ref, alt, GT).
VCFS = [
    [(100, "A", "G", "0/1"), (200, "C", "T", "1/1")],
    [(100, "A", "G", "1/1"), (300, "G", "A", "0/1")],
    [(200, "C", "T", "0/1"), (300, "G", "A", "0/1"), (400, "T", "C", "0/1")],
]
ALLELES = {pos: (ref, alt) for vcf in VCFS for pos, ref, alt, _ in vcf}
# The background: research-consenting throughout; their share of every allele's counts is fixed.
BACKGROUND = {
    pseudonym("prop-bg-het"): [(pos, ref, alt, "0/1") for pos, (ref, alt) in ALLELES.items()],
    pseudonym("prop-bg-hom"): [(pos, ref, alt, "1/1") for pos, (ref, alt) in ALLELES.items()],
    pseudonym("prop-bg-none"): [(5000, "A", "T", "0/1")],  # outside every question
}
BACKGROUND_CARRIERS, BACKGROUND_ALLELES = 2, 3

patient = st.integers(0, len(PATIENTS) - 1)
# The consent service's next version for the patient: grant, restrict research, withdraw...
next_consent_op = st.tuples(
    st.just("next"), patient, st.sampled_from(["grant", "restrict", "withdraw", "no_analysis"])
)
# ...and a late or repeated version with any content (redelivery, reordering).
stale_consent_op = st.tuples(
    st.just("stale"), patient, st.integers(1, 3), st.booleans(), st.booleans(), st.booleans()
)
load_op = st.tuples(st.just("load"), patient, st.integers(0, len(VCFS) - 1))
query_op = st.tuples(st.just("query"), st.sampled_from(["region", 100, 200, 300, 400]))
# A hospital removes one of the samples loaded so far (by its index among them, modulo).
remove_op = st.tuples(st.just("remove"), st.integers(0, 20))
# The folder moves the oldest pending adjustments (a batch of 1..4) into the stored counts.
fold_op = st.tuples(st.just("fold"), st.integers(1, 4))
# Every patient starts with a consent and a loaded sample, so that what follows (withdrawals,
# restrictions, late versions, more loads) always has data it could wrongly expose.
opening = st.tuples(
    *[
        st.tuples(
            st.just("next"), st.just(p), st.sampled_from(["grant", "grant", "restrict", "withdraw"])
        )
        for p in range(len(PATIENTS))
    ]
).map(lambda grants: [op for g in grants for op in (g, ("load", g[1], g[1]))])
operations = st.tuples(
    opening,
    st.lists(
        st.one_of(
            next_consent_op,
            next_consent_op,
            stale_consent_op,
            load_op,
            query_op,
            remove_op,
            fold_op,
            fold_op,
        ),
        min_size=1,
        max_size=12,
    ),
).map(lambda parts: parts[0] + parts[1])


@dataclass
class Model:
    """The consent rules, stated as plainly as possible."""

    consents: dict[int, tuple[int, bool, bool, bool]] = field(default_factory=dict)
    samples: list[tuple[int, int, bool]] = field(default_factory=list)  # patient, vcf, quarantined
    removed: set[int] = field(default_factory=set)  # indexes into samples

    def consent(
        self, patient: int, version: int, research: bool, withdrawn: bool, analysis: bool
    ) -> None:
        held = self.consents.get(patient)
        if held is None or held[0] < version:
            self.consents[patient] = (version, research, withdrawn, analysis)

    def load(self, patient: int, vcf: int) -> None:
        held = self.consents.get(patient)
        quarantined = held is not None and (held[2] or not held[3])
        self.samples.append((patient, vcf, quarantined))

    def research_ok(self, patient: int) -> bool:
        held = self.consents.get(patient)
        return held is not None and held[1] and not held[2] and held[3]

    def remove(self, index: int) -> None:
        self.removed.add(index)

    def active(self) -> list[tuple[int, int, bool]]:
        return [s for i, s in enumerate(self.samples) if i not in self.removed]

    def cohort(self) -> set[int]:
        return {p for p, _, q in self.active() if not q and self.research_ok(p)}

    def counts(self, pos: int) -> tuple[set[int], int]:
        """(carrier patients, allele count): per patient, the larger count of its samples."""
        best: dict[int, int] = {}
        for patient, vcf, quarantined in self.active():
            if quarantined or not self.research_ok(patient):
                continue
            for p, _, _, gt in VCFS[vcf]:
                if p == pos:
                    best[patient] = max(best.get(patient, 0), gt.count("1"))
        return set(best), sum(best.values())


async def run_example(
    dsn: str,
    store: ObjectStore,
    work: Path,
    uploads: list[UploadedVcf],
    background: dict[str, UploadedVcf],
    ops: list,
) -> None:
    async with connect_pool(dsn, migrations(), max_size=3) as pool:
        await pool.execute(
            "TRUNCATE consents, samples, genotype_blocks, variant_alleles, variant_counts, "
            "pending_adjustments, cohorts, genomebus_inbox, genomebus_outbox"
        )
        handlers = RegistryHandlers(pool=pool, store=store, work_dir=work)
        for patient, upload in background.items():
            await handlers.consent_changed(consent(patient, 1), delivery())
            await handlers.variants_called(variants_called(upload, patient), delivery())
        queries = Queries(pool, min_cell_count=1)
        model = Model()
        emitted = [0] * len(PATIENTS)  # the highest version the consent service has issued
        loaded: list[tuple[str, str]] = []  # (sample id, patient) in load order
        flags = {
            "grant": (True, False, True),
            "restrict": (False, False, True),
            "withdraw": (True, True, True),
            "no_analysis": (True, False, False),
        }
        for op in [*ops, ("query", "region")]:
            kind = op[0]
            if kind in ("next", "stale"):
                if kind == "next":
                    _, patient, change = op
                    emitted[patient] += 1
                    version, (research, withdrawn, analysis) = emitted[patient], flags[change]
                else:
                    _, patient, version, research, withdrawn, analysis = op
                event = consent(
                    PATIENTS[patient],
                    version,
                    research=research,
                    withdrawn=withdrawn,
                    analysis=analysis,
                )
                await handlers.consent_changed(event, delivery())
                model.consent(patient, version, research, withdrawn, analysis)
            elif kind == "load":
                _, patient, vcf = op
                event = variants_called(uploads[vcf], PATIENTS[patient])
                await handlers.variants_called(event, delivery())
                model.load(patient, vcf)
                loaded.append((event.sample_id, event.patient_pseudonym))
            elif kind == "remove":
                index = op[1] % len(loaded)
                sample_id, pseudonym_ = loaded[index]
                removal = SampleRemoved(
                    correlation_id=sample_id,
                    sample_id=sample_id,
                    patient_pseudonym=pseudonym_,
                    hospital_id="RH",
                    reason="lab mix-up",
                    requested_by="RH",
                )
                await handlers.sample_removed(removal, delivery())
                model.remove(index)
            elif kind == "fold":
                await counts.fold(pool, op[1])
            else:
                await check_query(pool, queries, model, op[1])
            await check_counts_are_exact(pool)
        while (await counts.fold(pool)).entries:
            pass
        assert await counts.pending_entries(pool) == 0
        await check_counts_are_exact(pool)
        await check_query(pool, queries, model, "region")
        # Every removed sample's blocks went with the folds.
        assert (
            await pool.fetchval(
                "SELECT count(*) FROM genotype_blocks b JOIN samples s USING (sample_no) "
                "WHERE s.removed_at IS NOT NULL"
            )
            == 0
        )


async def check_counts_are_exact(pool: asyncpg.Pool) -> None:
    """Stored + pending equals the brute-force recount, in one snapshot; so do cohorts."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        now = [tuple(r) for r in await conn.fetch("SELECT * FROM registry_counts_now() ORDER BY 1")]
        recounted = [
            tuple(r) for r in await conn.fetch("SELECT * FROM registry_recount() ORDER BY 1")
        ]
        cohorts = [
            tuple(r) for r in await conn.fetch("SELECT * FROM registry_cohorts_now() ORDER BY 1")
        ]
        cohorts_recounted = [
            tuple(r)
            for r in await conn.fetch("SELECT * FROM registry_recount_cohorts() ORDER BY 1")
        ]
        stored_ok = await conn.fetchval(
            "SELECT bool_and(all_het >= 0 AND all_hom >= 0 AND research_het >= 0 AND research_hom "
            ">= 0)"
            " FROM variant_counts"
        )
    assert now == recounted
    assert cohorts == cohorts_recounted
    assert stored_ok is not False
    stale_flags = await pool.fetchval(
        "SELECT count(*) FROM samples s LEFT JOIN consents c USING (patient_pseudonym) "
        "WHERE s.removed_at IS NULL AND s.research IS DISTINCT FROM "
        "coalesce(registry_research_ok(c.research_use, c.analysis_consent_given, c.withdrawn), "
        "false)"
    )
    assert stale_flags == 0, "a sample in use carries a research flag its consent does not give"


async def check_query(pool: asyncpg.Pool, queries: Queries, model: Model, what: object) -> None:
    before = await pool.fetchval("SELECT coalesce(max(id), 0) FROM audit_log")
    cohort = model.cohort()
    allele_number = 2 * (len(cohort) + len(BACKGROUND))

    def expected(pos: int) -> tuple[int, int, int, None]:
        carriers, count = model.counts(pos)
        return len(carriers) + BACKGROUND_CARRIERS, count + BACKGROUND_ALLELES, allele_number, None

    if what == "region":
        answer = await queries.region(RESEARCHER, "chrT", 1, 1000)
        got = [
            (v.pos, v.carriers, v.allele_count, v.allele_number, v.suppressed)
            for v in answer.variants
        ]
        assert got == [(pos, *expected(pos)) for pos in sorted(ALLELES)]
    else:
        assert isinstance(what, int)
        ref, alt = ALLELES[what]
        answer = await queries.allele(RESEARCHER, "chrT", what, ref, alt)
        (result,) = answer.results
        assert (
            result.carriers,
            result.allele_count,
            result.allele_number,
            result.suppressed,
        ) == expected(what)
    touched = await pool.fetchval(
        "SELECT array_agg(DISTINCT p) FROM audit_log, unnest(patients) AS p "
        "WHERE id > $1 AND action LIKE 'research.%'",
        before,
    )
    allowed = {PATIENTS[p] for p in cohort} | set(BACKGROUND)
    assert set(touched or ()) <= allowed, (
        "a non-consenting patient contributed to a research answer"
    )


async def test_no_research_answer_ever_includes_a_non_consenting_patient(
    fresh_dsn: str, store: ObjectStore, tmp_path: Path, upload_vcf: Callable[..., UploadedVcf]
) -> None:
    uploads = [
        upload_vcf([(pos, ref, alt, gt, 20, 50) for pos, ref, alt, gt in vcf]) for vcf in VCFS
    ]
    background = {
        patient: upload_vcf([(pos, ref, alt, gt, 20, 50) for pos, ref, alt, gt in vcf])
        for patient, vcf in BACKGROUND.items()
    }
    async with connect_pool(fresh_dsn, migrations()):
        pass  # migrate once, outside the examples

    @settings(
        max_examples=30,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(ops=operations)
    def examples(ops: list) -> None:
        asyncio.run(run_example(fresh_dsn, store, tmp_path / "work", uploads, background, ops))

    # Hypothesis drives a synchronous function; each example gets its own event loop in a
    # worker thread, away from the test's own loop.
    await asyncio.to_thread(examples)
