"""The registry's settings refuse a disclosure threshold under the floor and a portal client
that claims a hospital: both would quietly widen what a client may learn."""

from __future__ import annotations

import hashlib

import pytest
from pydantic import ValidationError

from genomebus_registry.config import RegistryClient, RegistrySettings
from genomebus_registry.core.disclosure import DEFAULT_MIN_CELL, MIN_CELL_FLOOR

TOKEN = hashlib.sha256(b"t").hexdigest()


def settings(**values: object) -> RegistrySettings:
    return RegistrySettings(_env_file=None, **{"profile": "dev", **values})  # type: ignore[call-arg]


def test_the_threshold_defaults_to_five_and_cannot_go_under_the_floor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert (DEFAULT_MIN_CELL, MIN_CELL_FLOOR) == (5, 3)
    monkeypatch.delenv("GENOMEBUS_MIN_CELL_COUNT", raising=False)
    assert settings().min_cell_count == 5
    assert settings(min_cell_count=MIN_CELL_FLOOR).min_cell_count == 3
    assert settings(min_cell_count=11).min_cell_count == 11
    for too_low in (2, 1, 0):
        with pytest.raises(ValidationError, match="greater than or equal to 3"):
            settings(min_cell_count=too_low)
    monkeypatch.setenv("GENOMEBUS_MIN_CELL_COUNT", "1")
    with pytest.raises(ValidationError):
        settings()


def test_client_roles() -> None:
    assert RegistryClient(token_sha256=TOKEN, role="portal").hospital_id is None
    with pytest.raises(ValidationError, match="portal client has no hospital_id"):
        RegistryClient(token_sha256=TOKEN, role="portal", hospital_id="RH")
    with pytest.raises(ValidationError, match="needs a hospital_id"):
        RegistryClient(token_sha256=TOKEN, role="hospital")
    with pytest.raises(ValidationError):
        RegistryClient(token_sha256=TOKEN, role="admin")  # type: ignore[arg-type]
    parsed = settings(
        registry_clients=f'{{"portal": {{"token_sha256": "{TOKEN}", "role": "portal"}}}}'
    )
    assert parsed.registry_clients["portal"].role == "portal"
