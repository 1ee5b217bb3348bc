"""The registry's ports in memory: queries that answer from a table set by the test and record
who asked what, for tests of the HTTP router without PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from genomebus_common.contracts.errors import GenomebusError
from genomebus_registry.core.access import Caller
from genomebus_registry.core.access_log import AccessLog
from genomebus_registry.core.answers import AlleleAnswer, PatientVariants, RegionAnswer
from genomebus_registry.core.cursors import AccessCursor, PatientCursor, RegionCursor
from genomebus_registry.core.energy import SampleEnergy


@dataclass
class MemoryQueries:
    """Answers ``answers[method]`` (or raises it, when it is an error); ``asked`` records every
    call as (method, caller, arguments)."""

    answers: dict[str, Any] = field(default_factory=dict)
    asked: list[tuple[str, Caller, dict[str, Any]]] = field(default_factory=list)

    def _answer(self, method: str, caller: Caller, **arguments: Any) -> Any:
        self.asked.append((method, caller, arguments))
        answer = self.answers[method]
        if isinstance(answer, GenomebusError):
            raise answer
        return answer

    async def allele(
        self, caller: Caller, chrom: str, pos: int, ref: str, alt: str
    ) -> AlleleAnswer:
        answer: AlleleAnswer = self._answer(
            "allele", caller, chrom=chrom, pos=pos, ref=ref, alt=alt
        )
        return answer

    async def region(
        self,
        caller: Caller,
        chrom: str,
        start: int,
        end: int,
        *,
        limit: int,
        after: RegionCursor | None,
    ) -> RegionAnswer:
        answer: RegionAnswer = self._answer(
            "region", caller, chrom=chrom, start=start, end=end, limit=limit, after=after
        )
        return answer

    async def patient_variants(
        self, caller: Caller, pseudonym: str, *, limit: int, after: PatientCursor | None
    ) -> PatientVariants:
        answer: PatientVariants = self._answer(
            "patient_variants", caller, pseudonym=pseudonym, limit=limit, after=after
        )
        return answer

    async def sample_energy(self, caller: Caller, sample_id: str) -> SampleEnergy:
        answer: SampleEnergy = self._answer("sample_energy", caller, sample_id=sample_id)
        return answer

    async def access_log(
        self, caller: Caller, pseudonym: str, *, limit: int, after: AccessCursor | None
    ) -> AccessLog:
        answer: AccessLog = self._answer(
            "access_log", caller, pseudonym=pseudonym, limit=limit, after=after
        )
        return answer
