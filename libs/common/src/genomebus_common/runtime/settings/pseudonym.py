"""The pseudonym key, for the services that receive national ids (ingest, consent).

Both read the same variables: one patient's national id must become the same pseudonym in
each, or consent would never reach that patient's samples.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings

from genomebus_common.runtime.settings.base import SETTINGS_CONFIG

if TYPE_CHECKING:
    from genomebus_common.contracts.identifiers import Pseudonymiser


class PseudonymSettings(BaseSettings):
    """The keyed HMAC's secret and version (mixed into ingest's and consent's settings)."""

    model_config = SETTINGS_CONFIG

    pseudonym_key: SecretStr = Field(
        description="Secret for the keyed HMAC that turns national ids into pseudonyms: 64 hex "
        "digits or 32+ bytes of text. Only ingest and consent hold it.",
    )
    pseudonym_key_version: int = Field(1, ge=1, description="Version written into pseudonyms.")

    def pseudonymiser(self) -> Pseudonymiser:
        from genomebus_common.contracts.identifiers import Pseudonymiser

        return Pseudonymiser.from_secret(
            self.pseudonym_key.get_secret_value(), self.pseudonym_key_version
        )
