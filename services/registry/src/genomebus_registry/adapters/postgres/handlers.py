"""What each event does to the registry's tables: called variants load (or quarantine), consent
changes project, removals withdraw, alignment's energy is recorded; each applied once.

The handlers are plain ``async def handle(event, delivery)`` callables: tests call them
directly, the service subscribes them to Kafka (``adapters/kafka.py``). Each effect commits in
one transaction with its inbox row (``once``), its audit row and, for a load, its VariantsReady
in the outbox, so a redelivery has no second effect and a loaded sample is always announced
exactly once.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from genomebus_common.contracts.errors import DataConflict
from genomebus_common.contracts.events import (
    ConsentChanged,
    SampleAligned,
    SampleRemoved,
    VariantsCalled,
    VariantsReady,
)
from genomebus_common.runtime.broker import Delivery
from genomebus_common.runtime.failures import database_errors
from genomebus_common.runtime.inbox import once
from genomebus_common.runtime.outbox import enqueue

from ...core import counts as decide
from ...core import energy as stages
from ...core.loading import (
    CONSUMER,
    PRODUCER,
    BlocksStep,
    LoadCounts,
    blocks_at_commit,
    load_audit,
    ready_event_id,
    removal_outcome,
)
from ...core.vcf import ParseStats, read_genotypes
from ...ports import Notifier, VcfStore
from . import Connection, audit, counts, energy
from .consent import project_consent, read_consent
from .loader import (
    delete_blocks,
    find_sample,
    insert_sample,
    next_sample_no,
    register_alleles,
    stage_genotypes,
    write_blocks,
)

log = logging.getLogger(__name__)


@dataclass
class RegistryHandlers:
    pool: asyncpg.Pool
    store: VcfStore
    work_dir: Path
    relay: Notifier | None = None
    consumer: str = CONSUMER
    _scratch: Path = field(init=False)

    def __post_init__(self) -> None:
        self._scratch = Path(self.work_dir) / "registry"

    # --- consent.changed ---------------------------------------------------------------------

    async def consent_changed(self, event: ConsentChanged, delivery: Delivery) -> None:
        """Project the new consent version (older ones are ignored) and audit it. If it lets the
        patient into research or takes them out, the patient's samples say so and the research
        counts move by pending adjustments, in this transaction: a few rows, whatever the
        patient's genome holds, and no lock shared with any other patient's change."""
        async with once(self.pool, self.consumer, event, delivery) as conn:
            if conn is None:
                return
            applied = await project_consent(conn, event)
            await audit.record(
                conn,
                actor=event.recorded_by,
                role="consent",
                action="consent.changed",
                purpose=event.reason or "consent change",
                outcome="applied" if applied else "ignored_not_newer",
                patients=[event.patient_pseudonym],
                details={
                    "version": event.version,
                    "research_use": event.research_use.value,
                    "analysis_consent_given": event.analysis_consent_given,
                    "withdrawn": event.withdrawn,
                    "event_id": str(event.event_id),
                },
            )
        log.info("consent", extra={"version": event.version, "applied": applied})

    # --- sample.removed ----------------------------------------------------------------------

    async def sample_removed(self, event: SampleRemoved, delivery: Delivery) -> None:
        """Delete a withdrawn sample's genotypes and take them out of the counts; its provenance
        row stays, marked removed.

        The patient's consents row is locked first, so a load of the same patient still in
        flight commits before the removal looks for the sample (and the counts it takes away are
        the ones that load added).
        """
        async with once(self.pool, self.consumer, event, delivery) as conn:
            if conn is None:
                return
            # Lock every patient concerned in one order (sorted), so that two removals naming
            # the same two patients the other way round cannot deadlock.
            patients = {event.patient_pseudonym}
            loaded_for = await conn.fetchval(
                "SELECT patient_pseudonym FROM samples WHERE sample_id = $1", event.sample_id
            )
            if loaded_for is not None:
                patients.add(loaded_for)
            for patient in sorted(patients):
                await read_consent(conn, patient, lock=True)
            sample = await conn.fetchrow(
                "SELECT sample_no, patient_pseudonym, quarantined, removed_at, genotypes_loaded "
                "FROM samples WHERE sample_id = $1",
                event.sample_id,
            )
            withdrawn_genotypes = 0
            if sample is not None and sample["removed_at"] is None:
                owner = sample["patient_pseudonym"]
                if owner not in patients:  # loaded since the first look
                    await read_consent(conn, owner, lock=True)
                # Out of every view and answer at commit; its blocks go with the next fold, once
                # no pending adjustment names them.
                await counts.add(
                    conn,
                    decide.on_removal(
                        owner,
                        await counts.patient_samples(conn, owner),
                        sample["sample_no"],
                        await counts.research_ok(conn, owner),
                    ),
                )
                withdrawn_genotypes = 0 if sample["quarantined"] else sample["genotypes_loaded"]
            marked = await conn.execute(
                """
                UPDATE samples SET removed_at = now(), removal_reason = $2
                WHERE sample_id = $1 AND removed_at IS NULL""",
                event.sample_id,
                event.reason,
            )
            await conn.execute(
                "INSERT INTO removed_samples (sample_id, patient_pseudonym, reason) "
                "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                event.sample_id,
                event.patient_pseudonym,
                event.reason,
            )
            await audit.record(
                conn,
                actor=event.requested_by,
                role="hospital",
                action="sample.removed",
                purpose=event.reason,
                outcome=removal_outcome(marked=marked != "UPDATE 0", known=sample is not None),
                # whose data went (the sample's patient here) and whom the hospital named
                patients=sorted(patients | ({sample["patient_pseudonym"]} if sample else set())),
                details={"sample_id": event.sample_id, "genotypes_withdrawn": withdrawn_genotypes},
            )
        log.info("sample removed", extra={"sample_id": event.sample_id})

    # --- sample.aligned (energy only) ---------------------------------------------------------

    async def sample_aligned(self, event: SampleAligned, delivery: Delivery) -> None:
        """Record alignment's energy estimate for the sample (the rest of the event is calling's
        business). An upsert by (sample, stage), so a redelivery needs no inbox row; a sample
        that is unknown here, or removed, is recorded all the same: the energy was spent."""
        if event.energy is None:
            return
        with database_errors():
            async with self.pool.acquire() as conn:
                await energy.record(
                    conn,
                    stage=stages.ALIGNMENT,
                    sample_id=event.sample_id,
                    patient_pseudonym=event.patient_pseudonym,
                    hospital_id=event.hospital_id,
                    estimate=event.energy,
                    source_event_id=event.event_id,
                )
        log.info("alignment energy recorded", extra={"sample_id": event.sample_id})

    # --- variants.called ---------------------------------------------------------------------

    async def variants_called(self, event: VariantsCalled, delivery: Delivery) -> None:
        """Load one sample's genotypes, or quarantine it if consent forbids use at commit.

        A database error outside the load's transaction (the inbox look, the sample number) is
        classified by the consumer (``failures.from_unexpected``): a failover is retried."""
        if await self._already_applied(event):
            return  # a redelivery: do not even download
        self._scratch.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f"{event.sample_id}-", dir=self._scratch))
        try:
            vcf = await asyncio.to_thread(self.store.download, event.vcf, folder / "sample.vcf.gz")
            # The index is not needed to stream the file, but htslib looks for it on open.
            await asyncio.to_thread(
                self.store.download, event.vcf_index, folder / "sample.vcf.gz.tbi"
            )
            sample_no = await next_sample_no(self.pool)
            announced = await self._load(event, delivery, vcf, sample_no)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        if announced and self.relay is not None:
            self.relay.notify()

    async def _already_applied(self, event: VariantsCalled) -> bool:
        return bool(
            await self.pool.fetchval(
                "SELECT true FROM genomebus_inbox WHERE consumer = $1 AND event_id = $2",
                self.consumer,
                event.event_id,
            )
        )

    async def _load(
        self, event: VariantsCalled, delivery: Delivery, vcf: Path, sample_no: int
    ) -> bool:
        """The one transaction; returns True if a VariantsReady was enqueued."""
        stats = ParseStats()
        async with once(self.pool, self.consumer, event, delivery) as conn:
            if conn is None:
                return False
            # A removed sample first: whatever VCF comes for it later (called again, say) is
            # refused quietly, not a conflict parked in the dead-letter topic.
            if await _removed(conn, event.sample_id):
                await _refuse_removed(conn, event)
                return False
            existing = await find_sample(conn, event.sample_id)
            if existing is not None:
                if existing["vcf_sha256"] != event.vcf.sha256:
                    raise DataConflict(
                        f"sample {event.sample_id} is already in the registry with another VCF "
                        f"(sha256 {existing['vcf_sha256']})"
                    )
                return False  # the same VCF in another event: already loaded or quarantined
            # Cheap early look: no point staging rows for a patient who has already withdrawn.
            # It only saves work; the decision is taken under the lock below.
            early = (await read_consent(conn, event.patient_pseudonym, lock=False)).forbids_use
            loaded: LoadCounts | None = None
            if early is None:
                loaded = await self._write_blocks(conn, event, vcf, sample_no, stats)
            # The patient's row stays locked until commit: the consent checked here is the one in
            # force when the load becomes visible. Locked only now, after the blocks are written,
            # so a change of this patient's consent waits milliseconds, not the whole load.
            if loaded is None:
                # Blocks may yet be written under the patient's lock (consent given again): take
                # the allele lock first, as every load does, so two loads never wait on each
                # other the other way round.
                await conn.execute("SELECT registry_lock_alleles()")
            consent = await read_consent(conn, event.patient_pseudonym, lock=True)
            if await _removed(conn, event.sample_id):  # removed while this load wrote its blocks
                await delete_blocks(conn, sample_no)
                await _refuse_removed(conn, event)
                return False
            consent_version = consent.version
            reason = consent.forbids_use  # the consent in force at commit, nothing older
            step = blocks_at_commit(reason, written=loaded is not None)
            if step is BlocksStep.WRITE:  # consent given again since the early look
                loaded = await self._write_blocks(conn, event, vcf, sample_no, stats)
            elif step is BlocksStep.DELETE:  # withdrawn while the blocks were written
                await delete_blocks(conn, sample_no)
                loaded = None
            if reason is None:
                samples = await counts.patient_samples(conn, event.patient_pseudonym)
                await counts.add(
                    conn,
                    decide.on_load(
                        event.patient_pseudonym,
                        samples,
                        decide.SampleState(sample_no, event.reference.digest, True),
                        await counts.research_ok(conn, event.patient_pseudonym),
                    ),
                )

            await self._record_load(conn, event, sample_no, consent_version, reason, loaded)
            if reason is not None:
                log.warning(
                    "sample quarantined", extra={"sample_id": event.sample_id, "reason": reason}
                )
                return False
            assert loaded is not None
            await enqueue(
                conn,
                event.follow_on(
                    VariantsReady,
                    PRODUCER,
                    event_id=ready_event_id(event.sample_id, event.vcf.sha256),
                    vcf=event.vcf,
                    variants_loaded=loaded.variants_new,
                    genotypes_loaded=loaded.genotypes,
                    # What is known now: calling's estimate, and alignment's if it arrived first
                    # (sample.aligned is consumed apart and may come later).
                    energy=await energy.sample_total(conn, event.sample_id),
                ),
            )
        log.info(
            "sample loaded",
            extra={
                "sample_id": event.sample_id,
                "genotypes": loaded.genotypes,
                "records": stats.records,
                "skipped_symbolic": stats.skipped_symbolic,
            },
        )
        return True

    async def _record_load(
        self,
        conn: Connection,
        event: VariantsCalled,
        sample_no: int,
        consent_version: int | None,
        reason: str | None,
        loaded: LoadCounts | None,
    ) -> None:
        """What every load leaves, loaded or quarantined: the energy it cost, the sample's
        provenance row and its audit row (in the load's transaction)."""
        if event.energy is not None:  # spent whether the sample loads or is quarantined
            await energy.record(
                conn,
                stage=stages.CALLING,
                sample_id=event.sample_id,
                patient_pseudonym=event.patient_pseudonym,
                hospital_id=event.hospital_id,
                estimate=event.energy,
                source_event_id=event.event_id,
            )
        await insert_sample(
            conn,
            event,
            sample_no=sample_no,
            consent_version=consent_version,
            quarantine_reason=reason,
            counts=loaded,
        )
        action, outcome = load_audit(reason)
        await audit.record(
            conn,
            actor=CONSUMER,
            role="service",
            action=action,
            purpose="register called variants",
            outcome=outcome,
            patients=[event.patient_pseudonym],
            details={
                "sample_id": event.sample_id,
                "hospital_id": event.hospital_id,
                "event_id": str(event.event_id),
                "genotypes": loaded.genotypes if loaded else 0,
            },
        )

    async def _write_blocks(
        self,
        conn: Connection,
        event: VariantsCalled,
        vcf: Path,
        sample_no: int,
        stats: ParseStats,
    ) -> LoadCounts:
        """Stage the VCF, number its new alleles and write the sample's blocks."""
        staged = await stage_genotypes(
            conn, read_genotypes(vcf, event.reference.digest, event.sample_id, stats)
        )
        await register_alleles(conn, event.reference.digest, staged)
        await write_blocks(conn, sample_no, event.reference.digest)
        # Each staged row is one allele the sample carries: its variants are its genotypes.
        return LoadCounts(variants_new=staged.rows, genotypes=staged.rows)


async def _removed(conn: Connection, sample_id: str) -> bool:
    """Whether the hospital removed this sample (possibly before its variants arrived)."""
    return bool(
        await conn.fetchval("SELECT true FROM removed_samples WHERE sample_id = $1", sample_id)
    )


async def _refuse_removed(conn: Connection, event: VariantsCalled) -> None:
    """A late load of a removed sample keeps nothing; the audit log says why."""
    await audit.record(
        conn,
        actor=CONSUMER,
        role="service",
        action="sample.load_refused",
        purpose="register called variants",
        outcome="removed before its variants arrived",
        patients=[event.patient_pseudonym],
        details={"sample_id": event.sample_id, "event_id": str(event.event_id)},
    )
    log.warning("sample removed before load: nothing loaded", extra={"sample_id": event.sample_id})
