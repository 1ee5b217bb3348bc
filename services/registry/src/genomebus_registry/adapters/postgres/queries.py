"""The registry's questions, each answered and audited in one transaction.

Consent is applied by the database in the same snapshot as the data, so a withdrawal that
committed before a question began is in force for it. Research counts come from the research
columns of ``variants`` and ``cohorts``, which the consent change itself moved (a trigger on the
consents row, in its transaction); the patients touched come from the ``research_samples`` view;
the treating hospital reads only the ``treatment_*`` views. Each transaction is REPEATABLE READ,
so every statement of one answer sees the same consent state, and the audit row commits with it:
no answer leaves without its audit record.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg

from genomebus_common.runtime.failures import database_errors

from ...core import access, keys
from ...core import energy as stages
from ...core.access import Caller, Outcome
from ...core.access_log import PAGE_DEFAULT as ACCESS_PAGE_DEFAULT
from ...core.access_log import AccessLog
from ...core.answers import (
    PATIENT_PAGE_DEFAULT,
    REGION_PAGE_DEFAULT,
    REGION_PAGE_MAX,
    AlleleAnswer,
    AlleleCounts,
    PatientSample,
    PatientVariant,
    PatientVariants,
    RegionAnswer,
    zygosity,
)
from ...core.consent import ConsentState
from ...core.cursors import AccessCursor, PatientCursor, RegionCursor
from ...core.disclosure import DEFAULT_MIN_CELL
from ...core.variants import variant_id
from . import Connection, access_log, audit, energy

T = TypeVar("T")


# Every research count is stored (variant_counts, cohorts) + pending (pending_adjustments,
# evaluated over the blocks of the samples each entry names), read in the answer's one
# REPEATABLE READ snapshot: exact at every commit, whatever a fold is doing (migration 0013,
# core/counts.py). The statements name the research columns (research_het, research_hom,
# w_research, research_patients, research_samples) and nothing else that depends on consent, so
# the benchmark can run the same statements over the unrestricted ones.

# Patients per reference: stored + pending (each entry is one patient, in or out).
_COHORT_SQL = """
    SELECT r.reference_digest,
           (coalesce(c.research_patients, 0) + coalesce(p.research_patients, 0))::int AS patients
    FROM (SELECT reference_digest FROM cohorts
          UNION SELECT DISTINCT reference_digest FROM pending_adjustments) r
    LEFT JOIN cohorts c ON c.reference_digest = r.reference_digest
    LEFT JOIN (SELECT reference_digest, sum(w_research) AS research_patients
               FROM pending_adjustments GROUP BY 1) p ON p.reference_digest = r.reference_digest
"""

# One allele per reference that has research patients: its code on each contig of that name
# ($5: the fixed SNV code, else the dictionary's), its stored counts, the pending entries'
# genotypes at it (one block probe per sample an entry names: ``@>`` finds the call in the
# array without unnesting it), and the patients it counted (one block probe per research sample,
# none when no research patient carries it).
_ALLELE_SQL = f"""
WITH cohort AS ({_COHORT_SQL}), target AS (
    SELECT k.contig_no, k.reference_digest, x.code,
           ((($2::int & {keys.BIN_SIZE - 1}) << {keys.CODE_BITS}) | x.code) << 2 AS call0
    FROM contigs k CROSS JOIN LATERAL (
        SELECT coalesce($5::int, (SELECT a.code FROM variant_alleles a WHERE a.contig_no = k.contig_no
                                  AND a.pos = $2 AND a.ref = $3 AND a.alt = $4)) AS code) x
    WHERE k.chrom = $1 AND x.code IS NOT NULL
)
SELECT c.reference_digest, c.patients,
       (coalesce(v.research_het, 0) + coalesce(p.het, 0))::int AS het,
       (coalesce(v.research_hom, 0) + coalesce(p.hom, 0))::int AS hom,
       CASE WHEN coalesce(v.research_het, 0) + coalesce(v.research_hom, 0)
                 + coalesce(p.het, 0) + coalesce(p.hom, 0) > 0 THEN ARRAY(
           SELECT DISTINCT s.patient_pseudonym
           FROM research_samples s
           JOIN genotype_blocks b ON b.sample_no = s.sample_no AND b.contig_no = t.contig_no
                                 AND b.bin = $2::int >> {keys.BIN_BITS}
           WHERE b.calls && ARRAY[t.call0 | 1, t.call0 | 2]) ELSE '{{}}' END AS touched
FROM cohort c
LEFT JOIN target t ON t.reference_digest = c.reference_digest
LEFT JOIN variant_counts v
    ON v.key = (t.contig_no::bigint << {keys.CONTIG_SHIFT}) | ($2::bigint << {keys.CODE_BITS}) | t.code
LEFT JOIN LATERAL (
    SELECT sum(e.w_research) FILTER (WHERE g.alt_count = 1) AS het,
           sum(e.w_research) FILTER (WHERE g.alt_count = 2) AS hom
    FROM pending_adjustments e CROSS JOIN LATERAL (
        SELECT max(CASE WHEN b.calls @> ARRAY[t.call0 | 2] THEN 2
                        WHEN b.calls @> ARRAY[t.call0 | 1] THEN 1 END) AS alt_count
        FROM genotype_blocks b
        WHERE b.sample_no = ANY (e.samples) AND b.contig_no = t.contig_no
          AND b.bin = $2::int >> {keys.BIN_BITS}
    ) g
    WHERE e.reference_digest = t.reference_digest AND e.w_research <> 0
) p ON true
WHERE c.patients > 0
ORDER BY c.reference_digest
"""  # noqa: E501 - SQL text left as it was written, not rewrapped

# One page of a region: for each contig of that name (one per reference) whose research cohort
# is large enough, the variants from the page's key on (keys order by position, then allele),
# stored counts and pending genotypes merged key by key, cut at the page size. Pages go
# reference by reference ($4: the last page's reference, $5 its last key). Alleles with fewer
# than $7 research carriers, and every allele of a cohort under 2 x $7 patients, are not listed
# (disclosure rules 0 and 1): left out before the LIMIT, so a page is full and its cursor never
# points at a withheld allele.
_REGION_SQL = f"""
WITH cohort AS ({_COHORT_SQL}), contig AS (
    SELECT k.contig_no, k.reference_digest, c.patients,
           -- the cursor's key, only if it is one of this contig's and not before start: a
           -- cursor never reaches outside the region asked for
           CASE WHEN k.reference_digest = $4 AND ($5::bigint >> {keys.CONTIG_SHIFT}) = k.contig_no
                THEN greatest($5::bigint, ((k.contig_no::bigint << {keys.CONTIG_SHIFT})
                                           | ($2::bigint << {keys.CODE_BITS})) - 1)
                ELSE ((k.contig_no::bigint << {keys.CONTIG_SHIFT}) | ($2::bigint << {keys.CODE_BITS})) - 1
           END AS after_key,
           (k.contig_no::bigint << {keys.CONTIG_SHIFT}) | ($3::bigint << {keys.CODE_BITS}) | {keys.MAX_CODE}
               AS last_key
    FROM contigs k JOIN cohort c ON c.reference_digest = k.reference_digest
    WHERE k.chrom = $1 AND k.reference_digest >= $4 AND c.patients >= 2 * $7::int
)
SELECT k.reference_digest, k.patients, v.key, v.het, v.hom,
       coalesce(s.ref, a.ref) AS ref, coalesce(s.alt, a.alt) AS alt
FROM contig k CROSS JOIN LATERAL (
    SELECT u.key, sum(u.het)::int AS het, sum(u.hom)::int AS hom
    FROM (
        SELECT key, research_het AS het, research_hom AS hom
        FROM variant_counts WHERE key > k.after_key AND key <= k.last_key
        UNION ALL
        -- pending entries of one sample (nearly all): its calls as they are
        SELECT g.key, e.w_research * (g.alt_count = 1)::int, e.w_research * (g.alt_count = 2)::int
        FROM pending_adjustments e CROSS JOIN LATERAL (
            SELECT registry_key(b.contig_no, b.bin, x) AS key, x & 3 AS alt_count
            FROM genotype_blocks b CROSS JOIN LATERAL unnest(b.calls) AS x
            WHERE b.sample_no = e.samples[1] AND b.contig_no = k.contig_no
              AND b.bin BETWEEN $2::int >> {keys.BIN_BITS} AND $3::int >> {keys.BIN_BITS}
        ) g
        WHERE e.reference_digest = k.reference_digest AND e.w_research <> 0
          AND cardinality(e.samples) = 1 AND g.key > k.after_key AND g.key <= k.last_key
        UNION ALL
        -- of several samples of one patient: each variant once, with its largest count
        SELECT g.key, e.w_research * (g.alt_count = 1)::int, e.w_research * (g.alt_count = 2)::int
        FROM pending_adjustments e CROSS JOIN LATERAL (
            SELECT registry_key(b.contig_no, b.bin, x) AS key, max(x & 3) AS alt_count
            FROM genotype_blocks b CROSS JOIN LATERAL unnest(b.calls) AS x
            WHERE b.sample_no = ANY (e.samples) AND b.contig_no = k.contig_no
              AND b.bin BETWEEN $2::int >> {keys.BIN_BITS} AND $3::int >> {keys.BIN_BITS}
            GROUP BY 1
        ) g
        WHERE e.reference_digest = k.reference_digest AND e.w_research <> 0
          AND cardinality(e.samples) > 1 AND g.key > k.after_key AND g.key <= k.last_key
    ) u
    GROUP BY u.key
    HAVING sum(u.het) + sum(u.hom) >= $7::int
    ORDER BY u.key
    LIMIT $6
) v
LEFT JOIN snv_codes s ON s.code = v.key & {keys.MAX_CODE}
LEFT JOIN variant_alleles a ON s.code IS NULL AND a.contig_no = k.contig_no
    AND a.pos = (v.key >> {keys.CODE_BITS}) & {keys.MAX_POS} AND a.code = v.key & {keys.MAX_CODE}
ORDER BY k.reference_digest, v.key
LIMIT $6
"""  # noqa: E501 - SQL text left as it was written, not rewrapped


def region_args(
    chrom: str,
    start: int,
    end: int,
    after: RegionCursor | None = None,
    limit: int = REGION_PAGE_MAX,
    min_carriers: int = DEFAULT_MIN_CELL,
) -> tuple[str, int, int, str, int, int, int]:
    """_REGION_SQL's parameters; with no cursor the page starts at ``start`` in every
    reference. ``min_carriers``: the disclosure threshold (fewer carriers: not listed)."""
    digest, key = (after.reference_digest, after.key) if after else ("", 0)
    return (chrom, start, end, digest, key, limit, max(1, min_carriers))


def pos_of(key: int) -> int:
    return keys.split_key(key).pos


def page_keys(rows: list[asyncpg.Record]) -> list[int]:
    """The variant keys a (non-empty) region page lists (_REGION_TOUCHED_SQL's $1)."""
    return [r["key"] for r in rows]


# The patients whose genotypes a region page counted: the research samples that carry one of
# the variants it lists. The listed keys become, per contig and bin, the calls that carry them
# (either allele count), and each research sample's block of that bin is tested for any of them
# with the array overlap operator (``&&``): one block probe per research sample and bin, and no
# call unnested (docs/registry-scale.md: what this costs at national scale).
_REGION_TOUCHED_SQL = f"""
WITH listed AS (
    SELECT (k.key >> {keys.CONTIG_SHIFT})::int AS contig_no,
           ((k.key >> {keys.BIN_BITS + keys.CODE_BITS}) & {(1 << (keys.CONTIG_SHIFT - keys.BIN_BITS - keys.CODE_BITS)) - 1})::int AS bin,
           array_agg(((k.key & {(1 << (keys.BIN_BITS + keys.CODE_BITS)) - 1})::int << 2) | a.alt_count) AS calls
    FROM unnest($1::bigint[]) AS k (key) CROSS JOIN (VALUES (1), (2)) AS a (alt_count)
    GROUP BY 1, 2
)
SELECT array_agg(DISTINCT r.patient_pseudonym)
FROM listed l
JOIN genotype_blocks b ON b.contig_no = l.contig_no AND b.bin = l.bin AND b.calls && l.calls
JOIN research_samples r ON r.sample_no = b.sample_no
"""  # noqa: E501 - SQL text left as it was written, not rewrapped


# One page of a patient's variants: the blocks of the patient's treatment samples in key order
# (sample, contig, bin), each unnested in position order, from the cursor on. Blocks stream
# from the primary key and the sort is incremental, so a page reads about what it returns.
_PATIENT_PAGE_SQL = f"""
SELECT b.sample_no, b.contig_no, b.bin, x.ord, k.chrom,
       registry_call_pos(b.bin, x.call) AS pos, (x.call & 3)::int AS alt_count,
       registry_unsmall(x.dp, d.dp) AS dp, registry_unsmall(x.gq, d.gq) AS gq,
       coalesce(c.ref, a.ref) AS ref, coalesce(c.alt, a.alt) AS alt
FROM genotype_blocks b
CROSS JOIN LATERAL (
    SELECT u.call, u.dp, u.gq, row_number() OVER (ORDER BY u.call) AS ord  -- position order
    FROM unnest(b.calls, b.dp, b.gq) AS u (call, dp, gq)
) x
JOIN contigs k ON k.contig_no = b.contig_no
LEFT JOIN snv_codes c ON c.code = registry_call_code(x.call)
LEFT JOIN variant_alleles a ON c.code IS NULL AND a.contig_no = b.contig_no
    AND a.pos = registry_call_pos(b.bin, x.call) AND a.code = registry_call_code(x.call)
LEFT JOIN deep_calls d ON (x.dp::int = {keys.DEEP_QUAL - 128} OR x.gq::int = {keys.DEEP_QUAL - 128})
    AND d.sample_no = b.sample_no AND d.contig_no = b.contig_no AND d.bin = b.bin AND d.call = x.call
WHERE b.sample_no = ANY ($1::int[])
  AND (b.sample_no, b.contig_no, b.bin) >= ($2, $3, $4)
  AND (b.sample_no, b.contig_no, b.bin, x.ord) > ($2, $3, $4, $5::bigint)
ORDER BY b.sample_no, b.contig_no, b.bin, x.ord
LIMIT $6
"""  # noqa: E501 - SQL text left as it was written, not rewrapped


@dataclass
class Queries:
    pool: asyncpg.Pool
    #: The disclosure threshold (disclosure.py); the settings keep it at MIN_CELL_FLOOR or more.
    min_cell_count: int = DEFAULT_MIN_CELL

    async def _audited(
        self,
        caller: Caller,
        action: str,
        details: dict[str, Any],
        answer: Callable[[Connection], Awaitable[Outcome[T]]],
    ) -> T:
        with database_errors():
            async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
                outcome = await answer(conn)
                await audit.record(
                    conn,
                    actor=caller.client_id,
                    role=caller.role,
                    action=action,
                    purpose=caller.purpose,
                    outcome=outcome.outcome,
                    patients=outcome.patients,
                    details={**details, "hospital_id": caller.hospital_id},
                )
        if outcome.error is not None:
            raise outcome.error
        assert outcome.result is not None  # an outcome without an error holds its answer
        return outcome.result

    # --- research ----------------------------------------------------------------------------

    async def allele(
        self, caller: Caller, chrom: str, pos: int, ref: str, alt: str
    ) -> AlleleAnswer:
        """Carriers, allele count, allele number and frequency over research-consenting patients,
        one result per reference that has any; counts are per patient (a patient sequenced
        twice counts once, with the larger allele count)."""

        async def answer(conn: Connection) -> Outcome[AlleleAnswer]:
            if refused := access.research_refusal(caller):
                return refused
            if not 1 <= pos <= keys.MAX_POS:
                return Outcome(AlleleAnswer(chrom=chrom, pos=pos, ref=ref, alt=alt, results=[]), [])
            rows = await conn.fetch(_ALLELE_SQL, chrom, pos, ref, alt, keys.snv_code(ref, alt))
            results = [
                AlleleCounts.disclose(
                    carriers=r["het"] + r["hom"],
                    allele_count=r["het"] + 2 * r["hom"],
                    samples=r["patients"],
                    threshold=self.min_cell_count,
                    variant_id=variant_id(r["reference_digest"], chrom, pos, ref, alt),
                    reference_digest=r["reference_digest"],
                    chrom=chrom,
                    pos=pos,
                    ref=ref,
                    alt=alt,
                )
                for r in rows
            ]
            touched = [p for r in rows for p in r["touched"]]
            return Outcome(
                AlleleAnswer(chrom=chrom, pos=pos, ref=ref, alt=alt, results=results), touched
            )

        return await self._audited(
            caller, "research.allele", {"chrom": chrom, "pos": pos, "ref": ref, "alt": alt}, answer
        )

    async def region(
        self,
        caller: Caller,
        chrom: str,
        start: int,
        end: int,
        *,
        limit: int = REGION_PAGE_DEFAULT,
        after: RegionCursor | None = None,
    ) -> RegionAnswer:
        """Variants whose POS lies in [start, end] (1-based, inclusive) carried by at least
        ``min_cell_count`` research-consenting patients (rarer ones are not listed: disclosure
        rule 1), with their disclosed counts: up to ``limit`` of them after ``after``;
        ``next_cursor`` asks for the rest."""

        async def answer(conn: Connection) -> Outcome[RegionAnswer]:
            if refused := access.research_refusal(caller):
                return refused
            rows = await conn.fetch(
                _REGION_SQL,
                *region_args(chrom, start, end, after, limit + 1, self.min_cell_count),
            )
            more, rows = len(rows) > limit, rows[:limit]
            # The audit names the patients counted in this page: the carriers of the variants it
            # lists.
            touched = (
                await conn.fetchval(_REGION_TOUCHED_SQL, page_keys(rows)) if rows else None
            ) or []
            variants = [
                AlleleCounts.disclose(
                    carriers=r["het"] + r["hom"],
                    allele_count=r["het"] + 2 * r["hom"],
                    samples=r["patients"],
                    threshold=self.min_cell_count,
                    variant_id=variant_id(
                        r["reference_digest"], chrom, pos_of(r["key"]), r["ref"], r["alt"]
                    ),
                    reference_digest=r["reference_digest"],
                    chrom=chrom,
                    pos=pos_of(r["key"]),
                    ref=r["ref"],
                    alt=r["alt"],
                )
                for r in rows
            ]
            last = rows[-1] if rows else None
            cursor = (
                RegionCursor(key=last["key"], reference_digest=last["reference_digest"]).encode()
                if more and last is not None
                else None
            )
            page = RegionAnswer(
                chrom=chrom, start=start, end=end, variants=variants, next_cursor=cursor
            )
            return Outcome(page, touched)

        details = {
            "chrom": chrom,
            "start": start,
            "end": end,
            "limit": limit,
            "after": after.encode() if after else None,
        }
        return await self._audited(caller, "research.region", details, answer)

    # --- treatment ---------------------------------------------------------------------------

    async def patient_variants(
        self,
        caller: Caller,
        pseudonym: str,
        *,
        limit: int = PATIENT_PAGE_DEFAULT,
        after: PatientCursor | None = None,
    ) -> PatientVariants:
        """The patient's variants for a hospital that sent one of the patient's samples, up to
        ``limit`` at a time, sample by sample in position order (a genome holds millions).

        Research restrictions do not apply (this is the patient's own treatment); a withdrawn or
        missing analysis consent does. Another hospital is told "not found", never whether the
        patient exists.
        """

        async def answer(conn: Connection) -> Outcome[PatientVariants]:
            if refused := access.treating_hospital_refusal(caller, "the patient view"):
                return refused
            # A sample the hospital sent and then removed (the wrong patient, say), or one
            # quarantined, does not make it the patient's treating hospital.
            treating = await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM samples WHERE patient_pseudonym = $1 "
                "AND hospital_id = $2 AND removed_at IS NULL AND NOT quarantined)",
                pseudonym,
                caller.hospital_id,
            )
            if not treating:
                return access.not_treating(caller, pseudonym)
            row = await conn.fetchrow(
                "SELECT version, analysis_consent_given, research_use, withdrawn FROM consents "
                "WHERE patient_pseudonym = $1",
                pseudonym,
            )
            consent = ConsentState(*row) if row else ConsentState(None, None, None, None)
            if refused := access.treatment_consent_refusal(consent, pseudonym):
                return refused
            samples = await conn.fetch(
                "SELECT sample_no, sample_id, hospital_id, reference_id, reference_digest "
                "FROM treatment_samples WHERE patient_pseudonym = $1 ORDER BY sample_id",
                pseudonym,
            )
            start = after.position if after else (0, 0, 0, 0)
            rows = await conn.fetch(
                _PATIENT_PAGE_SQL, [s["sample_no"] for s in samples], *start, limit + 1
            )
            more, rows = len(rows) > limit, rows[:limit]
            ids = {s["sample_no"]: s for s in samples}
            variants = []
            for r in rows:
                sample = ids[r["sample_no"]]
                variants.append(
                    PatientVariant(
                        sample_id=sample["sample_id"],
                        variant_id=variant_id(
                            sample["reference_digest"], r["chrom"], r["pos"], r["ref"], r["alt"]
                        ),
                        reference_digest=sample["reference_digest"],
                        chrom=r["chrom"],
                        pos=r["pos"],
                        ref=r["ref"],
                        alt=r["alt"],
                        alt_count=r["alt_count"],
                        dp=r["dp"],
                        gq=r["gq"],
                        zygosity=zygosity(r["alt_count"]),
                    )
                )
            last = rows[-1] if rows else None
            cursor = (
                PatientCursor(
                    position=(last["sample_no"], last["contig_no"], last["bin"], last["ord"])
                ).encode()
                if more and last is not None
                else None
            )
            result = PatientVariants(
                patient_pseudonym=pseudonym,
                samples=[
                    PatientSample(**{k: v for k, v in s.items() if k != "sample_no"})
                    for s in samples
                ],
                variants=variants,
                next_cursor=cursor,
            )
            return Outcome(result, [pseudonym])

        details = {"patient": pseudonym, "limit": limit, "after": after.encode() if after else None}
        return await self._audited(caller, "treatment.patient_variants", details, answer)

    async def sample_energy(self, caller: Caller, sample_id: str) -> stages.SampleEnergy:
        """A sample's energy estimates, per stage and in total, for the hospital that sent it.

        Energy figures are not genetic data, so consent does not gate them; they are still
        about one patient's sample, so the question is audited and another hospital is told
        "not found". The hospital is known from the loaded sample or from the stages' events
        (alignment's estimate may arrive before the sample loads).
        """

        async def answer(conn: Connection) -> Outcome[stages.SampleEnergy]:
            if refused := access.treating_hospital_refusal(caller, "sample energy"):
                return refused
            patient = await conn.fetchval(
                """
                SELECT patient_pseudonym FROM samples WHERE sample_id = $1 AND hospital_id = $2
                UNION ALL
                SELECT patient_pseudonym FROM sample_energy WHERE sample_id = $1 AND hospital_id = $2
                LIMIT 1""",  # noqa: E501 - SQL text left as it was written, not rewrapped
                sample_id,
                caller.hospital_id,
            )
            if patient is None:
                return access.unknown_sample(caller, sample_id)
            result = stages.sample_energy(sample_id, await energy.stages_of(conn, sample_id))
            return Outcome(result, [patient])

        return await self._audited(
            caller, "treatment.sample_energy", {"sample_id": sample_id}, answer
        )

    # --- citizens ----------------------------------------------------------------------------

    async def access_log(
        self,
        caller: Caller,
        pseudonym: str,
        *,
        limit: int = ACCESS_PAGE_DEFAULT,
        after: AccessCursor | None = None,
    ) -> AccessLog:
        """Who read the patient's data, when and why: for the citizens' portal only.

        Consent does not gate it (a patient who withdrew may still ask who looked before), and
        an unknown pseudonym gets an empty log, the same as a patient no one has read. The
        portal's read is itself audited, under an action the log does not list.
        """

        async def answer(conn: Connection) -> Outcome[AccessLog]:
            if refused := access.portal_refusal(caller):
                return refused
            page = await access_log.page(conn, pseudonym, limit=limit, after=after)
            return Outcome(page, [pseudonym])

        details = {"patient": pseudonym, "limit": limit, "after": after.encode() if after else None}
        return await self._audited(caller, "portal.access_log", details, answer)
