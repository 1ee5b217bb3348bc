"""Calling's settings: the shared ones plus the caller's resources."""

from __future__ import annotations

import os

from pydantic import Field

from genomebus_common.energy import EnergySettings
from genomebus_common.settings import ServiceSettings


class CallingSettings(ServiceSettings, EnergySettings):
    service_name: str = "calling"
    threads: int = Field(os.cpu_count() or 2, ge=1, description="Threads for compression.")
    variants_bucket: str = Field("genomebus-variants", description="Bucket for VCFs and indexes.")
