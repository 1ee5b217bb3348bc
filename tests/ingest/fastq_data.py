"""Small gzip FASTQ pairs made in the test, with defects on demand."""

from __future__ import annotations

import gzip
import random


def records(n: int, mate: int, *, seed: int = 1, length: int = 50) -> list[bytes]:
    rng = random.Random(seed * 10 + mate)
    out = []
    for i in range(n):
        seq = "".join(rng.choice("ACGT") for _ in range(length))
        out.append(f"@read{i}/{mate}\n{seq}\n+\n{'I' * length}\n".encode())
    return out


def pair(n: int = 20, **kwargs: int) -> tuple[bytes, bytes]:
    return gzip.compress(b"".join(records(n, 1, **kwargs))), gzip.compress(
        b"".join(records(n, 2, **kwargs))
    )
