"""Ingest's tables: its migrations, and what ingest's runtime role may do with them.

Append-only here: ``rejected_registrations``, the record of what a LIS sent that was refused and
why. Ingest deletes no rows: a withdrawn sample's reads are deleted from the object store and its
row is kept, marked ``removed`` (a record that it existed and was withdrawn); the other services
delete their copies on ``sample.removed``.
"""

from __future__ import annotations

from importlib import resources

from genomebus_common.runtime.db import Migration, Schema, load_migrations
from genomebus_common.runtime.grants import APPEND_ONLY, UPDATABLE, RuntimeGrants

GRANTS = RuntimeGrants(
    {
        "rejected_registrations": APPEND_ONLY,
        # A sample's state moves (awaiting reads, consent, received, quarantined, removed).
        "samples": UPDATABLE,
        # The latest consent version seen per patient (a projection of consent.changed).
        "consents": UPDATABLE,
    }
)


def migrations() -> list[Migration]:
    return load_migrations("ingest", resources.files(__package__) / "migrations")


def schema() -> Schema:
    return Schema("ingest", migrations(), GRANTS)
