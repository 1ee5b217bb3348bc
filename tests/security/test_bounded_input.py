"""Every input is bounded before it is read, for callers who are not authenticated too.

Observed against the old main: an unauthenticated 200 MB POST to /v1/samples raised ingest's
peak RSS from 78 MB to 750 MB before its 401; a 300 kB gzip FASTQ holding one 300 MiB line
raised it to 690 MB during the check (a 1 MB one passes a pod's 1 GiB limit: OOM-kill, retried
by the sweep, forever). Goal: both refused with ingest's peak RSS growing < 64 MB.
"""

from __future__ import annotations

import hashlib
import io
import zlib

import httpx
import pytest

from genomebus_devstack.services import ServiceProcess

from ..ingest.fastq_data import pair
from .conftest import HOSPITAL_TOKENS
from .processes import peak_rss_mb, post_raw

pytestmark = pytest.mark.integration
GROWTH_LIMIT_MB = 64


def _pid(process: ServiceProcess) -> int:
    assert process.process is not None
    return process.process.pid


def _zeros(total: int, chunk: int = 1 << 20):
    block = b"0" * chunk
    for _ in range(total // chunk):
        yield block


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_an_unauthenticated_200_mb_post_is_refused_before_it_is_read(
    ingest_process: ServiceProcess, declared: bool
) -> None:
    size = 200 * 2**20
    before = peak_rss_mb(_pid(ingest_process))
    headers = {"Content-Type": "application/json"}
    if declared:
        headers["Content-Length"] = str(size)
        body = _zeros(size)
    else:
        headers["Transfer-Encoding"] = "chunked"
        body = (b"%x\r\n%s\r\n" % (len(block), block) for block in _zeros(size))
    answer = post_raw(ingest_process.url, "/v1/samples", headers, body)
    growth = peak_rss_mb(_pid(ingest_process)) - before
    assert answer.sent < 32 * 2**20, (
        f"the server read {answer.sent / 2**20:.0f} MiB before answering"
    )
    assert answer.status in (413, None), f"answered {answer.status}, not 413"
    assert growth < GROWTH_LIMIT_MB, f"ingest's peak RSS grew by {growth:.0f} MB"


def test_a_declared_oversized_body_gets_a_413_problem(ingest_process: ServiceProcess) -> None:
    response = httpx.post(
        f"{ingest_process.url}/v1/samples",
        content=b"{" + b" " * (2 * 2**20) + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/problem+json")


def test_json_nested_100k_deep_is_a_422_not_a_500(ingest_process: ServiceProcess) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    for token in (None, HOSPITAL_TOKENS["RH"]):
        headers = {"Content-Type": "application/json"} | (
            {"Authorization": f"Bearer {token}"} if token else {}
        )
        response = httpx.post(f"{ingest_process.url}/v1/samples", content=deep, headers=headers)
        assert response.status_code == 422, response.text[:200]
        assert "nests deeper" in response.json()["detail"]


def _one_endless_line(size: int) -> bytes:
    """A gzip FASTQ whose first 'line' is ``size`` bytes with no newline: ~1000x compression."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = io.BytesIO()
    out.write(compressor.compress(b"@"))
    block = b"A" * (1 << 20)
    for _ in range(size // len(block)):
        out.write(compressor.compress(block))
    out.write(compressor.flush())
    return out.getvalue()


def test_a_fastq_with_an_endless_line_is_refused_as_soon_as_seen(
    ingest_process: ServiceProcess,
    toy_reference: object,
) -> None:
    from ..ingest.test_api_integration import registration

    bomb = _one_endless_line(300 * 2**20)
    assert len(bomb) < 1_000_000
    _, r2 = pair(4, seed=61)
    lis = httpx.Client(
        base_url=ingest_process.url,
        timeout=120,
        headers={"Authorization": f"Bearer {HOSPITAL_TOKENS['RH']}"},
    )
    body = registration(toy_reference, bomb, r2)  # type: ignore[arg-type]
    sample = lis.post("/v1/samples", json=body).json()
    before = peak_rss_mb(_pid(ingest_process))
    assert lis.put(sample["upload"]["R2"], content=r2).status_code == 200
    checked = lis.put(sample["upload"]["R1"], content=bomb).json()
    growth = peak_rss_mb(_pid(ingest_process)) - before
    assert checked["status"] == "rejected", checked
    assert "longer than" in " ".join(checked["reasons"])
    assert growth < GROWTH_LIMIT_MB, f"ingest's peak RSS grew by {growth:.0f} MB during the check"
    assert hashlib.sha256(bomb).hexdigest() not in str(checked)


def test_the_nesting_check_is_linear_on_crafted_bodies() -> None:
    """It runs before authentication: an unterminated run of escaped quotes once took hours at
    1 MiB (a regex that restarted at every quote); now a fraction of a second. The bound is far
    from both, so the test says "not quadratic", not how fast."""
    import time as clock

    from genomebus_common.runtime.http import json_depth

    def seconds(size: int) -> float:
        body = b'\\"' * (size // 2)
        began = clock.perf_counter()
        json_depth(body)
        return clock.perf_counter() - began

    large = seconds(1024 * 1024)
    assert large < 10.0, f"1 MiB took {large:.1f} s"


def test_a_mate_far_longer_than_the_other_is_counted_not_held() -> None:
    """R1 of one record beside 4 million R2 records (a 93 kB gzip): the check held every R2
    name once R1 had ended (212 MB); now it only counts them."""
    import gzip
    import tracemalloc

    from genomebus_ingest.core.fastq import check_pair

    r1 = gzip.compress(b"@aa/1\nA\n+\nI\n")
    r2 = gzip.compress(b"@aa/2\nA\n+\nI\n" * 4_000_000)
    tracemalloc.start()
    try:
        report = check_pair(io.BytesIO(r1), io.BytesIO(r2))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.problems == ["mates have different record counts: R1 has 1, R2 has 4000000"]
    assert peak < 64 * 2**20, f"the check held {peak / 2**20:.0f} MB"
