"""Ingest's settings: Kafka, the object store, PostgreSQL, HTTP and scratch space, plus hospital
credentials and the pseudonym key."""

from __future__ import annotations

import json

from pydantic import Field, field_validator

from genomebus_common.runtime.settings import (
    HttpSettings,
    KafkaSettings,
    ObjectStoreSettings,
    PostgresSettings,
    PseudonymSettings,
    WorkDirSettings,
)


class IngestSettings(
    PseudonymSettings,
    KafkaSettings,
    ObjectStoreSettings,
    PostgresSettings,
    HttpSettings,
    WorkDirSettings,
):
    service_name: str = "ingest"
    hospital_tokens: dict[str, str] = Field(
        default_factory=dict,
        description="JSON object: hospital id -> SHA-256 (hex) of that LIS's bearer token, e.g. "
        '{"RH": "9f86d0..."}. Tokens themselves are never stored.',
    )
    reads_bucket: str = Field("genomebus-reads", description="Bucket for accepted FASTQ files.")
    landing_bucket: str = Field(
        "genomebus-landing", description="Bucket where a LIS may place FASTQ files beforehand."
    )

    sweep_interval_s: float = Field(
        300.0,
        gt=0,
        description="How often ingest looks for samples nothing else would move on "
        "(a check that died half-way, a consent decision that could not be made then).",
    )
    sweep_stale_after_s: float = Field(
        3600.0,
        gt=0,
        description="A sample is swept only when untouched this long (longer than "
        "the longest FASTQ check), so work in progress is left alone.",
    )

    @field_validator("hospital_tokens", mode="before")
    @classmethod
    def _json(cls, value: object) -> object:
        return json.loads(value) if isinstance(value, str) else value
