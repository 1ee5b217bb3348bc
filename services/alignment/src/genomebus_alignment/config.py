"""Alignment's settings: Kafka, the object store, HTTP, scratch space, the energy estimate and
unit bounds, plus the aligner and its resources."""

from __future__ import annotations

import os
from typing import Literal

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

from .core.chunks import BWA_BATCH_BASES


def _cpu_count() -> int:
    return os.cpu_count() or 2


class AlignmentSettings(
    KafkaSettings,
    ObjectStoreSettings,
    HttpSettings,
    WorkDirSettings,
    EnergySettings,
    ScatterSettings,
):
    service_name: str = "alignment"
    aligner: Literal["bwa", "minimap2"] = Field(
        "bwa", description="bwa mem (default), or minimap2 -ax sr as the fast option."
    )
    threads: int = Field(
        default_factory=_cpu_count,
        ge=1,
        description="Threads for the aligner and samtools.",
        json_schema_extra={DOCUMENTED_DEFAULT: "the machine's CPU count"},
    )
    sort_memory_mb: int = Field(
        512,
        ge=64,
        description="samtools sort memory per thread: bounds memory whatever the sample size.",
    )
    chunk_bases: int = Field(
        500_000_000,
        ge=1,
        description="Bases (both mates) per chunk of reads, each aligned as its own unit of work "
        "by any alignment worker; rounded to whole bwa batches (500M: ~1.7M pairs of 2x150 bp).",
    )
    bwa_batch_bases: int = Field(
        BWA_BATCH_BASES,
        ge=1,
        description="bwa mem -K: bases per batch. Part of what the alignments are (the "
        "insert-size model is per batch): change it only with a new pipeline version.",
    )
    alignments_bucket: str = Field(
        "genomebus-alignments", description="Bucket for BAMs and indexes."
    )
    lanes: list[Priority] = Field(
        default_factory=lambda: list(Priority),
        description="Which priority lanes this worker consumes (comma-separated); run dedicated "
        "urgent_clinical workers so urgent samples never wait behind research.",
    )

    @field_validator("lanes", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return (
            [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value
        )
