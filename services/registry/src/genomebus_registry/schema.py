"""The registry's tables: its migrations, and what the registry's runtime role may do with them.

Append-only here: ``audit_log`` (who did what, to whose data, why) and ``removed_samples`` (the
tombstones that make a late load refuse a withdrawn sample). ``genotypes`` is the one table the
runtime role may DELETE from: a hospital's withdrawal of a sample (``sample.removed``) deletes
that sample's genotypes, which is the point of withdrawal; its ``samples`` row stays, marked
removed. Nothing else is ever deleted by the service, and nothing may be truncated.
"""

from __future__ import annotations

from importlib import resources

from genomebus_common.db import Migration, Schema, load_migrations
from genomebus_common.grants import APPEND_ONLY, READ_ONLY, UPDATABLE, RuntimeGrants

GRANTS = RuntimeGrants(
    {
        "audit_log": APPEND_ONLY,
        "removed_samples": APPEND_ONLY,
        # Loads insert, a withdrawn sample's rows are deleted (never updated).
        "genotypes": frozenset({"SELECT", "INSERT", "DELETE"}),
        "contigs": APPEND_ONLY,
        # The consent projection, provenance (marked removed or quarantined), and the counts
        # kept in the transactions that change them.
        "consents": UPDATABLE,
        "samples": UPDATABLE,
        "variants": UPDATABLE,
        "cohorts": UPDATABLE,
        # Upserted per (sample, stage): a stage that reports again replaces its figures.
        "sample_energy": UPDATABLE,
        # Queries read consent-filtered views (the views read the tables with their owner's rights).
        "research_samples": READ_ONLY,
        "research_genotypes": READ_ONLY,
        "treatment_samples": READ_ONLY,
        "treatment_genotypes": READ_ONLY,
        "genotype_rows": READ_ONLY,
    },
    # Makes a genotypes partition with the owner's rights (migration 0012).
    functions=("registry_ensure_genotypes_partition(integer)",),
)


def migrations() -> list[Migration]:
    return load_migrations("registry", resources.files(__package__) / "migrations")


def schema() -> Schema:
    return Schema("registry", migrations(), GRANTS)
