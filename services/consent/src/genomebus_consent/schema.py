"""Consent's tables: its migrations, and what consent's runtime role may do with them.

Both tables are append-only. ``consent_versions`` is the history that was acted on: a change is
a new version, never an edit (triggers refuse UPDATE, DELETE and TRUNCATE even to the owner;
the runtime role is refused by its privileges before any trigger runs). ``idempotency_keys``
maps a client's retried request to the version its first attempt made. ``consent_access_log``
is the audit the patient reads; ``treating_hospitals`` only grows.
"""

from __future__ import annotations

from importlib import resources

from genomebus_common.runtime.db import Migration, Schema, load_migrations
from genomebus_common.runtime.grants import APPEND_ONLY, RuntimeGrants

GRANTS = RuntimeGrants(
    {
        "consent_versions": APPEND_ONLY,
        "idempotency_keys": APPEND_ONLY,
        # every read and write of a patient's consent, allowed or refused (the patient reads it)
        "consent_access_log": APPEND_ONLY,
        # who treats whom, from ingest's sample.registered (only ever added to)
        "treating_hospitals": APPEND_ONLY,
    }
)


def migrations() -> list[Migration]:
    return load_migrations("consent", resources.files(__package__) / "migrations")


def schema() -> Schema:
    return Schema("consent", migrations(), GRANTS)
