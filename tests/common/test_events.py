"""The event contracts: what they accept, what they refuse, and how they evolve."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from genomebus_common.contracts import schemas as contracts
from genomebus_common.contracts.events import (
    ALL_EVENTS,
    ConsentChanged,
    ResearchUse,
    SampleReceived,
    schema_id,
)
from genomebus_common.contracts.topics import (
    CONSENT_CHANGED,
    message_key,
    sample_received_topic,
    topic_for,
)

from .factories import PSEUDONYM, sample_received


def test_round_trip_keeps_every_field() -> None:
    event = sample_received("S-42")
    again = SampleReceived.from_bytes(event.to_bytes())
    assert again == event
    assert again.event_id == event.event_id


# Every form parse_cpr accepts, a replacement number without its hyphen too.
@pytest.mark.parametrize(
    "cpr", ["0101901234", "010190-1234", "311299-0001", "010190-1AB2", "0101901AB2", "0101904ABC"]
)
def test_a_national_id_never_travels_in_an_identifier(cpr: str) -> None:
    with pytest.raises(ValidationError, match="national id"):
        sample_received(sample_id=f"S{cpr}")


@pytest.mark.parametrize("cpr", ["010190 1234", "010190-1AB2", "0101901234", "0101904abc"])
def test_a_national_id_never_travels_in_free_text(cpr: str) -> None:
    from genomebus_common.contracts.events import ToolProvenance

    with pytest.raises(ValidationError, match="national id"):
        ToolProvenance(name="bwa", version="0.7.17", command=f"bwa mem -R @RG\\tSM:{cpr}")


def test_a_national_id_is_not_a_pseudonym() -> None:
    with pytest.raises(ValidationError, match="patient_pseudonym"):
        sample_received(patient_pseudonym="0101901234")


def test_long_numeric_lab_ids_that_are_not_dates_are_fine() -> None:
    assert sample_received(sample_id="123456789012").sample_id == "123456789012"


def test_readers_ignore_fields_added_by_newer_producers() -> None:
    payload = json.loads(sample_received().to_bytes())
    payload["added_in_a_later_minor_change"] = {"anything": 1}
    assert SampleReceived.model_validate(payload).sample_id == payload["sample_id"]


def test_another_schema_version_is_refused_not_misread() -> None:
    payload = json.loads(sample_received().to_bytes())
    payload["schema_version"] = 2
    with pytest.raises(ValidationError, match="schema_version"):
        SampleReceived.model_validate(payload)


def test_naive_timestamps_are_refused() -> None:
    payload = json.loads(sample_received().to_bytes())
    payload["occurred_at"] = "2026-11-25T10:00:00"
    with pytest.raises(ValidationError, match="time zone"):
        SampleReceived.model_validate(payload)


def test_bad_sha256_is_refused() -> None:
    payload = json.loads(sample_received().to_bytes())
    payload["reads_r1"]["sha256"] = "XYZ"
    with pytest.raises(ValidationError, match="reads_r1.sha256"):
        SampleReceived.model_validate(payload)


def test_sample_events_are_keyed_by_sample_and_laned_by_priority() -> None:
    urgent = sample_received("S-1", priority="urgent_clinical")
    research = sample_received("S-2", priority="research")
    assert message_key(urgent) == b"S-1"
    assert topic_for(urgent) == sample_received_topic(urgent.priority)
    assert topic_for(urgent) != topic_for(research)


def test_consent_events_are_keyed_by_patient() -> None:
    consent = ConsentChanged(
        correlation_id="c-1",
        patient_pseudonym=PSEUDONYM,
        version=1,
        analysis_consent_given=True,
        research_use=ResearchUse.OWN_TREATMENT_ONLY,
        recorded_by="clinician-7",
    )
    assert topic_for(consent) == CONSENT_CHANGED.name
    assert message_key(consent) == PSEUDONYM.encode()


def test_every_event_has_a_distinct_versioned_schema_id() -> None:
    ids = [schema_id(e) for e in ALL_EVENTS]
    assert len(set(ids)) == len(ids)
    assert all(i.endswith(".v1") for i in ids)


def test_checked_in_contract_documents_match_the_code() -> None:
    assert contracts.drift() == [], "run: .venv/bin/genomebus-contracts generate"


def test_every_generated_document_matches_the_code() -> None:
    """What ``genomebus-contracts check`` runs: the contracts, the README's settings table and
    every service's ``docs/config/<service>.md``."""
    from genomebus_common import contracts_cli

    stale = contracts_cli.drift()
    assert stale == [], f"run: .venv/bin/genomebus-contracts generate ({stale})"
    assert contracts_cli.main(["check"]) == 0


def test_asyncapi_names_every_topic_and_its_dead_letter_topic() -> None:
    document = contracts.asyncapi_document()
    addresses = {c["address"] for c in document["channels"].values()}
    assert "genomebus.sample.aligned" in addresses
    assert "genomebus.sample.aligned.dlq" in addresses
    assert document["asyncapi"] == "3.0.0"
    for message in document["components"]["messages"].values():
        ref = message["payload"].get("$ref")
        if ref:
            assert ref.rsplit("/", 1)[1] in document["components"]["schemas"]


def test_readme_configuration_table_is_current() -> None:
    from genomebus_common.runtime.settings import settings_table

    from ..infra import REPO_ROOT

    readme = (REPO_ROOT / "README.md").read_text()
    start, end = "<!-- settings-table:start -->\n", "\n<!-- settings-table:end -->"
    embedded = readme[readme.index(start) + len(start) : readme.index(end)]
    assert embedded == settings_table(), "regenerate the README's configuration table"
