"""Objects streamed into and out of the real MinIO, checksummed both ways."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from genomebus_common.contracts.errors import ChecksumMismatch, ObjectNotFound
from genomebus_common.runtime.objectstore import ObjectStore

pytestmark = pytest.mark.integration


def test_200_mb_streams_in_and_out_with_bounded_memory_and_a_checked_sha256(
    endpoints: dict[str, str], bucket: str
) -> None:
    size_mb = 200
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("stream_proc.py")), bucket, str(size_mb)],
        env={
            **os.environ,
            **endpoints,
            "GENOMEBUS_S3_PART_SIZE_MB": "8",
            "GENOMEBUS_S3_PARALLEL_UPLOADS": "2",
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(proc.stdout)
    print(f"\n200 MB stream: {figures}")
    assert figures["size"] == size_mb * 1024 * 1024
    assert figures["stored_sha256"] == figures["generated_sha256"] == figures["read_sha256"]
    growth = figures["peak_rss_mb"] - figures["baseline_rss_mb"]
    # Two 8 MiB parts in flight, each held about twice by the client, plus buffers: well under
    # 64 MB. Anything that held the object whole would grow by >= 200 MB.
    assert growth < 64, f"memory grew by {growth:.0f} MB while streaming {size_mb} MB"


def test_a_corrupted_or_substituted_object_is_detected_on_read(
    store: ObjectStore, bucket: str
) -> None:
    ref = store.put_stream(bucket, "a.txt", io.BytesIO(b"the right bytes"))
    store.client.put_object(bucket, "a.txt", io.BytesIO(b"the wrong bytes"), 15)
    with (
        pytest.raises(ChecksumMismatch, match="do not have the expected sha256"),
        store.open(ref) as stream,
    ):
        while stream.read(4):
            pass


def test_a_declared_sha256_that_does_not_match_leaves_nothing_behind(
    store: ObjectStore, bucket: str
) -> None:
    with pytest.raises(ChecksumMismatch, match="declared sha256"):
        store.put_stream(bucket, "b.txt", io.BytesIO(b"payload"), expected_sha256="0" * 64)
    assert not list(store.client.list_objects(bucket, prefix="b.txt"))


def test_download_is_verified_and_atomic(store: ObjectStore, bucket: str, tmp_path: Path) -> None:
    ref = store.put_stream(bucket, "c.txt", io.BytesIO(b"abc" * 1000))
    target = store.download(ref, tmp_path / "c.txt")
    assert target.read_bytes() == b"abc" * 1000 and store.exists(ref)
    bad = ref.model_copy(update={"sha256": "f" * 64})
    with pytest.raises(ChecksumMismatch):
        store.download(bad, tmp_path / "d.txt")
    assert not (tmp_path / "d.txt").exists() and not (tmp_path / "d.txt.partial").exists()


def test_a_missing_object_is_a_permanent_not_found(store: ObjectStore, bucket: str) -> None:
    ref = store.put_stream(bucket, "e.txt", io.BytesIO(b"x"))
    store.remove(bucket, "e.txt")
    assert not store.exists(ref)
    with pytest.raises(ObjectNotFound), store.open(ref):
        pass


# MinIO cuts a response whose reader stops reading: its HTTP listener wraps every connection in
# a rolling write deadline of ``--idle-timeout`` (env MINIO_IDLE_TIMEOUT, hidden flag, default
# 30 s; internal/http/server.go DefaultIdleTimeout, applied in internal/http/listener.go Accept
# and internal/deadlineconn). A pause well past it, with far more of the object left than the
# socket buffers hold (4 MiB server send buffer, client receive buffer autotuned to <= 32 MiB
# here), makes the server close the connection mid-object, as bwa's minutes of computing do.
_SERVER_IDLE_LIMIT_S = 30
_PAUSE_S = _SERVER_IDLE_LIMIT_S + 12
_OBJECT_MIB = 128


@pytest.mark.timeout(300)
def test_a_reader_that_pauses_past_the_servers_idle_limit_still_gets_every_byte(
    store: ObjectStore, bucket: str
) -> None:
    from .stream_proc import CHUNK, GeneratedStream

    source = GeneratedStream(_OBJECT_MIB * CHUNK)
    ref = store.put_stream(bucket, "paused/object.bin", source)  # type: ignore[arg-type]
    assert ref.sha256 == source.sha256.hexdigest()
    read_sha = hashlib.sha256()
    read = 0
    try:
        with store.open(ref) as stream:
            while read < 8 * CHUNK:  # bwa's first batch
                chunk = stream.read(CHUNK)
                read_sha.update(chunk)
                read += len(chunk)
            time.sleep(_PAUSE_S)  # bwa computing without reading
            while chunk := stream.read(CHUNK):
                read_sha.update(chunk)
                read += len(chunk)
            resumes = stream.resumes
    finally:
        store.remove(bucket, "paused/object.bin")
    assert read == ref.size == _OBJECT_MIB * CHUNK
    assert read_sha.hexdigest() == ref.sha256
    assert resumes >= 1, "the server did not cut the paused response: is its idle limit longer?"
