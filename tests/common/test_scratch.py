"""Per-sample scratch: a killed run's files go at the next start, a live run's never do."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from genomebus_common.stagekit.scratch import SampleBusy, remove_abandoned, sample_workdir

# A run in another process that holds its sample's scratch until killed.
_HOLDER = """
import sys, time
from pathlib import Path
from genomebus_common.stagekit.scratch import sample_workdir
with sample_workdir(Path(sys.argv[1]), sys.argv[2]) as work:
    (work / "part.bam").write_bytes(b"x" * 1024)
    print("holding", flush=True)
    time.sleep(600)
"""


def hold(root: Path, sample_id: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(root), sample_id], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
    return proc


def test_a_killed_runs_scratch_is_removed_at_start_and_a_live_runs_is_kept(tmp_path: Path) -> None:
    killed, alive = hold(tmp_path, "S-killed"), hold(tmp_path, "S-alive")
    try:
        os.kill(killed.pid, signal.SIGKILL)  # OOM or SIGKILL: no cleanup ran
        killed.wait()
        assert (tmp_path / "S-killed" / "part.bam").exists()

        assert remove_abandoned(tmp_path) == ["S-killed"]
        assert not (tmp_path / "S-killed").exists()
        assert not (tmp_path / "S-killed.lock").exists()
        assert (tmp_path / "S-alive" / "part.bam").exists(), "a live run's files stay"
    finally:
        alive.kill()
        alive.wait()


def test_a_second_worker_on_the_same_sample_is_refused_not_allowed_to_wipe_the_first(
    tmp_path: Path,
) -> None:
    first = hold(tmp_path, "S-1")
    try:
        with pytest.raises(SampleBusy), sample_workdir(tmp_path, "S-1"):
            pass
        assert (tmp_path / "S-1" / "part.bam").exists()
    finally:
        first.kill()
        first.wait()
    time.sleep(0.05)
    with sample_workdir(tmp_path, "S-1") as work:  # the first is gone: its leftovers with it
        assert list(work.iterdir()) == []
    assert list(tmp_path.iterdir()) == [], "nothing left after a finished run"
