"""The sweep as a background loop: every so often, move on the samples nothing else would."""

from __future__ import annotations

import asyncio
import logging

from genomebus_common.runtime.background import BackgroundTask

from ..core.ingest import Ingest

log = logging.getLogger("genomebus_ingest.service")


class Sweeper(BackgroundTask):
    """Runs ``Ingest.sweep`` every ``interval_s`` while the service runs (a ``BrokerWorker``)."""

    name = "ingest-sweep"

    def __init__(self, ingest: Ingest, *, interval_s: float, stale_after_s: float) -> None:
        self.ingest = ingest
        self.interval_s = interval_s
        self.stale_after_s = stale_after_s

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.ingest.sweep(self.stale_after_s)
            except Exception as exc:  # noqa: BLE001 - the next round may succeed; never stop sweeping
                log.warning("sweep failed; will retry", extra={"error": str(exc)})
