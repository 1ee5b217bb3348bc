"""Ingest's objects in S3: the reads bucket it owns and the landing bucket the LIS fills, and
the reference genomes registered there. Blocking calls, made from a worker thread."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import BinaryIO

from genomebus_common.contracts.events import ObjectRef, ReferenceGenome
from genomebus_common.runtime.objectstore import ObjectStore
from genomebus_common.stagekit.reference import ReferenceRegistry


class S3Reads:
    """``ReadsStore`` on the object store."""

    def __init__(self, store: ObjectStore, *, reads_bucket: str, landing_bucket: str) -> None:
        self.store = store
        self.reads_bucket = reads_bucket
        self.landing_bucket = landing_bucket

    def ensure_buckets(self) -> None:
        for bucket in (self.reads_bucket, self.landing_bucket):
            self.store.ensure_bucket(bucket)

    def put_reads(self, key: str, stream: BinaryIO, expected_sha256: str) -> ObjectRef:
        return self.store.put_stream(
            self.reads_bucket,
            key,
            stream,
            content_type="application/gzip",
            expected_sha256=expected_sha256,
        )

    def remove_reads(self, key: str) -> None:
        self.store.remove(self.reads_bucket, key)

    def landing_object(self, key: str, sha256: str) -> ObjectRef:
        stat = self.store.stat(self.landing_bucket, key)
        size = stat.size  # an object that exists has one
        return ObjectRef(bucket=self.landing_bucket, key=key, sha256=sha256, size=size)  # type: ignore[arg-type]  # minio types it Optional

    def remove_landing(self, key: str) -> None:
        self.store.remove(self.landing_bucket, key)

    def open(self, ref: ObjectRef) -> AbstractContextManager[BinaryIO]:
        return self.store.open(ref)  # type: ignore[return-value]  # a VerifiedStream reads like a BinaryIO


class RegisteredReferences:
    """``References``: the reference genomes registered in the object store."""

    def __init__(self, registry: ReferenceRegistry) -> None:
        self.registry = registry

    def find(self, reference_id: str) -> ReferenceGenome | None:
        manifest = self.registry.find(reference_id)
        return manifest.reference if manifest is not None else None
