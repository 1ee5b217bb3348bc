"""The research lane's backlog as the wait bound sees it: per partition, the records alignment's
research group has not consumed, and the age of the oldest of them.

"Waiting" means not yet consumed (alignment commits only after a sample is aligned, so the record
a worker is aligning right now still counts): this errs towards more capacity, never towards a
sample waiting past its limit unnoticed. How it is read from Kafka: ``adapters/backlog.py``.
"""

from __future__ import annotations

from dataclasses import dataclass


class BacklogError(RuntimeError):
    """The backlog could not be measured this round (topic missing, a read timed out)."""


@dataclass(frozen=True)
class PartitionBacklog:
    partition: int
    next_offset: int  # the first record not consumed by the group
    end_offset: int
    oldest_timestamp_ms: int | None  # of the record at next_offset; None when nothing waits

    @property
    def waiting(self) -> int:
        return max(0, self.end_offset - self.next_offset)


@dataclass(frozen=True)
class Backlog:
    """The research lane's backlog at ``measured_at`` (epoch seconds)."""

    measured_at: float
    partitions: tuple[PartitionBacklog, ...]

    @property
    def waiting(self) -> int:
        return sum(p.waiting for p in self.partitions)

    @property
    def oldest_wait_s(self) -> float | None:
        """Age of the oldest waiting record; None when nothing waits. Never negative (a
        producer's clock ahead of ours would otherwise give a sample negative age)."""
        stamps = [
            p.oldest_timestamp_ms for p in self.partitions if p.oldest_timestamp_ms is not None
        ]
        if not stamps:
            return None
        return max(0.0, self.measured_at - min(stamps) / 1000.0)
