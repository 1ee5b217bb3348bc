"""The registry's settings: Kafka, the object store (it reads called VCFs), PostgreSQL, HTTP and
scratch space, plus its API clients and disclosure limits."""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from genomebus_common.runtime.settings import (
    HttpSettings,
    KafkaSettings,
    ObjectStoreSettings,
    PostgresSettings,
    WorkDirSettings,
)

from .core.disclosure import DEFAULT_MIN_CELL, MIN_CELL_FLOOR


class RegistryClient(BaseModel):
    """One API client: who it is is the key in ``registry_clients``; this is what it may do."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    token_sha256: str = Field(pattern=r"^[0-9a-fA-F]{64}$", description="SHA-256 of its token.")
    role: Literal["research", "hospital", "portal"] = Field(
        description="research: aggregate counts; hospital: its own patients' genotypes; portal: "
        "the citizens' portal, which shows patients who has read their data (nothing else)."
    )
    hospital_id: str | None = Field(
        None, description="For a hospital client: the hospital whose patients it treats."
    )

    @model_validator(mode="after")
    def _hospital_needs_id(self) -> RegistryClient:
        if self.role == "hospital" and not self.hospital_id:
            raise ValueError("a hospital client needs a hospital_id")
        if self.role == "portal" and self.hospital_id:
            # The portal acts for citizens; a hospital id would make its reads look like care.
            raise ValueError("a portal client has no hospital_id")
        return self


class RegistrySettings(
    KafkaSettings, ObjectStoreSettings, PostgresSettings, HttpSettings, WorkDirSettings
):
    service_name: str = "registry"
    registry_clients: dict[str, RegistryClient] = Field(
        default_factory=dict,
        description='JSON object: client id -> {"token_sha256": "<hex>", "role": "research" | '
        '"hospital" | "portal", "hospital_id": "RH"}. Tokens themselves are never stored.',
    )
    consume_events: bool = Field(
        True,
        description="Consume variants.called and consent.changed in this process; false gives a "
        "query-only replica (the API scales apart from the loaders).",
    )
    min_cell_count: int = Field(
        DEFAULT_MIN_CELL,
        ge=MIN_CELL_FLOOR,
        description="Smallest group of patients a research answer may reveal: fewer carriers, "
        "non-carriers, homozygotes or heterozygotes than this and the counts that would reveal "
        f"them are withheld (docs/security-registry.md). At least {MIN_CELL_FLOOR}.",
    )
    fold_interval_s: float = Field(
        5.0,
        gt=0,
        description="How often an idle registry writer looks for pending count adjustments to "
        "fold into the stored counts (while any are pending it folds batch after batch). "
        "Answers are exact either way; folding keeps them fast and frees removed samples' "
        "blocks.",
    )
    max_region_bp: int = Field(
        100_000, ge=1, description="Longest region one research region query may ask for."
    )

    @field_validator("registry_clients", mode="before")
    @classmethod
    def _json(cls, value: object) -> object:
        return json.loads(value) if isinstance(value, str) else value
