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
from genomebus_common.errors import GenomebusError, PermanentError, from_asyncpg_error

from . import access_log, audit, energy
from .disclosure import DEFAULT_MIN_CELL
from .domain import (
    AlleleAnswer,
    AlleleCounts,
    ConsentState,
    PatientSample,
    PatientVariant,
    PatientVariants,
    RegionAnswer,
    RegionCursor,
    variant_id,
)

T = TypeVar("T")


class PatientNotFound(PermanentError):
    """Not a patient of the caller's hospital (whether or not the patient exists elsewhere)."""

    code = "patient_not_found"


class SampleNotFound(PermanentError):
    """Not a sample of the caller's hospital (whether or not it exists elsewhere)."""

    code = "sample_not_found"


class ConsentForbids(PermanentError):
    """The patient's consent does not allow this use of the data (withdrawn, or none known)."""

    code = "consent_forbids"


class RoleForbidden(PermanentError):
    code = "role_forbidden"


@dataclass(frozen=True)
class Caller:
    """Who asks and why: written into every audit row."""

    client_id: str
    role: str
    hospital_id: str | None
    purpose: str


@dataclass(frozen=True)
class _Outcome:
    result: Any
    patients: list[str]
    outcome: str = "answered"
    error: GenomebusError | None = None


# Research counts are kept per variant row (research_carriers, research_allele_count) and cohort
# sizes per reference (cohorts.research_patients): loads, removals and consent changes move them
# in their own transactions (migrations 0003, 0004), so a question reads one row per variant
# instead of counting genotypes. The patients touched come from the consent-joining views, in the
# same REPEATABLE READ snapshot as the counts.
_COHORT_SQL = """
    SELECT reference_digest, research_patients AS patients FROM cohorts WHERE research_patients > 0
"""

_ALLELE_SQL = f"""
WITH cohort AS ({_COHORT_SQL}), allele AS (
    SELECT variant_no, contig_no, pos, reference_digest, research_carriers, research_allele_count
    FROM variants
    WHERE contig_no IN (SELECT contig_no FROM contigs WHERE chrom = $1)
      AND pos = $2 AND ref = $3 AND alt = $4
)
SELECT c.reference_digest, c.patients,
       coalesce(a.research_carriers, 0)::int AS carriers,
       coalesce(a.research_allele_count, 0)::int AS allele_count,
       ARRAY(SELECT DISTINCT r.patient_pseudonym
             FROM genotypes g JOIN research_samples r ON r.sample_no = g.sample_no
             WHERE g.contig_no = a.contig_no AND g.pos = a.pos
               AND g.variant_no = a.variant_no) AS touched
FROM cohort c LEFT JOIN allele a ON a.reference_digest = c.reference_digest
ORDER BY c.reference_digest
"""

# One page of a region: for each contig of that name (one per reference), its variants from the
# page's key on, walked in the order of the variants_locus index and cut at the page size, so a
# page reads about as many rows as it returns, however many the region holds. Pages go reference
# by reference ($7: the last page's reference), each in position order. Alleles with fewer than
# $9 research carriers, and every allele of a cohort under 2 x $9 patients, are not listed at all
# (disclosure rules 0 and 1): left out here, not after the LIMIT, so that a page is full and its
# cursor never points at a withheld allele.
_REGION_SQL = f"""
WITH cohort AS ({_COHORT_SQL}), contig AS (
    SELECT k.contig_no, k.reference_digest, c.patients,
           CASE WHEN k.reference_digest = $7 THEN $4::int ELSE $2 END AS from_pos,
           CASE WHEN k.reference_digest = $7 THEN $5::text ELSE '' END AS from_ref,
           CASE WHEN k.reference_digest = $7 THEN $6::text ELSE '' END AS from_alt
    FROM contigs k JOIN cohort c ON c.reference_digest = k.reference_digest
    WHERE k.chrom = $1 AND k.reference_digest >= $7 AND c.patients >= 2 * $9::int
)
SELECT v.variant_id, k.reference_digest, v.chrom, v.pos, v.ref, v.alt, k.patients,
       v.research_carriers AS carriers, v.research_allele_count AS allele_count
FROM contig k CROSS JOIN LATERAL (
    SELECT variant_id, chrom, pos, ref, alt, research_carriers, research_allele_count
    FROM variants v
    WHERE v.contig_no = k.contig_no AND v.pos BETWEEN $2 AND $3 AND v.research_carriers >= $9
      AND (v.pos, v.ref, v.alt) > (k.from_pos, k.from_ref, k.from_alt)
    ORDER BY v.pos, v.ref, v.alt
    LIMIT $8
) v
ORDER BY k.reference_digest, v.pos, v.ref, v.alt
LIMIT $8
"""

#: Region answers come a page at a time (keyset pagination on the answer's order), so that an
#: answer costs the same whatever the region holds and no client waits for 8,000 rows at once.
#: 100 by default: such a page takes about 2 ms in the database at 10M genotypes (``make
#: bench-registry``); a client that wants the whole region at once asks for up to the maximum.
REGION_PAGE_DEFAULT = 100
REGION_PAGE_MAX = 10_000


def region_args(
    chrom: str,
    start: int,
    end: int,
    after: RegionCursor | None = None,
    limit: int = REGION_PAGE_MAX,
    min_carriers: int = DEFAULT_MIN_CELL,
) -> tuple[str, int, int, int, str, str, str, int, int]:
    """_REGION_SQL's parameters; with no cursor the key starts below every variant at start, in
    every reference. ``min_carriers``: the disclosure threshold (fewer carriers: not listed)."""
    key = (after.pos, after.ref, after.alt, after.reference_digest) if after else (start, "", "", "")
    return (chrom, start, end, *key, limit, max(1, min_carriers))

def page_spans(rows: list[asyncpg.Record]) -> tuple[list[str], list[int], list[int]]:
    """Per reference in a (non-empty) region page: its digest, lowest and highest position
    (_REGION_TOUCHED_SQL's $2..$4)."""
    spans: dict[str, tuple[int, int]] = {}
    for r in rows:
        low, high = spans.get(r["reference_digest"], (r["pos"], r["pos"]))
        spans[r["reference_digest"]] = (min(low, r["pos"]), max(high, r["pos"]))
    return list(spans), [low for low, _ in spans.values()], [high for _, high in spans.values()]


# The patients whose genotypes a region page counts: for each reference in the page, the
# research samples on it with a call between the page's lowest and highest position there. One
# range scan of genotypes_locus per partition over the calls inside the page (migration 0010):
# the work grows with the page, not with the number of samples in the registry.
_REGION_TOUCHED_SQL = """
SELECT array_agg(DISTINCT r.patient_pseudonym) FILTER (WHERE r.patient_pseudonym IS NOT NULL)
FROM unnest($2::text[], $3::int[], $4::int[]) AS span (reference_digest, low, high)
JOIN contigs k ON k.chrom = $1 AND k.reference_digest = span.reference_digest
JOIN genotypes g ON g.contig_no = k.contig_no AND g.pos BETWEEN span.low AND span.high
JOIN research_samples r ON r.sample_no = g.sample_no
"""


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
        answer: Callable[[asyncpg.Connection], Awaitable[_Outcome]],
    ) -> Any:
        try:
            async with self.pool.acquire() as conn:
                async with conn.transaction(isolation="repeatable_read"):
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
        except GenomebusError:
            raise
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            raise from_asyncpg_error(exc) from exc
        if outcome.error is not None:
            raise outcome.error
        return outcome.result

    @staticmethod
    def _denied(error: GenomebusError, patients: list[str] | None = None) -> _Outcome:
        return _Outcome(None, patients or [], outcome=f"denied: {error.code}", error=error)

    # --- research ----------------------------------------------------------------------------

    async def allele(
        self, caller: Caller, chrom: str, pos: int, ref: str, alt: str
    ) -> AlleleAnswer:
        """Carriers, allele count, allele number and frequency over research-consenting patients,
        one result per reference that has any; counts are per patient (a patient sequenced
        twice counts once, with the larger allele count)."""

        async def answer(conn: asyncpg.Connection) -> _Outcome:
            if caller.role != "research":
                return self._denied(RoleForbidden("research queries need a research client"))
            rows = await conn.fetch(_ALLELE_SQL, chrom, pos, ref, alt)
            results = [
                AlleleCounts.disclose(
                    carriers=r["carriers"],
                    allele_count=r["allele_count"],
                    samples=r["patients"],
                    threshold=self.min_cell_count,
                    variant_id=variant_id(r["reference_digest"], chrom, pos, ref, alt),
                    reference_digest=r["reference_digest"],
                    chrom=chrom, pos=pos, ref=ref, alt=alt,
                )
                for r in rows
            ]
            touched = [p for r in rows for p in r["touched"]]
            return _Outcome(AlleleAnswer(chrom=chrom, pos=pos, ref=ref, alt=alt, results=results), touched)

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

        async def answer(conn: asyncpg.Connection) -> _Outcome:
            if caller.role != "research":
                return self._denied(RoleForbidden("research queries need a research client"))
            rows = await conn.fetch(
                _REGION_SQL,
                *region_args(chrom, start, end, after, limit + 1, self.min_cell_count),
            )
            more, rows = len(rows) > limit, rows[:limit]
            # The audit names the patients counted in this page: those with a call between its
            # lowest and highest position on each reference in it (a page boundary inside one
            # position names a few more).
            touched = (
                await conn.fetchval(_REGION_TOUCHED_SQL, chrom, *page_spans(rows))
                if rows else None
            ) or []
            variants = [
                AlleleCounts.disclose(
                    carriers=r["carriers"],
                    allele_count=r["allele_count"],
                    samples=r["patients"],
                    threshold=self.min_cell_count,
                    variant_id=r["variant_id"],
                    reference_digest=r["reference_digest"],
                    chrom=r["chrom"], pos=r["pos"], ref=r["ref"], alt=r["alt"],
                )
                for r in rows
            ]
            last = rows[-1] if rows else None
            cursor = (
                RegionCursor(pos=last["pos"], ref=last["ref"], alt=last["alt"],
                             reference_digest=last["reference_digest"]).encode()
                if more and last is not None else None
            )
            page = RegionAnswer(
                chrom=chrom, start=start, end=end, variants=variants, next_cursor=cursor
            )
            return _Outcome(page, touched)

        details = {"chrom": chrom, "start": start, "end": end, "limit": limit,
                   "after": after.encode() if after else None}
        return await self._audited(caller, "research.region", details, answer)

    # --- treatment ---------------------------------------------------------------------------

    async def patient_variants(self, caller: Caller, pseudonym: str) -> PatientVariants:
        """The patient's variants for a hospital that sent one of the patient's samples.

        Research restrictions do not apply (this is the patient's own treatment); a withdrawn or
        missing analysis consent does. Another hospital is told "not found", never whether the
        patient exists.
        """

        async def answer(conn: asyncpg.Connection) -> _Outcome:
            if caller.role != "hospital" or not caller.hospital_id:
                return self._denied(RoleForbidden("the patient view is for treating hospitals"))
            # A sample the hospital sent and then removed (the wrong patient, say), or one
            # quarantined, does not make it the patient's treating hospital.
            treating = await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM samples WHERE patient_pseudonym = $1 "
                "AND hospital_id = $2 AND removed_at IS NULL AND NOT quarantined)",
                pseudonym,
                caller.hospital_id,
            )
            if not treating:
                return self._denied(
                    PatientNotFound(f"no patient {pseudonym} among {caller.hospital_id}'s samples")
                )
            row = await conn.fetchrow(
                "SELECT version, analysis_consent_given, research_use, withdrawn FROM consents "
                "WHERE patient_pseudonym = $1",
                pseudonym,
            )
            consent = ConsentState(*row) if row else ConsentState(None, None, None, None)
            if consent.version is None or consent.forbids_use:
                why = consent.forbids_use or "no consent on record"
                return self._denied(
                    ConsentForbids(f"the patient's data may not be used: {why}"), [pseudonym]
                )
            samples = await conn.fetch(
                "SELECT sample_id, hospital_id, reference_id, reference_digest "
                "FROM treatment_samples WHERE patient_pseudonym = $1 ORDER BY sample_id",
                pseudonym,
            )
            variants = await conn.fetch(
                "SELECT sample_id, variant_id, reference_digest, chrom, pos, ref, alt, alt_count, "
                "dp, gq FROM treatment_genotypes WHERE patient_pseudonym = $1 "
                "ORDER BY sample_id, chrom, pos, ref, alt",
                pseudonym,
            )
            result = PatientVariants(
                patient_pseudonym=pseudonym,
                samples=[PatientSample(**dict(s)) for s in samples],
                variants=[
                    PatientVariant(
                        **dict(v), zygosity="homozygous" if v["alt_count"] == 2 else "heterozygous"
                    )
                    for v in variants
                ],
            )
            return _Outcome(result, [pseudonym])

        return await self._audited(caller, "treatment.patient_variants", {"patient": pseudonym}, answer)

    async def sample_energy(self, caller: Caller, sample_id: str) -> energy.SampleEnergy:
        """A sample's energy estimates, per stage and in total, for the hospital that sent it.

        Energy figures are not genetic data, so consent does not gate them; they are still
        about one patient's sample, so the question is audited and another hospital is told
        "not found". The hospital is known from the loaded sample or from the stages' events
        (alignment's estimate may arrive before the sample loads).
        """

        async def answer(conn: asyncpg.Connection) -> _Outcome:
            if caller.role != "hospital" or not caller.hospital_id:
                return self._denied(RoleForbidden("sample energy is for treating hospitals"))
            patient = await conn.fetchval(
                """
                SELECT patient_pseudonym FROM samples WHERE sample_id = $1 AND hospital_id = $2
                UNION ALL
                SELECT patient_pseudonym FROM sample_energy WHERE sample_id = $1 AND hospital_id = $2
                LIMIT 1""",
                sample_id,
                caller.hospital_id,
            )
            if patient is None:
                return self._denied(
                    SampleNotFound(f"no sample {sample_id} among {caller.hospital_id}'s samples")
                )
            stages = await energy.stages_of(conn, sample_id)
            result = energy.SampleEnergy(
                sample_id=sample_id,
                stages=[energy.StageEnergy(stage=k, estimate=v) for k, v in stages.items()],
                missing_stages=[k for k in energy.STAGES if k not in stages],
                total=energy.total(stages.values()),
            )
            return _Outcome(result, [patient])

        return await self._audited(caller, "treatment.sample_energy", {"sample_id": sample_id}, answer)

    # --- citizens ----------------------------------------------------------------------------

    async def access_log(
        self,
        caller: Caller,
        pseudonym: str,
        *,
        limit: int = access_log.PAGE_DEFAULT,
        after: access_log.AccessCursor | None = None,
    ) -> access_log.AccessLog:
        """Who read the patient's data, when and why: for the citizens' portal only.

        Consent does not gate it (a patient who withdrew may still ask who looked before), and
        an unknown pseudonym gets an empty log, the same as a patient no one has read. The
        portal's read is itself audited, under an action the log does not list.
        """

        async def answer(conn: asyncpg.Connection) -> _Outcome:
            if caller.role != "portal":
                return self._denied(RoleForbidden("the access log is for the citizens' portal"))
            page = await access_log.page(conn, pseudonym, limit=limit, after=after)
            return _Outcome(page, [pseudonym])

        details = {"patient": pseudonym, "limit": limit, "after": after.encode() if after else None}
        return await self._audited(caller, "portal.access_log", details, answer)
