"""Calling's settings: Kafka, the object store, HTTP, scratch space, the energy estimate and unit
bounds, plus the caller's resources."""

from __future__ import annotations

import os

from pydantic import Field, field_validator

from genomebus_common.contracts.events import Priority
from genomebus_common.runtime.settings import (
    DOCUMENTED_DEFAULT,
    EnergySettings,
    HttpSettings,
    KafkaSettings,
    ObjectStoreSettings,
    ScatterSettings,
    WorkDirSettings,
)


def _cpu_count() -> int:
    return os.cpu_count() or 2


class CallingSettings(
    KafkaSettings,
    ObjectStoreSettings,
    HttpSettings,
    WorkDirSettings,
    EnergySettings,
    ScatterSettings,
):
    service_name: str = "calling"
    threads: int = Field(
        default_factory=_cpu_count,
        ge=1,
        description="Threads for compression.",
        json_schema_extra={DOCUMENTED_DEFAULT: "the machine's CPU count"},
    )
    region_size_bp: int = Field(
        10_000_000,
        ge=1,
        description="Genome bases per region, each called as its own unit of work by any calling "
        "worker (a 3.1 Gb human genome: ~310 units); small contigs are packed together.",
    )
    lanes: list[Priority] = Field(
        default_factory=lambda: list(Priority),
        description="Which priority lanes' units this worker takes (comma-separated).",
    )
    variants_bucket: str = Field("genomebus-variants", description="Bucket for VCFs and indexes.")

    @field_validator("lanes", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return (
            [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value
        )
