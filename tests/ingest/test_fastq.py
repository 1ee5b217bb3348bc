"""FASTQ pair checks: each defect gets its own precise reason."""

from __future__ import annotations

import gzip
import io

from genomebus_ingest.core.fastq import check_pair

from .fastq_data import pair, records


def _check(r1: bytes, r2: bytes):
    return check_pair(io.BytesIO(r1), io.BytesIO(r2))


def test_a_good_pair_counts_pairs_and_bases() -> None:
    report = _check(*pair(25))
    assert report.ok and report.read_pairs == 25 and report.bases == 25 * 100


def test_casava_style_mate_names_pair_up() -> None:
    r1 = gzip.compress(b"@x 1:N:0:ACGT\nAC\n+\nII\n")
    r2 = gzip.compress(b"@x 2:N:0:ACGT\nGT\n+\nII\n")
    assert _check(r1, r2).ok


def test_truncated_gzip() -> None:
    r1, r2 = pair(200)
    report = _check(r1[: len(r1) // 2], r2)
    assert any("R1: gzip stream is damaged or truncated" in p for p in report.problems)


def test_not_gzip_at_all() -> None:
    r1, r2 = pair(3)
    report = _check(b"".join(records(3, 1)), r2)
    assert any("R1: gzip stream is damaged" in p for p in report.problems)


def test_quality_shorter_than_sequence() -> None:
    bad = records(5, 2)
    bad[3] = b"@read3/2\nACGTACGT\n+\nIIII\n"
    report = _check(pair(5)[0], gzip.compress(b"".join(bad)))
    assert report.problems == ["R2: record 4: sequence has 8 bases but quality has 4 values"]


def test_mismatched_mates() -> None:
    r1 = records(5, 1)
    r2 = records(5, 2)
    r2[2] = r2[2].replace(b"@read2/2", b"@other/2")
    report = _check(gzip.compress(b"".join(r1)), gzip.compress(b"".join(r2)))
    assert report.problems == ["mates differ at record 3: R1 is 'read2', R2 is 'other'"]


def test_different_record_counts() -> None:
    report = _check(gzip.compress(b"".join(records(5, 1))), gzip.compress(b"".join(records(4, 2))))
    assert report.problems == ["mates have different record counts: R1 has 5, R2 has 4"]


def test_incomplete_last_record_and_bad_separator() -> None:
    r1 = gzip.compress(b"".join(records(2, 1)) + b"@read2/1\nACGT\n")
    assert "incomplete record" in _check(r1, pair(3)[1]).problems[0]
    r1 = gzip.compress(b"@read0/1\nACGT\n-\nIIII\n")
    assert "third line must start with '+'" in _check(r1, pair(1)[1]).problems[0]


def test_empty_files() -> None:
    assert _check(gzip.compress(b""), gzip.compress(b"")).problems == ["no reads"]
