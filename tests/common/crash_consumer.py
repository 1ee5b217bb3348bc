"""A consumer process for the crash test: applies each event's effect once, may hang on purpose.

Run as ``python crash_consumer.py TOPIC GROUP DSN MARKER_DIR MODE`` with the GENOMEBUS_ endpoint
variables set. MODE ``hang-in-transaction`` stops inside the database transaction (before its
commit); ``hang-after-commit`` stops after the database commit but before the Kafka offset
commit; ``normal`` handles and carries on. The test kills a hanging process with SIGKILL.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from genomebus_common.contracts.events import SampleReceived, Stage
from genomebus_common.runtime.broker import Delivery, ReliableConsumer, RetryPolicy, create_broker
from genomebus_common.runtime.db import Migration, connect_pool
from genomebus_common.runtime.inbox import once
from genomebus_common.runtime.settings import ServiceSettings

EFFECTS = Migration(
    "crashtest",
    1,
    "0001_effects.sql",
    "CREATE TABLE effects (sample_id text NOT NULL, pid int NOT NULL)",
)


async def main(topic: str, group: str, dsn: str, markers: Path, mode: str) -> None:
    import os

    settings = ServiceSettings.load(service_name="crashtest")
    broker = create_broker(settings)
    consumer = ReliableConsumer(broker, stage=Stage.ALIGNMENT, group_id=group, retry=RetryPolicy())
    async with connect_pool(dsn, [EFFECTS], max_size=2) as pool:

        async def handle(event: SampleReceived, delivery: Delivery) -> None:
            async with once(pool, group, event, delivery) as conn:
                if conn is None:
                    (markers / f"repeat-{os.getpid()}").write_text(str(event.event_id))
                    return
                await conn.execute(
                    "INSERT INTO effects VALUES ($1, $2)", event.sample_id, os.getpid()
                )
                if mode == "hang-in-transaction":
                    (markers / "in-transaction").touch()
                    await asyncio.sleep(3600)
            if mode == "hang-after-commit":
                (markers / "after-commit").touch()
                await asyncio.sleep(3600)
            (markers / f"handled-{os.getpid()}").write_text(str(event.event_id))

        consumer.subscribe(
            SampleReceived, handle, topic, session_timeout_ms=6000, heartbeat_interval_ms=1000
        )
        async with broker:
            await broker.start()
            (markers / f"started-{os.getpid()}").touch()
            await asyncio.Event().wait()


if __name__ == "__main__":
    topic, group, dsn, markers, mode = sys.argv[1:6]
    asyncio.run(main(topic, group, dsn, Path(markers), mode))
