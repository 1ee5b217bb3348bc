"""Objects in MinIO (or any S3 server) streamed in and out, never whole in memory.

Uploads go through the minio client's multipart upload with an unknown length, so memory is
bounded by the parts in flight (about 2 x ``s3_parallel_uploads`` x ``s3_part_size_mb``); the
SHA-256 is computed on the bytes as they stream.
Reads hand out a stream that hashes what it yields and raises ``ChecksumMismatch`` at the end if
the object is not the one the reference names, so a consumer can never finish a stage on
corrupted input without being told. Failures are mapped to the error tree at this boundary.
A read never depends on the reader keeping pace: a server cuts a response whose reader stops
reading (MinIO after ``--idle-timeout``, 30 s by default, while bwa computes for minutes), so a
cut or broken response is re-opened at the byte reached, pinned to the same object version
(see ``VerifiedStream``).
Bytes are counted as they stream (``genomebus_object_bytes_total``), so a transfer that runs for
an hour shows its progress on a dashboard, not only at its end.

The minio client is synchronous; async code calls these methods through ``asyncio.to_thread``.
"""

from __future__ import annotations

import hashlib
import io
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Protocol, TypeVar

from minio import Minio
from minio.datatypes import Object as ObjectStat
from pydantic import BaseModel

from genomebus_common.contracts.errors import (
    ChecksumMismatch,
    GenomebusError,
    ObjectNotFound,
    ObjectStoreUnavailable,
    TransientError,
)
from genomebus_common.contracts.events import ObjectRef
from genomebus_common.runtime import metrics
from genomebus_common.runtime.failures import from_minio_error, from_unexpected
from genomebus_common.runtime.settings import ObjectStoreSettings

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
_READ_CHUNK = 1024 * 1024
# A response that breaks after delivering bytes is re-opened at once; one that keeps breaking
# without delivering any is given up after this many re-opens, backing off between them (0.5,
# 1, 2, 4 s: about 8 s, the length of a server restart), so a read never loops for ever.
_RESUMES_WITHOUT_PROGRESS = 5
_RESUME_BACKOFF_S = 0.5
_RESUME_BACKOFF_MAX_S = 8.0

log = logging.getLogger(__name__)


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

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]  # io's readers pass these
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class ObjectResponse(Protocol):
    """What a stream reads from: minio's HTTP response (urllib3), or ``_Drained`` at the end.
    Its ``headers`` are read when present (``_etag_of``, ``_declared_end``)."""

    def read(self, amount: int | None = None) -> bytes: ...

    def close(self) -> None: ...

    def release_conn(self) -> None: ...


class _Drained:
    """Stands in for a response once every byte has arrived: reads return nothing."""

    def read(self, amount: int | None = None) -> bytes:
        return b""

    def close(self) -> None:
        pass

    def release_conn(self) -> None:
        pass


def _etag_of(response: ObjectResponse) -> str | None:
    """The object version's ETag, as the server quoted it (``If-Match`` wants it quoted)."""
    etag: str | None = (getattr(response, "headers", None) or {}).get("ETag")
    if not etag:
        return None
    return etag if etag.startswith(('"', "W/")) else f'"{etag}"'


def _declared_end(response: ObjectResponse, offset: int) -> int | None:
    """The byte offset at which ``response`` (starting at ``offset``) says it ends."""
    length: str | None = (getattr(response, "headers", None) or {}).get("Content-Length")
    try:
        return offset + int(length) if length is not None else None
    except ValueError:
        return None


class VerifiedStream(io.RawIOBase):
    """A readable object stream that checks size and SHA-256 when it reaches the end.

    Why it resumes: a server cuts a response whose reader stops reading for longer than its
    idle limit (MinIO: ``--idle-timeout``/``MINIO_IDLE_TIMEOUT``, 30 s by default, a rolling
    write deadline on every connection), and a consumer like bwa reads a batch, then computes
    for minutes. So when the response breaks mid-object (urllib3 ``ProtocolError`` /
    ``IncompleteRead``, a reset, a read timeout, a 5xx on re-open: whatever maps to a
    ``TransientError``), the object is re-opened with a ranged GET from exactly the byte reached.

    Why ``If-Match``: the re-open is pinned to the ETag of the first response, so bytes of an
    object replaced meanwhile are never spliced in; the server's 412 becomes a
    ``ChecksumMismatch`` that says the object changed while it was read. The SHA-256 runs on
    across re-opens, so the final check still covers every byte, and nothing is buffered.

    Why a bound: re-opens that deliver no byte are counted, and after
    ``resumes_without_progress`` of them in a row (with a short backoff) the transient error is
    raised as before, so an object store that is really gone is retried by the handler, not here.
    """

    def __init__(
        self,
        response: ObjectResponse,
        ref: ObjectRef,
        *,
        client: Minio | None = None,
        resumes_without_progress: int = _RESUMES_WITHOUT_PROGRESS,
        resume_backoff_s: float = _RESUME_BACKOFF_S,
    ) -> None:
        self._response = response
        self._ref = ref
        self._client = client
        self._etag = _etag_of(response)
        self._end = _declared_end(response, 0)
        self._sha256 = hashlib.sha256()
        self._size = 0
        self._verified = False
        self._counted = metrics.OBJECT_BYTES.labels("get", ref.bucket)
        self._resumes_without_progress = resumes_without_progress
        self._resume_backoff_s = resume_backoff_s
        self._opened_at = 0  # the offset the current response started at
        self._fruitless = 0  # consecutive re-opens that delivered no byte
        self.resumes = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        amount = None if size is None or size < 0 else size
        if amount == 0:
            return b""
        while True:
            try:
                data = self._response.read(amount)
            except Exception as exc:  # noqa: BLE001 - any read failure: resume at the offset
                self._resume(exc)
                continue
            if not data and self._end is not None and self._size < self._end:
                # a client that does not enforce Content-Length sees a cut as an early end
                self._resume(
                    ConnectionResetError(f"response ended at byte {self._size} of {self._end}")
                )
                continue
            break
        if data:
            self._sha256.update(data)
            self._size += len(data)
            self._counted.inc(len(data))
        else:
            self._verify()
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]  # io's readers pass these
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _resume(self, exc: Exception) -> None:
        """Replace the broken response by one from the byte reached, or raise the error."""
        error: Exception = exc
        while True:
            mapped = from_minio_error(error)
            if not isinstance(mapped, TransientError) or self._client is None or self._etag is None:
                raise mapped from error
            if self._end is not None and self._size >= self._end:
                self._close_response()  # every byte is here: the end check decides
                self._response = _Drained()
                return
            if self._size > self._opened_at:
                self._fruitless = 0
            elif self.resumes:
                self._fruitless += 1
            if self._fruitless >= self._resumes_without_progress:
                raise ObjectStoreUnavailable(
                    f"{mapped} (gave up after {self._fruitless} resumes from byte {self._size} "
                    f"brought no data)"
                ) from error
            if self._fruitless:
                time.sleep(
                    min(self._resume_backoff_s * 2 ** (self._fruitless - 1), _RESUME_BACKOFF_MAX_S)
                )
            self._close_response()
            self.resumes += 1
            self._opened_at = self._size
            log.warning(
                "object read resumed",
                extra={
                    "bucket": self._ref.bucket,
                    "offset": self._size,
                    "resumes": self.resumes,
                    "without_progress": self._fruitless,
                    "error": type(error).__name__,
                },
            )
            try:
                response = self._client.get_object(
                    self._ref.bucket,
                    self._ref.key,
                    offset=self._size,
                    request_headers={"If-Match": self._etag},
                )
            except Exception as reopen_error:
                if getattr(reopen_error, "code", None) == "PreconditionFailed":
                    raise ChecksumMismatch(
                        f"s3://{self._ref.bucket}/{self._ref.key}: the object changed while it was "
                        f"read (ETag no longer {self._etag} at byte {self._size})"
                    ) from reopen_error
                error = reopen_error
                continue
            self._response = response
            self._end = _declared_end(response, self._size)
            return

    def _close_response(self) -> None:
        try:
            self._response.close()
            self._response.release_conn()
        except Exception:  # noqa: BLE001 - a broken connection may fail to close; dropped anyway
            pass

    def _verify(self) -> None:
        if self._verified:
            return
        self._verified = True
        digest = self._sha256.hexdigest()
        if self._size != self._ref.size or digest != self._ref.sha256:
            # What was read stays in the log, never in the error: the error may reach a caller
            # who named an object, and a digest or size of bytes they did not send tells them
            # what the object holds.
            log.warning(
                "object differs from its reference",
                extra={
                    "bucket": self._ref.bucket,
                    "key": self._ref.key,
                    "expected_bytes": self._ref.size,
                    "read_bytes": self._size,
                    "read_sha256": digest,
                },
            )
            raise ChecksumMismatch(
                f"s3://{self._ref.bucket}/{self._ref.key}: the bytes read do not have the expected "
                f"sha256 {self._ref.sha256}"
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
        self,
        client: Minio,
        *,
        part_size: int = 8 * 1024 * 1024,
        parallel_uploads: int = 2,
        resumes_without_progress: int = _RESUMES_WITHOUT_PROGRESS,
        resume_backoff_s: float = _RESUME_BACKOFF_S,
    ) -> None:
        self.client = client
        self.part_size = part_size
        self.parallel_uploads = parallel_uploads
        self.resumes_without_progress = resumes_without_progress
        self.resume_backoff_s = resume_backoff_s

    @classmethod
    def from_settings(cls, settings: ObjectStoreSettings) -> ObjectStore:
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
                if getattr(exc, "code", None) not in {
                    "BucketAlreadyOwnedByYou",
                    "BucketAlreadyExists",
                }:
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
                reader,  # type: ignore[arg-type]  # minio's stub wants a BinaryIO; it only reads
                length=-1,
                part_size=self.part_size,
                num_parallel_uploads=self.parallel_uploads,
                content_type=content_type,
                metadata=metadata,  # type: ignore[arg-type]  # a str dict is what minio sends
            )
        )
        digest = reader.sha256.hexdigest()
        if expected_sha256 is not None and digest != expected_sha256.lower():
            self.remove(bucket, key)
            log.warning(
                "upload differs from its declared sha256",
                extra={"bucket": bucket, "key": key, "received_sha256": digest},
            )
            raise ChecksumMismatch(
                f"s3://{bucket}/{key}: the bytes received do not have the declared sha256 "
                f"{expected_sha256}"
            )
        return ObjectRef(
            bucket=bucket, key=key, sha256=digest, size=reader.size, content_type=content_type
        )

    def put_file(
        self,
        bucket: str,
        key: str,
        path: Path,
        *,
        content_type: str = "application/octet-stream",
        expected_sha256: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> ObjectRef:
        with path.open("rb") as stream:
            return self.put_stream(
                bucket,
                key,
                stream,
                content_type=content_type,
                expected_sha256=expected_sha256,
                metadata=metadata,
            )

    @contextmanager
    def open(self, ref: ObjectRef) -> Iterator[VerifiedStream]:
        """A stream of the object that raises ``ChecksumMismatch`` at its end if it is not ``ref``.

        The stream survives a reader that pauses for longer than the server waits, and any other
        break mid-object, by resuming where it stopped (see ``VerifiedStream``).
        """
        response = self._call(lambda: self.client.get_object(ref.bucket, ref.key))
        stream = VerifiedStream(
            response,
            ref,
            client=self.client,
            resumes_without_progress=self.resumes_without_progress,
            resume_backoff_s=self.resume_backoff_s,
        )
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

    def read_bytes(self, bucket: str, key: str) -> bytes | None:
        """A small object's exact bytes (a record whose digest matters), or None if there is
        none. Whole in memory: for records, never for reads or alignments (``open``)."""
        try:
            response = self._call(lambda: self.client.get_object(bucket, key))
        except ObjectNotFound:
            return None
        try:
            data = self._call(response.read)
            metrics.OBJECT_BYTES.labels("get", bucket).inc(len(data))
            return data
        finally:
            response.close()
            response.release_conn()

    def read_model(self, bucket: str, key: str, model: type[M]) -> M | None:
        """A small JSON record (a manifest, a stage's result), or None if there is none."""
        data = self.read_bytes(bucket, key)
        return None if data is None else model.model_validate_json(data)

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

    def exists_key(self, bucket: str, key: str) -> bool:
        """True if an object is stored under ``key`` (a record, whatever its size)."""
        try:
            self._call(lambda: self.client.stat_object(bucket, key))
        except ObjectNotFound:
            return False
        return True

    def stat(self, bucket: str, key: str) -> ObjectStat:
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


class HtslibS3:
    """How htslib's tools (samtools, bcftools) read an object straight from the store, by ranges.

    A calling unit needs the reads of one region of a BAM that may be 100 GB: with the BAM's
    index, htslib fetches just the blocks that hold them (ranged GETs), so the whole BAM is
    never copied anywhere. Integrity then rests on BGZF's per-block CRC32 rather than the
    object's SHA-256, which only a full read could check; the index itself is small and is
    downloaded verified. Credentials travel in the tool's environment, never on its command line.
    """

    def __init__(self, settings: ObjectStoreSettings) -> None:
        self._settings = settings

    def url(self, ref: ObjectRef) -> str:
        scheme = "s3+https" if self._settings.s3_secure else "s3+http"
        return f"{scheme}://{ref.bucket}/{ref.key}"

    def env(self) -> dict[str, str]:
        settings = self._settings
        env = {
            "AWS_ACCESS_KEY_ID": settings.s3_access_key,
            "AWS_SECRET_ACCESS_KEY": settings.s3_secret_key.get_secret_value(),
            "HTS_S3_HOST": settings.s3_endpoint,
            "HTS_S3_ADDRESS_STYLE": "path",
            # never a profile from a home directory: only what this service was configured with
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            "HTS_S3_S3CFG": "/dev/null",
        }
        if settings.s3_region:
            env["AWS_DEFAULT_REGION"] = settings.s3_region
        return env
