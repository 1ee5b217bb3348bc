"""Alignment's handler: a received sample in, a checked BAM and a SampleAligned event out.

Idempotent by construction: outputs have one deterministic place per sample, and the event is
written next to them (``RECORD``) before it is published. A redelivered event
finds that record and publishes the same event again (same event id, so downstream consumers
see a duplicate, not a second sample) instead of aligning twice.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

from faststream.kafka import KafkaBroker

from genomebus_common.broker import Delivery
from genomebus_common.consent_view import ConsentView
from genomebus_common.energy import estimate
from genomebus_common.events import SampleRemoved
from genomebus_common.events import Producer, SampleAligned, SampleReceived
from genomebus_common.objectstore import ObjectStore
from genomebus_common.reference import ReferenceRegistry
from genomebus_common.scratch import sample_workdir
from genomebus_common.stage import compute_once_then_publish, remove_outputs
from genomebus_common.tools import metered

from .config import AlignmentSettings
from .pipeline import ReadCountMismatch, align

log = logging.getLogger(__name__)
PRODUCER = Producer(service="alignment", version="0.1.0")
RECORD = "sample-aligned.json"


@dataclass
class AlignSample:
    settings: AlignmentSettings
    store: ObjectStore
    references: ReferenceRegistry
    broker: KafkaBroker
    consent: ConsentView | None = None

    def _prefix(self, sample_id: str) -> str:
        return f"samples/{sample_id}/alignment"

    def _align_and_store(self, event: SampleReceived) -> SampleAligned:
        reference_fasta, _ = self.references.materialise(event.reference)
        with sample_workdir(Path(self.settings.work_dir) / "alignment", event.sample_id) as workdir:
            with (
                self.store.open(event.reads_r1) as r1,
                self.store.open(event.reads_r2) as r2,
                metered() as meter,
            ):
                result = align(
                    r1,  # type: ignore[arg-type]
                    r2,  # type: ignore[arg-type]
                    reference_fasta,
                    event.read_group,
                    workdir,
                    aligner=self.settings.aligner,
                    threads=self.settings.threads,
                    sort_memory_mb=self.settings.sort_memory_mb,
                )
            if result.read_pairs != event.read_pairs:
                raise ReadCountMismatch(
                    f"ingest counted {event.read_pairs} read pairs, alignment read {result.read_pairs}"
                )
            prefix, bucket = self._prefix(event.sample_id), self.settings.alignments_bucket
            bam = self.store.put_file(
                bucket, f"{prefix}/{event.sample_id}.bam", result.bam, content_type="application/x-bam"
            )
            bai = self.store.put_file(bucket, f"{prefix}/{event.sample_id}.bam.bai", result.bai)
        aligned = SampleAligned(
            correlation_id=event.correlation_id,
            sample_id=event.sample_id,
            patient_pseudonym=event.patient_pseudonym,
            reference=event.reference,
            hospital_id=event.hospital_id,
            producer=PRODUCER,
            bam=bam,
            bam_index=bai,
            metrics=result.metrics,
            tools=result.tools,
            energy=estimate(meter, self.settings),
        )
        return aligned

    async def remove(self, event: SampleRemoved, delivery: Delivery) -> None:
        """The hospital withdrew the sample: delete what this stage keeps of it."""
        removed = await asyncio.to_thread(
            remove_outputs, self.store, self.settings.alignments_bucket, self._prefix(event.sample_id),
            event.sample_id, event.reason,
        )
        log.info("sample removed", extra={"sample_id": event.sample_id, "objects_deleted": removed})

    async def __call__(self, event: SampleReceived, delivery: Delivery) -> None:
        def compute() -> SampleAligned:
            log.info("aligning", extra={"sample_id": event.sample_id, "read_pairs": event.read_pairs})
            return self._align_and_store(event)

        published, computed = await compute_once_then_publish(
            self.broker,
            self.store,
            self.settings.alignments_bucket,
            f"{self._prefix(event.sample_id)}/{RECORD}",
            SampleAligned,
            compute,
            source=event,
            consent=self.consent,
        )
        if published is None:
            log.warning("consent withdrawn: sample quarantined", extra={"sample_id": event.sample_id})
        elif not computed:
            log.info("already aligned; published again", extra={"sample_id": event.sample_id})
