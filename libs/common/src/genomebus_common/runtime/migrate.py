"""``genomebus-migrate [service]``: the migrate step on its own (a Kubernetes init container).

Why apart from the service: whoever holds the owner's password can rewrite the append-only
tables, so on Kubernetes only this short-lived step gets it; the service's container has the
runtime role's credentials alone, and at start only checks that nothing is pending.

It reads the service's own settings (``GENOMEBUS_SERVICE_NAME`` names the service unless given
as an argument): as the owner (``GENOMEBUS_POSTGRES_MIGRATE_DSN``) it applies the service's
migrations and sets its runtime role's grants, for the role ``GENOMEBUS_POSTGRES_DSN`` logs in
as; that login happens once here too, so wrong runtime credentials stop the rollout before the
service starts. Exit status 0 when done, 1 with the reason otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

import asyncpg

from genomebus_common.contracts.errors import GenomebusError
from genomebus_common.runtime.db import service_pool, service_schema
from genomebus_common.runtime.settings import PostgresSettings

log = logging.getLogger(__name__)


class MigrateSettings(PostgresSettings):
    """A database service's settings: its DSNs are checked as the service's own are. Only the
    database fragment: the step never talks to Kafka or the object store, so it is not held to
    (nor given) their credentials; the variables the shared config sets for them are ignored."""


async def run(settings: PostgresSettings) -> None:
    if settings.postgres_migrate_dsn is None:
        raise SystemExit("genomebus-migrate needs GENOMEBUS_POSTGRES_MIGRATE_DSN (the owner's DSN)")
    schema = service_schema(settings.service_name)
    async with service_pool(settings.model_copy(update={"postgres_pool_max": 1}), schema):
        pass
    log.info(
        "database migrated and runtime grants applied",
        extra={"component": schema.component, "migrations": len(schema.migrations)},
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="genomebus-migrate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "service", nargs="?", help="ingest, consent or registry (default: GENOMEBUS_SERVICE_NAME)"
    )
    args = parser.parse_args(argv)
    overrides = {"service_name": args.service} if args.service else {}
    settings = MigrateSettings.load(**overrides)
    from genomebus_common.runtime.telemetry import configure_logging

    configure_logging(settings)
    try:
        asyncio.run(run(settings))
    except (GenomebusError, asyncpg.PostgresError, OSError) as exc:
        print(f"genomebus-migrate: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
