"""Streams SIZE_MB of generated data into MinIO and back in one process; prints JSON figures.

Run in its own process so that its peak resident memory (ru_maxrss) measures this transfer
alone. The data are generated while they stream, so no copy of them exists anywhere else.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import sys
import time

from genomebus_common.runtime.objectstore import ObjectStore
from genomebus_common.runtime.settings import ServiceSettings

CHUNK = 1024 * 1024


class GeneratedStream:
    """``size`` bytes of varied data, made as they are read; hashes them independently."""

    def __init__(self, size: int) -> None:
        self.remaining = size
        self.block = os.urandom(CHUNK)
        self.counter = 0
        self.sha256 = hashlib.sha256()
        self.pending = b""

    def read(self, n: int = -1) -> bytes:
        out = bytearray()
        want = self.remaining if n is None or n < 0 else min(n, self.remaining)
        while len(out) < want:
            if not self.pending:
                self.counter += 1
                self.pending = self.counter.to_bytes(8, "big") + self.block[8:]
            take = self.pending[: want - len(out)]
            self.pending = self.pending[len(take) :]
            out += take
        self.remaining -= len(out)
        self.sha256.update(out)
        return bytes(out)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(bucket: str, size_mb: int) -> None:
    store = ObjectStore.from_settings(ServiceSettings.load())
    store.ensure_bucket(bucket)
    baseline = peak_rss_mb()
    source = GeneratedStream(size_mb * CHUNK)
    started = time.perf_counter()
    ref = store.put_stream(bucket, "big/object.bin", source)  # type: ignore[arg-type]
    uploaded = time.perf_counter()
    read_sha = hashlib.sha256()
    with store.open(ref) as stream:
        while chunk := stream.read(CHUNK):
            read_sha.update(chunk)
    done = time.perf_counter()
    print(
        json.dumps(
            {
                "size": ref.size,
                "generated_sha256": source.sha256.hexdigest(),
                "stored_sha256": ref.sha256,
                "read_sha256": read_sha.hexdigest(),
                "baseline_rss_mb": baseline,
                "peak_rss_mb": peak_rss_mb(),
                "upload_s": uploaded - started,
                "download_s": done - uploaded,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
