"""What a hospital's withdrawal of a sample does: the record stays, marked removed with the
reason; its reads go; the landing originals go unless another live sample still names them."""

from __future__ import annotations

from .registration import MATES, SampleRegistration, landing_key_of


def removal_reasons(hospital_id: str, reason: str) -> tuple[str, ...]:
    return (f"removed by {hospital_id}: {reason}",)


def landing_keys_to_delete(registration: SampleRegistration, hospital_id: str) -> list[str]:
    """The landing originals a removal may delete: only under the hospital's own prefix (a
    registration never takes any other key)."""
    keys = (registration.reads.landing_key(mate) for mate in MATES)
    return [key for key in keys if key and landing_key_of(hospital_id, key)]
