"""Objects in MinIO (or any S3 server) streamed in and out, never whole in memory.

Uploads go through the minio client's multipart upload with an unknown length, so memory is
bounded by the parts in flight (about 2 x ``s3_parallel_uploads`` x ``s3_part_size_mb``); the SHA-256 is computed on the bytes as they stream.
Reads hand out a stream that hashes what it yields and raises ``ChecksumMismatch`` at the end if
the object is not the one the reference names, so a consumer can never finish a stage on
corrupted input without being told. Failures are mapped to the error tree at this boundary.
Bytes are counted as they stream (``genomebus_object_bytes_total``), so a transfer that runs for
an hour shows its progress on a dashboard, not only at its end.

The minio client is synchronous; async code calls these methods through ``asyncio.to_thread``.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, TypeVar

from minio import Minio
from pydantic import BaseModel

from . import metrics
from .errors import (
    ChecksumMismatch,
    GenomebusError,
    ObjectNotFound,
    from_minio_error,
    from_unexpected,
)
from .events import ObjectRef
from .settings import ServiceSettings

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
_READ_CHUNK = 1024 * 1024


def file_sha256(path: Path) -> str:
    """SHA-256 of a local file, read a MiB at a time (what a LIS declares before uploading)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class _HashingReader(io.RawIOBase):
    """Wraps a readable stream and hashes and counts every byte read through it."""

    def __init__(self, source: BinaryIO, bucket: str = "") -> None:
        self._source = source
        self.sha256 = hashlib.sha256()
        self.size = 0
        self._counted = metrics.OBJECT_BYTES.labels("put", bucket)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        if data:
            self.sha256.update(data)
            self.size += len(data)
            self._counted.inc(len(data))
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class VerifiedStream(io.RawIOBase):
    """A readable object stream that checks size and SHA-256 when it reaches the end."""

    def __init__(self, response, ref: ObjectRef) -> None:  # noqa: ANN001 (urllib3 response)
        self._response = response
        self._ref = ref
        self._sha256 = hashlib.sha256()
        self._size = 0
        self._verified = False
        self._counted = metrics.OBJECT_BYTES.labels("get", ref.bucket)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        try:
            data = self._response.read(None if size is None or size < 0 else size)
        except Exception as exc:
            raise from_minio_error(exc) from exc
        if data:
            self._sha256.update(data)
            self._size += len(data)
            self._counted.inc(len(data))
        else:
            self._verify()
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _verify(self) -> None:
        if self._verified:
            return
        self._verified = True
        digest = self._sha256.hexdigest()
        if self._size != self._ref.size or digest != self._ref.sha256:
            raise ChecksumMismatch(
                f"s3://{self._ref.bucket}/{self._ref.key}: expected {self._ref.size} bytes with "
                f"sha256 {self._ref.sha256}, read {self._size} bytes with sha256 {digest}"
            )

    def close(self) -> None:
        try:
            self._response.close()
            self._response.release_conn()
        finally:
            super().close()


class ObjectStore:
    """Streaming, checksummed access to buckets; all errors are genomebus errors."""

    def __init__(
        self, client: Minio, *, part_size: int = 8 * 1024 * 1024, parallel_uploads: int = 2
    ) -> None:
        self.client = client
        self.part_size = part_size
        self.parallel_uploads = parallel_uploads

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> "ObjectStore":
        client = Minio(
            settings.s3_endpoint,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key.get_secret_value(),
            secure=settings.s3_secure,
            region=settings.s3_region,
        )
        return cls(
            client,
            part_size=settings.s3_part_size_mb * 1024 * 1024,
            parallel_uploads=settings.s3_parallel_uploads,
        )

    def _call(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except GenomebusError:
            raise
        except Exception as exc:
            raise from_minio_error(exc) from exc

    def ensure_bucket(self, bucket: str) -> None:
        if not self._call(lambda: self.client.bucket_exists(bucket)):
            try:
                self.client.make_bucket(bucket)
            except Exception as exc:  # another replica may have made it meanwhile
                if getattr(exc, "code", None) not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                    raise from_minio_error(exc) from exc

    def put_stream(
        self,
        bucket: str,
        key: str,
        stream: BinaryIO,
        *,
        content_type: str = "application/octet-stream",
        expected_sha256: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> ObjectRef:
        """Stream ``stream`` to ``bucket/key`` in parts; returns its reference with SHA-256.

        With ``expected_sha256``, an object whose bytes do not match is removed again and
        ``ChecksumMismatch`` is raised: nothing half-right stays behind.
        """
        reader = _HashingReader(stream, bucket)
        self._call(
            lambda: self.client.put_object(
                bucket,
                key,
                reader,  # type: ignore[arg-type]
                length=-1,
                part_size=self.part_size,
                num_parallel_uploads=self.parallel_uploads,
                content_type=content_type,
                metadata=metadata,  # type: ignore[arg-type]
            )
        )
        digest = reader.sha256.hexdigest()
        if expected_sha256 is not None and digest != expected_sha256.lower():
            self.remove(bucket, key)
            raise ChecksumMismatch(
                f"s3://{bucket}/{key}: declared sha256 {expected_sha256}, received {digest}"
            )
        return ObjectRef(
            bucket=bucket, key=key, sha256=digest, size=reader.size, content_type=content_type
        )

    def put_file(self, bucket: str, key: str, path: Path, **kwargs) -> ObjectRef:  # noqa: ANN003
        with path.open("rb") as stream:
            return self.put_stream(bucket, key, stream, **kwargs)

    @contextmanager
    def open(self, ref: ObjectRef) -> Iterator[VerifiedStream]:
        """A stream of the object that raises ``ChecksumMismatch`` at its end if it is not ``ref``."""
        response = self._call(lambda: self.client.get_object(ref.bucket, ref.key))
        stream = VerifiedStream(response, ref)
        try:
            yield stream
        finally:
            stream.close()

    def download(self, ref: ObjectRef, path: Path) -> Path:
        """Copy the object to ``path`` verified; a partial or wrong file is never left there."""
        partial = path.with_name(path.name + ".partial")
        try:
            with self.open(ref) as stream, partial.open("wb") as out:
                while chunk := stream.read(_READ_CHUNK):
                    out.write(chunk)
            partial.replace(path)
        except OSError as exc:  # a full disk here is this node's problem, not the object's
            raise from_unexpected(exc) from exc
        finally:
            partial.unlink(missing_ok=True)
        return path

    def read_model(self, bucket: str, key: str, model: type[M]) -> M | None:
        """A small JSON record (a manifest, a stage's result), or None if there is none."""
        try:
            response = self._call(lambda: self.client.get_object(bucket, key))
        except ObjectNotFound:
            return None
        try:
            data = self._call(response.read)
            metrics.OBJECT_BYTES.labels("get", bucket).inc(len(data))
            return model.model_validate_json(data)
        finally:
            response.close()
            response.release_conn()

    def write_model(self, bucket: str, key: str, record: BaseModel) -> ObjectRef:
        data = record.model_dump_json(indent=2).encode()
        return self.put_stream(bucket, key, io.BytesIO(data), content_type="application/json")

    def exists(self, ref: ObjectRef) -> bool:
        """True if the object is there with the size the reference names."""
        try:
            stat = self._call(lambda: self.client.stat_object(ref.bucket, ref.key))
        except ObjectNotFound:
            return False
        return stat.size == ref.size

    def stat(self, bucket: str, key: str):  # noqa: ANN201 (minio's Object)
        """The object's metadata; ``ObjectNotFound`` when there is none."""
        return self._call(lambda: self.client.stat_object(bucket, key))

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        """Every key under ``prefix`` (listed in full, so an outage maps to a retry)."""
        return self._call(
            lambda: [
                item.object_name
                for item in self.client.list_objects(bucket, prefix=prefix, recursive=True)
                if item.object_name
            ]
        )

    def remove(self, bucket: str, key: str) -> None:
        self._call(lambda: self.client.remove_object(bucket, key))
