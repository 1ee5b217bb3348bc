"""``make bench-registry`` keeps working: a tiny run of the real benchmark (three genomes of
20,000 sites on the real PostgreSQL) ends with every goal figure as a ``name: value`` line that
machines read. The figures themselves are the benchmark's business, not this test's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

BENCH = Path(__file__).parents[2] / "bench" / "registry.py"
FIGURES = (
    "genome_load_s",
    "allele_p99_ms",
    "allele_p99_ms_pending50",
    "consent_ratio",
    "region_page_p99_ms",
    "withdrawal_during_load_ms",
    "fold_genomes_per_min",
    "mb_per_genome",
)


def test_the_benchmark_runs_small_and_prints_every_goal_figure(endpoints: dict[str, str]) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--genomes",
            "3",
            "--sites",
            "20000",
            "--queries",
            "40",
            "--fold-batch",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = dict(
        line.split(": ", 1)
        for line in done.stdout.splitlines()
        if line.split(": ", 1)[0] in FIGURES
    )
    assert set(lines) == set(FIGURES), done.stdout[-3000:]
    assert all(float(value) >= 0 for value in lines.values())
    assert "no longer counts the patient" in done.stdout
