"""Session-wide data for the testdata tests: one 200 kb chrX slice and one 30x sample on it.

Made once per session (about 3 s) because several tests read them; nothing here skips: a missing
tool or a missing smalt-examples file raises ToolMissing and the tests error out.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from genomebus_testdata import SimulatedSample, make_reference, read_pairs_for, simulate_sample

LENGTH = 200_000
COVERAGE = 30


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("testdata")


@pytest.fixture(scope="session")
def reference(data_dir: Path) -> Path:
    return make_reference(data_dir / "reference", length=LENGTH)


@pytest.fixture(scope="session")
def sample(reference: Path, data_dir: Path) -> SimulatedSample:
    # A denser indel rate than the human-like default (1e-4) so that 200 kb carry ~100 indels:
    # enough for an indel F1 that means something.
    return simulate_sample(
        reference,
        data_dir / "sample",
        read_pairs=read_pairs_for(COVERAGE, LENGTH),
        seed=11,
        snv_rate=0.001,
        indel_rate=0.0005,
    )
