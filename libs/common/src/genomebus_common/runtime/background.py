"""Background loops that run beside a service's consumers (a sweep, a fold): one asyncio task,
started and stopped with the service (``ServiceRuntime.keep_running``)."""

from __future__ import annotations

import asyncio
import contextlib


class BackgroundTask:
    """Runs ``run()`` as one task from ``start()``; ``stop()`` cancels it. Only for work that a
    cancellation leaves consistent (a database transaction that rolls back), unlike the outbox
    relay, whose round must finish."""

    name = "background"
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run(self) -> None:
        raise NotImplementedError
