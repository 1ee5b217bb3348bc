"""Calling's handler: an aligned sample in, a checked VCF and a VariantsCalled event out.

Idempotent like alignment: one deterministic place per sample, and the event recorded beside
the outputs before it is published, so a redelivery republishes instead of calling again.
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
from genomebus_common.events import Producer, SampleAligned, VariantsCalled
from genomebus_common.objectstore import ObjectStore
from genomebus_common.reference import ReferenceRegistry
from genomebus_common.scratch import sample_workdir
from genomebus_common.stage import compute_once_then_publish, remove_outputs
from genomebus_common.tools import metered

from .config import CallingSettings
from .pipeline import call_variants

log = logging.getLogger(__name__)
PRODUCER = Producer(service="calling", version="0.1.0")
RECORD = "variants-called.json"


@dataclass
class CallSample:
    settings: CallingSettings
    store: ObjectStore
    references: ReferenceRegistry
    broker: KafkaBroker
    consent: ConsentView | None = None

    def _prefix(self, sample_id: str) -> str:
        return f"samples/{sample_id}/calling"

    def _call_and_store(self, event: SampleAligned) -> VariantsCalled:
        reference_fasta, _ = self.references.materialise(event.reference)
        with sample_workdir(Path(self.settings.work_dir) / "calling", event.sample_id) as workdir:
            bam = self.store.download(event.bam, workdir / "input.bam")
            self.store.download(event.bam_index, workdir / "input.bam.bai")
            with metered() as meter:
                result = call_variants(
                    bam, reference_fasta, workdir / "out", threads=self.settings.threads
                )
            prefix, bucket = self._prefix(event.sample_id), self.settings.variants_bucket
            vcf = self.store.put_file(
                bucket, f"{prefix}/{event.sample_id}.vcf.gz", result.vcf, content_type="application/gzip"
            )
            tbi = self.store.put_file(bucket, f"{prefix}/{event.sample_id}.vcf.gz.tbi", result.index)
        called = VariantsCalled(
            correlation_id=event.correlation_id,
            sample_id=event.sample_id,
            patient_pseudonym=event.patient_pseudonym,
            reference=event.reference,
            hospital_id=event.hospital_id,
            producer=PRODUCER,
            bam=event.bam,
            vcf=vcf,
            vcf_index=tbi,
            counts=result.counts,
            tools=result.tools,
            energy=estimate(meter, self.settings),
        )
        return called

    async def remove(self, event: SampleRemoved, delivery: Delivery) -> None:
        """The hospital withdrew the sample: delete what this stage keeps of it."""
        removed = await asyncio.to_thread(
            remove_outputs, self.store, self.settings.variants_bucket, self._prefix(event.sample_id),
            event.sample_id, event.reason,
        )
        log.info("sample removed", extra={"sample_id": event.sample_id, "objects_deleted": removed})

    async def __call__(self, event: SampleAligned, delivery: Delivery) -> None:
        def compute() -> VariantsCalled:
            log.info("calling", extra={"sample_id": event.sample_id})
            return self._call_and_store(event)

        published, computed = await compute_once_then_publish(
            self.broker,
            self.store,
            self.settings.variants_bucket,
            f"{self._prefix(event.sample_id)}/{RECORD}",
            VariantsCalled,
            compute,
            source=event,
            consent=self.consent,
        )
        if published is None:
            log.warning("consent withdrawn: sample quarantined", extra={"sample_id": event.sample_id})
        elif not computed:
            log.info("already called; published again", extra={"sample_id": event.sample_id})
