"""Calling's settings: the shared ones plus the caller's resources."""

from __future__ import annotations

import os

from pydantic import Field, field_validator

from genomebus_common.contracts.events import Priority
from genomebus_common.runtime.settings import ScatterSettings, ServiceSettings
from genomebus_common.stagekit.energy import EnergySettings


class CallingSettings(ServiceSettings, EnergySettings, ScatterSettings):
    service_name: str = "calling"
    threads: int = Field(os.cpu_count() or 2, ge=1, description="Threads for compression.")
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
