"""Consent's settings: Kafka, PostgreSQL, HTTP, client credentials and the pseudonym key; no
object store (consent holds no objects, so it has no S3 identity).

The pseudonym key and its version are read from the same variables as ingest's
(``GENOMEBUS_PSEUDONYM_KEY``, ``GENOMEBUS_PSEUDONYM_KEY_VERSION``): both services must turn one
patient's national id into the same pseudonym, or consent would never reach that patient's samples.
"""

from __future__ import annotations

import json

from pydantic import Field, field_validator

from genomebus_common.runtime.settings import (
    HttpSettings,
    KafkaSettings,
    PostgresSettings,
    PseudonymSettings,
)


class ConsentSettings(PseudonymSettings, KafkaSettings, PostgresSettings, HttpSettings):
    service_name: str = "consent"
    consent_clients: dict[str, str] = Field(
        default_factory=dict,
        description="JSON object: client id (a hospital, the citizen portal) -> SHA-256 (hex) of "
        'its bearer token, e.g. {"RH": "9f86d0...", "portal": "..."}. The client id is recorded '
        "with every consent version it writes. Tokens themselves are never stored.",
    )

    consent_portal_clients: list[str] = Field(
        default_factory=lambda: ["portal"],
        description="JSON list: which of consent_clients are the citizens' portal (acting for "
        "the patient); every other client is a hospital, limited to the patients it treats.",
    )

    @field_validator("consent_clients", "consent_portal_clients", mode="before")
    @classmethod
    def _json(cls, value: object) -> object:
        return json.loads(value) if isinstance(value, str) else value
