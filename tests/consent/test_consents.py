"""Consent's use cases on the in-memory store: what a change records, announces and logs, who
may read and write, and what a refusal leaves behind (nothing but its line in the access log).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

import pytest

from genomebus_common.contracts.events import ResearchUse, SampleRegistered
from genomebus_common.contracts.identifiers import Pseudonymiser, parse_cpr
from genomebus_consent.adapters.memory import MemoryConsentStore
from genomebus_consent.core.consents import ConsentService
from genomebus_consent.core.errors import (
    ConsentNotFound,
    ConsentRejected,
    IdempotencyConflict,
    PortalOnly,
    RestrictionNotYours,
)
from genomebus_consent.core.model import ConsentFacts, ResearchUseChange

from .conftest import consent_body, random_cpr


@dataclass
class CountingRelay:
    notified: int = 0

    def notify(self) -> None:
        self.notified += 1


@dataclass
class Consent:
    """The service on a memory store, with the patient's pseudonym at hand."""

    service: ConsentService
    store: MemoryConsentStore
    relay: CountingRelay = field(default_factory=CountingRelay)

    def pseudonym(self, cpr: str) -> str:
        return self.service.pseudonymiser.pseudonym(parse_cpr(cpr))

    async def treats(self, hospital: str, cpr: str) -> None:
        await self.service.sample_registered(
            SampleRegistered(
                correlation_id=f"{hospital}.treats",
                sample_id=f"{hospital}.S{secrets.token_hex(4)}x",
                patient_pseudonym=self.pseudonym(cpr),
                hospital_id=hospital,
            )
        )


def facts(**overrides: Any) -> ConsentFacts:
    body = consent_body("unused", **overrides)
    del body["national_id"]
    return ConsentFacts.model_validate(body)


WITHDRAWAL = {
    "analysis_consent_given": False,
    "withdrawn": True,
    "research_use": "own_treatment_only",
    "consent_document": None,
    "consent_date": None,
    "reason": "patient withdrew",
}


@pytest.fixture
def consent() -> Consent:
    store = MemoryConsentStore()
    relay = CountingRelay()
    service = ConsentService(
        store=store,
        pseudonymiser=Pseudonymiser.from_secret(secrets.token_hex(32)),
        relay=relay,
        portal_clients=frozenset({"portal"}),
    )
    return Consent(service, store, relay)


async def test_a_change_is_the_next_version_announced_and_logged(consent: Consent) -> None:
    cpr = random_cpr()
    await consent.treats("RH", cpr)
    first = await consent.service.record(cpr, facts(), client="RH", source="api")
    second = await consent.service.record(
        cpr, facts(research_use="own_treatment_only"), client="RH", source="fhir"
    )
    assert (first.created, first.version.version) == (True, 1)
    assert (second.version.version, second.version.source) == (2, "fhir")
    assert second.version.recorded_by_client == "RH"

    pseudonym = consent.pseudonym(cpr)
    history = await consent.service.history(pseudonym, client="RH")
    assert history.current_version == 2
    assert [v.research_use for v in history.versions] == [
        ResearchUse.ALLOWED,
        ResearchUse.OWN_TREATMENT_ONLY,
    ]
    events = consent.store.published
    assert [(e.patient_pseudonym, e.version) for e in events] == [(pseudonym, 1), (pseudonym, 2)]
    assert [e.event_id for e in events] == [first.version.event_id, second.version.event_id]
    assert events[1].research_use is ResearchUse.OWN_TREATMENT_ONLY
    assert cpr not in repr(events) and cpr.replace("-", "") not in repr(events)
    assert consent.relay.notified == 2
    assert consent.store.log_of(pseudonym) == [
        ("RH", "became_treating", "allowed"),
        ("RH", "record", "allowed"),
        ("RH", "record", "allowed"),
        ("RH", "read_history", "allowed"),
    ]


async def test_a_hospital_that_does_not_treat_the_patient_learns_nothing(
    consent: Consent,
) -> None:
    cpr = random_cpr()
    await consent.treats("RH", cpr)
    await consent.service.record(cpr, facts(), client="RH", source="api")
    pseudonym = consent.pseudonym(cpr)

    with pytest.raises(ConsentNotFound) as write:
        await consent.service.record(cpr, facts(reason="probe"), client="OUH", source="api")
    with pytest.raises(ConsentNotFound) as read:
        await consent.service.history(pseudonym, client="OUH")
    unknown = consent.pseudonym(random_cpr())
    with pytest.raises(ConsentNotFound) as read_unknown:
        await consent.service.history(unknown, client="OUH")
    assert str(write.value) == str(read.value) == str(read_unknown.value)

    assert len(consent.store.published) == 1 and consent.relay.notified == 1
    history = await consent.service.history(pseudonym, client="portal")
    assert [v.recorded_by_client for v in history.versions] == ["RH"]
    assert ("OUH", "record", "refused") in consent.store.log_of(pseudonym)
    assert ("OUH", "read_history", "refused") in consent.store.log_of(pseudonym)

    await consent.treats("OUH", cpr)  # once it registers a sample, it treats the patient
    recorded = await consent.service.record(cpr, facts(), client="OUH", source="api")
    assert recorded.version.version == 2


async def test_a_withdrawal_is_a_version_and_must_give_nothing(consent: Consent) -> None:
    cpr = random_cpr()
    await consent.treats("RH", cpr)
    await consent.service.record(cpr, facts(), client="RH", source="api")
    with pytest.raises(ConsentRejected) as caught:
        await consent.service.record(
            cpr,
            facts(**{**WITHDRAWAL, "analysis_consent_given": True, "research_use": "allowed"}),
            client="RH",
            source="api",
        )
    assert {r.split(":")[0] for r in caught.value.reasons} == {
        "analysis_consent_given",
        "research_use",
    }
    withdrawn = await consent.service.record(cpr, facts(**WITHDRAWAL), client="RH", source="api")
    assert withdrawn.version.version == 2 and withdrawn.version.withdrawn
    event = consent.store.published[-1]
    assert event.withdrawn and not event.analysis_consent_given and event.version == 2


async def test_only_the_patient_lifts_a_restriction_the_patient_set(consent: Consent) -> None:
    cpr = random_cpr()
    await consent.treats("RH", cpr)
    await consent.service.record(cpr, facts(), client="RH", source="api")
    await consent.service.record(
        cpr, facts(research_use="own_treatment_only"), client="portal", source="api"
    )
    with pytest.raises(RestrictionNotYours):
        await consent.service.record(cpr, facts(), client="RH", source="api")
    pseudonym = consent.pseudonym(cpr)
    assert consent.store.log_of(pseudonym)[-1] == ("RH", "record", "refused")
    assert [e.version for e in consent.store.published] == [1, 2]

    # a hospital may still record a withdrawal, and the patient may lift the restriction
    await consent.service.record(cpr, facts(**WITHDRAWAL), client="RH", source="api")
    lifted = await consent.service.record(cpr, facts(), client="portal", source="api")
    assert lifted.version.version == 4 and lifted.version.research_use is ResearchUse.ALLOWED


async def test_the_hospital_that_set_a_restriction_may_lift_it_another_may_not(
    consent: Consent,
) -> None:
    cpr = random_cpr()
    for hospital in ("RH", "OUH"):
        await consent.treats(hospital, cpr)
    await consent.service.record(
        cpr, facts(research_use="own_treatment_only"), client="RH", source="api"
    )
    with pytest.raises(RestrictionNotYours):
        await consent.service.record(cpr, facts(), client="OUH", source="api")
    lifted = await consent.service.record(cpr, facts(), client="RH", source="api")
    assert lifted.version.research_use is ResearchUse.ALLOWED
    # lifted, then restricted again by OUH: now OUH's restriction, and RH may not lift it
    await consent.service.record(
        cpr, facts(research_use="own_treatment_only"), client="OUH", source="api"
    )
    with pytest.raises(RestrictionNotYours):
        await consent.service.record(cpr, facts(), client="RH", source="api")


async def test_a_restriction_the_patient_confirmed_is_the_patients(consent: Consent) -> None:
    """RH records the restriction first, the patient confirms it through the portal: RH may no
    longer lift it."""
    cpr = random_cpr()
    await consent.treats("RH", cpr)
    restricted = facts(research_use="own_treatment_only")
    await consent.service.record(cpr, restricted, client="RH", source="api")
    await consent.service.record(cpr, restricted, client="portal", source="api")
    with pytest.raises(RestrictionNotYours):
        await consent.service.record(cpr, facts(), client="RH", source="api")


async def test_a_research_only_change_carries_the_rest_over(consent: Consent) -> None:
    cpr = random_cpr()
    await consent.treats("RH", cpr)
    restrict = ResearchUseChange(
        research_use=ResearchUse.OWN_TREATMENT_ONLY, recorded_by="the patient"
    )
    with pytest.raises(ConsentRejected) as caught:  # nothing to change yet
        await consent.service.record(cpr, restrict, client="portal", source="fhir")
    assert caught.value.reasons[0].startswith("scope:")

    await consent.service.record(cpr, facts(consent_document="RH-DOC-7"), client="RH", source="api")
    changed = await consent.service.record(cpr, restrict, client="portal", source="fhir")
    version = changed.version
    assert (version.version, version.research_use) == (2, ResearchUse.OWN_TREATMENT_ONLY)
    assert version.consent_document == "RH-DOC-7" and version.analysis_consent_given
    assert version.recorded_by == "the patient" and version.reason is None


async def test_an_idempotency_key_replays_its_version_once(consent: Consent) -> None:
    cpr = random_cpr()
    await consent.treats("RH", cpr)
    first = await consent.service.record(
        cpr, facts(), client="RH", source="api", idempotency_key="k1"
    )
    again = await consent.service.record(
        cpr, facts(), client="RH", source="api", idempotency_key="k1"
    )
    assert (first.created, again.created) == (True, False)
    assert again.version == first.version
    assert len(consent.store.published) == 1
    with pytest.raises(IdempotencyConflict):
        await consent.service.record(
            cpr, facts(reason="another"), client="RH", source="api", idempotency_key="k1"
        )
    # the key is the client's own: another client's k1 is a new change
    other = await consent.service.record(
        cpr, facts(), client="portal", source="api", idempotency_key="k1"
    )
    assert other.created and other.version.version == 2


async def test_an_invalid_national_id_is_refused_before_anything(consent: Consent) -> None:
    with pytest.raises(ConsentRejected) as caught:
        await consent.service.record("010101-0000x", facts(), client="portal", source="api")
    assert caught.value.reasons[0].startswith("national_id:")
    assert consent.store.commits == 0 and consent.store.published == []


async def test_the_access_log_is_the_patients_newest_first(consent: Consent) -> None:
    cpr = random_cpr()
    await consent.treats("RH", cpr)
    pseudonym = consent.pseudonym(cpr)
    await consent.service.record(cpr, facts(), client="RH", source="api")
    with pytest.raises(PortalOnly):
        await consent.service.access_log(pseudonym, client="RH")
    log = await consent.service.access_log(pseudonym, client="portal", limit=2)
    assert [(e["client_id"], e["action"]) for e in log] == [
        ("RH", "record"),
        ("RH", "became_treating"),
    ]
    assert "registered sample RH." in log[-1]["purpose"]
    # reading it is logged too, and a second registration by the same hospital is not
    await consent.treats("RH", cpr)
    assert consent.store.log_of(pseudonym)[-1] == ("portal", "read_access_log", "allowed")
