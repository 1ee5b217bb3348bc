"""Database credentials in the settings: strict outside development, lax on the dev stack."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from genomebus_alignment.config import AlignmentSettings
from genomebus_registry.config import RegistrySettings

TLS = "sslmode=verify-full&sslrootcert=/etc/genomebus/postgres-ca/ca.crt"
RUNTIME = f"postgresql://genomebus_registry_runtime:s3cret@pg:5432/genomebus_registry?{TLS}"
OWNER = f"postgresql://genomebus_registry:0wner@pg:5432/genomebus_registry?{TLS}"


S3 = {"s3_access_key": "svc-registry", "s3_secret_key": "its-own-secret"}  # not MinIO's defaults


def registry(**values: object) -> RegistrySettings:
    return RegistrySettings(_env_file=None, **{**S3, **values})  # type: ignore[call-arg]


def test_production_is_the_default_and_accepts_authenticated_verified_dsns() -> None:
    settings = registry(postgres_dsn=RUNTIME, postgres_migrate_dsn=OWNER)
    assert settings.profile == "production"
    assert registry(postgres_dsn=RUNTIME).postgres_migrate_dsn is None  # an init container migrates


@pytest.mark.parametrize(
    ("dsn", "problem"),
    [
        ("postgresql://postgres@127.0.0.1:5432/genomebus", "has no password"),
        (
            f"postgresql://genomebus_registry_runtime@pg:5432/genomebus_registry?{TLS}",
            "has no password",
        ),
        ("postgresql://r:s3cret@pg:5432/genomebus_registry", "sslmode is 'unset'"),
        (
            "postgresql://r:s3cret@pg:5432/genomebus_registry?sslmode=require",
            "sslmode is 'require'",
        ),
        (
            "postgresql://r:s3cret@pg:5432/genomebus_registry?sslmode=verify-ca",
            "sslmode is 'verify-ca'",
        ),
    ],
)
def test_production_refuses_a_dsn_without_password_or_full_verification(
    dsn: str, problem: str
) -> None:
    with pytest.raises(ValidationError, match=problem):
        registry(postgres_dsn=dsn)
    with pytest.raises(ValidationError, match=f"GENOMEBUS_POSTGRES_MIGRATE_DSN: .*{problem}"):
        registry(postgres_dsn=RUNTIME, postgres_migrate_dsn=dsn)


def test_production_accepts_a_client_certificate_instead_of_a_password() -> None:
    registry(
        postgres_dsn=f"postgresql://r@pg:5432/genomebus_registry?{TLS}"
        "&sslcert=/c/tls.crt&sslkey=/c/tls.key"
    )


def test_production_refuses_the_owner_as_runtime_role() -> None:
    with pytest.raises(ValidationError, match="same role"):
        registry(postgres_dsn=OWNER, postgres_migrate_dsn=OWNER)


def test_the_code_default_dsn_only_works_in_development() -> None:
    with pytest.raises(ValidationError, match="GENOMEBUS_PROFILE=dev"):
        registry()
    assert registry(profile="dev").profile == "dev"


def test_services_without_tables_are_not_held_to_a_dsn_they_never_use() -> None:
    assert AlignmentSettings(_env_file=None, **S3).profile == "production"  # type: ignore[call-arg]


def test_the_profile_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENOMEBUS_PROFILE", "dev")
    assert registry().profile == "dev"
    monkeypatch.setenv("GENOMEBUS_PROFILE", "staging")
    with pytest.raises(ValidationError):
        registry()


def test_minios_default_keys_are_refused_outside_development() -> None:
    """A service that would start against an object store with MinIO's well-known keys."""
    from genomebus_common.runtime.settings import ServiceSettings

    with pytest.raises(ValueError, match="MinIO's default"):
        ServiceSettings(_env_file=None, profile="production")  # type: ignore[call-arg]
    ServiceSettings(
        _env_file=None,
        profile="production",
        s3_access_key="svc-ingest",  # type: ignore[call-arg]
        s3_secret_key="a-real-secret",
    )
    ServiceSettings(_env_file=None, profile="dev")  # type: ignore[call-arg]
