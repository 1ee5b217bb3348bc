"""The registry's tables: its migrations, and what its runtime role may do with them. At the
package's top, like every service's: `genomebus-migrate` finds it as ``genomebus_<service>.schema``.

Append-only here: ``audit_log`` (who did what, to whose data, why) and ``removed_samples`` (the
tombstones that make a late load refuse a withdrawn sample). The runtime role may DELETE from
three tables only: ``genotype_blocks`` and ``deep_calls`` (a hospital's withdrawal of a sample,
``sample.removed``, takes it out of every view and answer at commit, and the next fold deletes
its genotypes, which is the point of withdrawal; its ``samples`` row stays, marked removed) and
``pending_adjustments`` (folded into the counts). Nothing else is ever deleted by the service,
and nothing may be truncated.
"""

from __future__ import annotations

from importlib import resources

from genomebus_common.runtime.db import Migration, Schema, load_migrations
from genomebus_common.runtime.grants import APPEND_ONLY, READ_ONLY, UPDATABLE, RuntimeGrants

GRANTS = RuntimeGrants(
    {
        "audit_log": APPEND_ONLY,
        "removed_samples": APPEND_ONLY,
        # Loads insert a sample's blocks; a quarantined load takes its own back, and a fold
        # deletes a removed sample's blocks once no pending adjustment names them.
        "genotype_blocks": frozenset({"SELECT", "INSERT", "DELETE"}),
        "deep_calls": frozenset({"SELECT", "INSERT", "DELETE"}),
        "contigs": APPEND_ONLY,
        "variant_alleles": APPEND_ONLY,
        "snv_codes": READ_ONLY,
        # Written by changes, folded (deleted) by the fold.
        "pending_adjustments": frozenset({"SELECT", "INSERT", "DELETE"}),
        # The consent projection, provenance (marked removed or quarantined), and the counts
        # and cohort sizes a fold stores.
        "consents": UPDATABLE,
        "samples": UPDATABLE,
        "variant_counts": UPDATABLE,
        "cohorts": UPDATABLE,
        # Upserted per (sample, stage): a stage that reports again replaces its figures.
        "sample_energy": UPDATABLE,
        # Queries read consent-filtered views (the views read the tables with their owner's rights).
        "research_samples": READ_ONLY,
        "research_genotypes": READ_ONLY,
        "treatment_samples": READ_ONLY,
        "genotype_calls": READ_ONLY,
        "genotype_rows": READ_ONLY,
    },
)


def migrations() -> list[Migration]:
    return load_migrations("registry", resources.files("genomebus_registry") / "migrations")


def schema() -> Schema:
    return Schema("registry", migrations(), GRANTS)
