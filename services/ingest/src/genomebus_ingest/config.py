"""Ingest's settings: the shared ones plus hospital credentials and the pseudonym key."""

from __future__ import annotations

import json

from pydantic import Field, field_validator

from genomebus_common.settings import PseudonymSettings, ServiceSettings


class IngestSettings(PseudonymSettings, ServiceSettings):
    service_name: str = "ingest"
    hospital_tokens: dict[str, str] = Field(
        default_factory=dict,
        description='JSON object: hospital id -> SHA-256 (hex) of that LIS\'s bearer token, e.g. '
        '{"RH": "9f86d0..."}. Tokens themselves are never stored.',
    )
    reads_bucket: str = Field("genomebus-reads", description="Bucket for accepted FASTQ files.")
    landing_bucket: str = Field(
        "genomebus-landing", description="Bucket where a LIS may place FASTQ files beforehand."
    )

    @field_validator("hospital_tokens", mode="before")
    @classmethod
    def _json(cls, value: object) -> object:
        return json.loads(value) if isinstance(value, str) else value
