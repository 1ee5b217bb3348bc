"""The PostgreSQL store's driver errors leave as the genomebus error tree, in every use case.

Before the reshape only recording a consent mapped them: a failover during a history read, an
access-log read or a sample registration left as a bare driver error (a 500 the client may take
as final). A fake pool stands for a database that went away; no PostgreSQL is needed.
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from genomebus_common.contracts.errors import DatabaseUnavailable
from genomebus_common.contracts.identifiers import Pseudonymiser
from genomebus_consent.adapters.postgres import PostgresConsentStore
from genomebus_consent.core.consents import ConsentService


class GonePool:
    """A pool whose server closed the connection."""

    def acquire(self) -> Any:
        raise ConnectionResetError(104, "Connection reset by peer")


@pytest.fixture
def service() -> ConsentService:
    return ConsentService(
        store=PostgresConsentStore(GonePool()),  # type: ignore[arg-type]  # a stand-in pool
        pseudonymiser=Pseudonymiser.from_secret(secrets.token_hex(32)),
    )


async def test_a_lost_database_is_transient_when_reading(service: ConsentService) -> None:
    pseudonym = "pk1_" + "0" * 64
    with pytest.raises(DatabaseUnavailable):
        await service.history(pseudonym, client="portal")
    with pytest.raises(DatabaseUnavailable):
        await service.access_log(pseudonym, client="portal")
