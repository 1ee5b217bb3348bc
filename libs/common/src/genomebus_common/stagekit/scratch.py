"""Per-sample scratch directories for tool runs: never shared, never left behind.

A stage works on a sample in ``<root>/<sample_id>``, holding an exclusive ``flock`` on
``<root>/<sample_id>.lock`` for as long as it does. The lock is what makes the directory safe:

- Two processes that share a scratch disk and get the same sample (a rebalance during a long
  run) do not wipe each other's files: the second is refused with a transient error, and its
  message is retried later.
- A run killed outright (OOM, SIGKILL) leaves its directory, sort temp files and half a BAM
  (hundreds of GB on a whole genome) on a disk that outlives the process (a pod's emptyDir
  survives container restarts). The kernel drops a dead process's locks, so at start a service
  removes every directory whose lock nobody holds (``remove_abandoned``), and only those.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from genomebus_common.contracts.errors import TransientError

log = logging.getLogger(__name__)

LOCK_SUFFIX = ".lock"


class SampleBusy(TransientError):
    """Another process on this scratch disk is working on the sample now."""

    code = "sample_busy"


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[bool]:
    """Whether an exclusive lock on ``lock_path`` was had (never waits); released on exit.

    Lock files are removed while locked, so a lock taken on a file that was removed meanwhile
    (opened just before, locked just after) protects nothing: it is dropped and taken again on
    whatever the path names now.
    """
    while True:
        fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            yield False
            return
        try:
            current = os.stat(lock_path).st_ino
        except FileNotFoundError:
            current = None
        if current == os.fstat(fd).st_ino:
            break
        os.close(fd)  # the file was removed under us: try again
    try:
        yield True
    finally:
        os.close(fd)  # closing the last descriptor releases the lock


@contextlib.contextmanager
def sample_workdir(root: Path, sample_id: str) -> Iterator[Path]:
    """An empty ``<root>/<sample_id>`` held by this process alone; removed on exit."""
    root.mkdir(parents=True, exist_ok=True)
    lock_path = root / f"{sample_id}{LOCK_SUFFIX}"
    with _locked(lock_path) as mine:
        if not mine:
            raise SampleBusy(f"sample {sample_id} is being worked on by another process here")
        workdir = root / sample_id
        shutil.rmtree(workdir, ignore_errors=True)  # a killed run's leftovers
        workdir.mkdir()
        try:
            yield workdir
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
            lock_path.unlink(missing_ok=True)


def remove_abandoned(root: Path) -> list[str]:
    """Remove the scratch of runs no live process holds; returns the sample ids removed."""
    if not root.is_dir():
        return []
    removed = []
    names = {p.name.removesuffix(LOCK_SUFFIX) for p in root.iterdir()}
    for name in sorted(names):
        lock_path = root / f"{name}{LOCK_SUFFIX}"
        with _locked(lock_path) as free:
            if not free:
                continue  # a live run: leave it
            if (root / name).exists():
                shutil.rmtree(root / name, ignore_errors=True)
                removed.append(name)
            lock_path.unlink(missing_ok=True)
    if removed:
        log.warning(
            "removed scratch left by killed runs", extra={"root": str(root), "samples": removed}
        )
    return removed
