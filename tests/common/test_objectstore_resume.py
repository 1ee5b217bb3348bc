"""Reads that survive a cut response: resumed from the byte reached, pinned to the object's
version, checksummed across resumes and bounded. A fake minio client cuts at chosen offsets."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from minio.error import S3Error, ServerError
from urllib3.exceptions import IncompleteRead, ProtocolError, ReadTimeoutError

from genomebus_common.contracts.errors import (
    ChecksumMismatch,
    ObjectNotFound,
    ObjectStoreUnavailable,
)
from genomebus_common.contracts.events import ObjectRef
from genomebus_common.runtime import objectstore
from genomebus_common.runtime.objectstore import ObjectStore


def _protocol_error(read: int, left: int) -> Exception:
    return ProtocolError(
        f"Connection broken: IncompleteRead({read} bytes read, {left} more expected)",
        IncompleteRead(read, left),
    )


class FakeResponse:
    """A body that delivers ``data`` up to ``cut_at`` (absolute offset), then breaks."""

    def __init__(
        self,
        data: bytes,
        offset: int,
        etag: str,
        cut_at: int | None,
        failure: Exception,
        enforce_length: bool,
    ) -> None:
        self.data, self.pos, self.cut_at, self.failure = data, offset, cut_at, failure
        self.enforce_length = enforce_length
        self.headers = {"ETag": etag, "Content-Length": str(len(data) - offset)}
        self.closed = False

    def read(self, amount: int | None = None) -> bytes:
        assert not self.closed
        end = len(self.data) if amount is None else min(len(self.data), self.pos + amount)
        if self.cut_at is not None and self.pos >= self.cut_at:
            if self.enforce_length:
                raise self.failure
            return b""  # a client that does not check Content-Length sees an early end
        if self.cut_at is not None:
            end = min(end, self.cut_at)
        out = self.data[self.pos : end]
        self.pos = end
        return out

    def close(self) -> None:
        self.closed = True

    def release_conn(self) -> None:
        pass


class FakeMinio:
    """Serves one object; each response breaks at the next offset of ``cuts``."""

    def __init__(
        self,
        data: bytes,
        cuts: list[int] | None = None,
        *,
        failure: Exception | None = None,
        enforce_length: bool = True,
    ) -> None:
        self.data = data
        self.etag = '"' + hashlib.md5(data).hexdigest() + '"'
        self.cuts = list(cuts or [])
        self.failure = failure or _protocol_error(0, 0)
        self.enforce_length = enforce_length
        self.requests: list[tuple[int, str | None]] = []
        self.reopen_failures: list[Exception] = []  # raised by get_object, one per call
        self.responses: list[FakeResponse] = []

    def replace(self, data: bytes) -> None:
        self.data = data
        self.etag = '"' + hashlib.md5(data).hexdigest() + '"'

    def get_object(
        self,
        bucket: str,
        key: str,
        offset: int = 0,
        length: int = 0,
        request_headers: dict[str, str] | None = None,
    ) -> FakeResponse:
        if_match = (request_headers or {}).get("If-Match")
        self.requests.append((offset, if_match))
        if self.reopen_failures and self.requests[1:]:
            raise self.reopen_failures.pop(0)
        if if_match is not None and if_match != self.etag:
            raise S3Error(
                None,
                "PreconditionFailed",
                "At least one of the pre-conditions you "  # type: ignore[arg-type]
                "specified did not hold",
                f"/{bucket}/{key}",
                "req",
                "host",
            )
        cut = self.cuts.pop(0) if self.cuts else None
        response = FakeResponse(
            self.data, offset, self.etag, cut, self.failure, self.enforce_length
        )
        self.responses.append(response)
        return response


DATA = os.urandom(1_000_003)


def _ref(data: bytes = DATA) -> ObjectRef:
    return ObjectRef(
        bucket="reads", key="s/1.fastq.gz", sha256=hashlib.sha256(data).hexdigest(), size=len(data)
    )


def _read_all(store: ObjectStore, ref: ObjectRef, chunk: int = 65536) -> tuple[bytes, int]:
    out = bytearray()
    with store.open(ref) as stream:
        while data := stream.read(chunk):
            out += data
        return bytes(out), stream.resumes


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(objectstore.time, "sleep", slept.append)
    return slept


@pytest.mark.parametrize(
    "failure",
    [
        _protocol_error(87_000_000, 151_000_000),
        ConnectionResetError(104, "Connection reset by peer"),
        ReadTimeoutError(None, None, "Read timed out."),  # type: ignore[arg-type]
    ],
    ids=["incomplete-read", "reset", "read-timeout"],
)
def test_every_byte_arrives_once_across_cuts_at_chosen_offsets(
    failure: Exception, sleeps: list[float]
) -> None:
    cuts = [1, 4096, 65536, 500_000, len(DATA) - 1]
    client = FakeMinio(DATA, cuts, failure=failure)
    data, resumes = _read_all(ObjectStore(client), _ref(), chunk=10_000)  # type: ignore[arg-type]
    assert data == DATA and resumes == len(cuts)
    assert client.requests == [(0, None)] + [(cut, client.etag) for cut in cuts]
    assert all(r.closed for r in client.responses)
    assert sleeps == []  # each broken response had delivered bytes: resumed at once


def test_an_early_end_without_an_error_is_resumed_too(sleeps: list[float]) -> None:
    client = FakeMinio(DATA, [300_000], enforce_length=False)
    assert _read_all(ObjectStore(client), _ref()) == (DATA, 1)  # type: ignore[arg-type]


def test_download_resumes(tmp_path: Path, sleeps: list[float]) -> None:
    client = FakeMinio(DATA, [123_457, 777_777])
    target = ObjectStore(client).download(_ref(), tmp_path / "r.fastq.gz")  # type: ignore[arg-type]
    assert target.read_bytes() == DATA and len(client.requests) == 3


def test_the_checksum_spans_the_resumed_bytes(
    sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    """A server that resumes with other bytes under the same ETag is still caught at the end."""
    client = FakeMinio(DATA, [400_000])
    original_get = client.get_object

    def corrupting_get(*args, **kwargs):
        response = original_get(*args, **kwargs)
        if kwargs.get("offset"):
            response.data = DATA[:-1] + bytes([DATA[-1] ^ 1])
        return response

    client.get_object = corrupting_get  # type: ignore[method-assign]
    with pytest.raises(ChecksumMismatch, match="do not have the expected sha256"):
        _read_all(ObjectStore(client), _ref())  # type: ignore[arg-type]
    # what was read is logged for the operator (never in the error a caller may see): all of it
    assert [r.read_bytes for r in caplog.records if hasattr(r, "read_bytes")] == [len(DATA)]


def test_an_object_replaced_while_read_is_refused_not_spliced(sleeps: list[float]) -> None:
    client = FakeMinio(DATA, [200_000])
    received = bytearray()
    with (
        pytest.raises(ChecksumMismatch, match="changed while it was read"),
        ObjectStore(client).open(_ref()) as stream,  # type: ignore[arg-type]
    ):
        received += stream.read(100_000)
        client.replace(os.urandom(len(DATA)))
        while data := stream.read(100_000):
            received += data
    assert bytes(received) == DATA[:200_000]
    assert client.requests[-1] == (200_000, '"' + hashlib.md5(DATA).hexdigest() + '"')


def test_resumes_without_progress_give_up_after_the_bound(sleeps: list[float]) -> None:
    # the first response breaks after 1000 bytes, then every re-open breaks at once
    client = FakeMinio(DATA, [1000, 1000, 1000, 1000, 1000, 1000, 1000])
    client.reopen_failures = [
        ServerError("503 Service Unavailable", 503)
    ]  # one re-open fails outright
    with pytest.raises(ObjectStoreUnavailable, match="gave up after 5 resumes from byte 1000"):
        _read_all(ObjectStore(client), _ref())  # type: ignore[arg-type]
    assert client.requests == [(0, None)] + [(1000, client.etag)] * 5
    assert sleeps == [0.5, 1.0, 2.0, 4.0]


def test_progress_resets_the_bound(sleeps: list[float]) -> None:
    """Many cuts are fine as long as each re-open brings bytes: only stalls are bounded."""
    cuts = list(range(50_000, len(DATA), 50_000))
    client = FakeMinio(DATA, cuts)
    store = ObjectStore(client, resumes_without_progress=1)  # type: ignore[arg-type]
    assert _read_all(store, _ref()) == (DATA, len(cuts))


def test_a_permanent_error_on_reopen_is_not_retried(sleeps: list[float]) -> None:
    client = FakeMinio(DATA, [5000])
    client.reopen_failures = [S3Error(None, "NoSuchKey", "gone", "/reads/k", "r", "h")]  # type: ignore[arg-type]
    with pytest.raises(ObjectNotFound):
        _read_all(ObjectStore(client), _ref())  # type: ignore[arg-type]
    assert len(client.requests) == 2
