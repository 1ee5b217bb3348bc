"""A bridge from an async byte stream (an HTTP request body) to a blocking reader.

The object store client is synchronous and reads from a file-like object in a worker thread;
the request body arrives as an async iterator. A small bounded queue connects them, so the body
flows through with a few chunks in memory at most, whatever its size.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator
from typing import cast

_END = object()


class QueueReader:
    """A blocking ``read(n)`` over chunks put into a bounded queue by another thread."""

    def __init__(self, max_chunks: int = 8) -> None:
        self.chunks: queue.Queue[object] = queue.Queue(maxsize=max_chunks)
        self._buffer = bytearray()
        self._ended = False
        self.abandoned = threading.Event()

    def offer(self, item: object) -> None:
        """Put ``item``, waiting for room, unless the reader has stopped reading (then drop it):
        a writer thread must never block for ever on a reader that is gone."""
        while not self.abandoned.is_set():
            try:
                self.chunks.put(item, timeout=0.25)
                return
            except queue.Full:
                continue

    def abandon(self) -> None:
        """The reader is done (finished early, or failed): release any waiting writer."""
        self.abandoned.set()

    def read(self, size: int = -1) -> bytes:
        while not self._ended and (size < 0 or len(self._buffer) < size):
            item = self.chunks.get()
            if item is _END:
                self._ended = True
            elif isinstance(item, BaseException):
                raise item
            else:
                self._buffer += cast(bytes, item)  # the only other thing a writer offers
        take = len(self._buffer) if size < 0 else min(size, len(self._buffer))
        data = bytes(self._buffer[:take])
        del self._buffer[:take]
        return data


async def feed(body: AsyncIterator[bytes], reader: QueueReader) -> None:
    """Copy ``body`` into ``reader``'s queue without blocking the event loop."""
    loop = asyncio.get_running_loop()
    try:
        async for chunk in body:
            if chunk:
                await loop.run_in_executor(None, reader.offer, chunk)
    except BaseException as exc:  # the client went away: make the reader fail, not hang
        await loop.run_in_executor(None, reader.offer, ConnectionError(f"upload aborted: {exc!r}"))
        raise
    await loop.run_in_executor(None, reader.offer, _END)
