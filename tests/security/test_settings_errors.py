"""A settings error is printed at start-up, into logs that many people read: it must name what
is wrong, never echo the secrets it was given (the pseudonym key turns national ids into
pseudonyms; a DSN carries a database password)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from genomebus_ingest.config import IngestSettings

KEY = "k3y" * 22
PASSWORD = "s3cret-db-password"


@pytest.mark.parametrize(
    "overrides",
    [
        # production refuses a DSN without TLS: the error must not quote the DSN
        {"postgres_dsn": f"postgresql://ingest:{PASSWORD}@db:5432/genomebus_ingest"},
        # a malformed value next to the secrets
        {"postgres_pool_max": "many", "postgres_dsn": f"postgresql://i:{PASSWORD}@db/x"},
    ],
)
def test_a_refused_setting_does_not_echo_a_secret(overrides: dict[str, str]) -> None:
    with pytest.raises(ValidationError) as refused:
        IngestSettings(
            service_name="ingest",
            pseudonym_key=KEY,
            _env_file=None,  # type: ignore[call-arg]
            **overrides,  # type: ignore[arg-type]
        )
    told = str(refused.value)
    assert "postgres" in told.lower()  # it still says what is wrong
    for secret in (PASSWORD, KEY[-12:]):
        assert secret not in told, f"the error quotes a secret: {told}"
