"""Settings fragments: a service reads only the adapters it declares, each fragment keeps its
own checks, and the generated configuration references name every variable exactly once."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from genomebus_common import contracts_cli
from genomebus_common.runtime.settings import (
    FRAGMENTS,
    KafkaSettings,
    ObjectStoreSettings,
    PostgresSettings,
    ServiceSettings,
    config_reference,
    declared_fields,
)
from genomebus_common.runtime.settings.reference import shown_default

NO_FILE = {"_env_file": None}
FIT_DSN = "postgresql://r:s3cret@pg:5432/genomebus_x?sslmode=verify-full"


def test_services_without_objects_have_no_s3_settings_and_need_no_keys() -> None:
    for service in ("consent", "heat"):
        cls = contracts_cli.settings_class(service)
        assert not issubclass(cls, ObjectStoreSettings), service
        assert not any(name.startswith("s3_") for name in cls.model_fields), service
    heat = contracts_cli.settings_class("heat")
    assert not issubclass(heat, PostgresSettings)
    heat(**NO_FILE)  # production profile, no S3 keys, no DSN: nothing to refuse


@pytest.mark.parametrize("service", ["ingest", "alignment", "calling", "registry"])
def test_services_with_objects_refuse_minios_default_keys(service: str) -> None:
    cls = contracts_cli.settings_class(service)
    assert issubclass(cls, ObjectStoreSettings)
    extra: dict[str, object] = {"pseudonym_key": "k" * 64, "postgres_dsn": FIT_DSN}
    cls(**NO_FILE, **extra, profile="dev")  # dev allows them
    with pytest.raises(ValidationError, match="MinIO's default"):
        cls(**NO_FILE, **extra, profile="production")


@pytest.mark.parametrize("service", ["ingest", "consent", "registry", "migrate"])
def test_database_services_check_their_dsns_and_others_have_none(service: str) -> None:
    cls = contracts_cli.settings_class(service)
    assert issubclass(cls, PostgresSettings) and cls.uses_database
    keys = {"s3_access_key": "svc", "s3_secret_key": "its-own", "pseudonym_key": "k" * 64}
    with pytest.raises(ValidationError, match="GENOMEBUS_POSTGRES_DSN: .*has no password"):
        cls(**NO_FILE, **keys)
    for other in ("alignment", "calling", "heat"):
        assert "postgres_dsn" not in contracts_cli.settings_class(other).model_fields


def test_the_migrate_step_is_not_held_to_kafka_credentials() -> None:
    migrate = contracts_cli.settings_class("migrate")
    assert not issubclass(migrate, KafkaSettings)
    migrate(**NO_FILE, profile="dev", kafka_security_protocol="SASL_SSL")  # ignored, not refused


def test_sasl_without_a_user_is_refused_by_the_kafka_fragment() -> None:
    with pytest.raises(ValidationError, match="GENOMEBUS_KAFKA_SASL_USERNAME"):
        contracts_cli.settings_class("heat")(**NO_FILE, kafka_security_protocol="SASL_SSL")


def test_the_all_fragments_composition_keeps_its_old_checks() -> None:
    """Tools and tests use ServiceSettings: DSNs unchecked (not a service's database), Kafka
    and object-store checks as before."""
    assert ServiceSettings.uses_database is False
    ServiceSettings(**NO_FILE, profile="production", s3_access_key="a", s3_secret_key="b")
    with pytest.raises(ValidationError, match="SASL"):
        ServiceSettings(**NO_FILE, profile="dev", kafka_security_protocol="SASL_PLAINTEXT")


def test_environment_names_are_the_field_names_with_the_prefix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GENOMEBUS_S3_ENDPOINT", "minio:9000")
    monkeypatch.setenv("GENOMEBUS_HTTP_PORT", "9999")
    monkeypatch.setenv("GENOMEBUS_THREADS", "3")
    alignment = contracts_cli.settings_class("alignment")(**NO_FILE, profile="dev")
    assert (alignment.s3_endpoint, alignment.http_port) == ("minio:9000", 9999)  # type: ignore[attr-defined]
    assert alignment.threads == 3  # type: ignore[attr-defined]


@pytest.mark.parametrize("service", sorted(contracts_cli.SERVICE_SETTINGS))
def test_each_reference_lists_every_variable_once(service: str) -> None:
    cls = contracts_cli.settings_class(service)
    text = config_reference(service, cls)
    for name in cls.model_fields:
        assert text.count(f"| `GENOMEBUS_{name.upper()}` |") == 1, (service, name)
    assert text.count("| `GENOMEBUS_") == len(cls.model_fields)


def test_every_shared_field_belongs_to_exactly_one_fragment() -> None:
    owners = [name for _, fragment in FRAGMENTS for name in declared_fields(fragment)]
    assert len(owners) == len(set(owners))
    assert set(ServiceSettings.model_fields) <= set(owners)


def test_machine_dependent_defaults_are_described_not_computed() -> None:
    """A checked-in reference that printed this machine's CPU count would drift elsewhere."""
    for service, name in (("alignment", "threads"), ("calling", "threads")):
        field = contracts_cli.settings_class(service).model_fields[name]
        assert shown_default(name, field) == "the machine's CPU count"
    namespace = contracts_cli.settings_class("heat").model_fields["heat_namespace"]
    assert "pod's namespace" in shown_default("heat_namespace", namespace)


def test_check_names_a_stale_reference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(contracts_cli, "CONFIG_DOCS_DIR", tmp_path)
    monkeypatch.setattr(contracts_cli, "README", tmp_path / "absent.md")
    stale = contracts_cli.drift()
    assert tmp_path / "heat.md" in stale
    contracts_cli.write()
    assert contracts_cli.drift() == []
    (tmp_path / "heat.md").write_text("edited by hand\n")
    assert contracts_cli.drift() == [tmp_path / "heat.md"]
    assert contracts_cli.main(["check"]) == 1
