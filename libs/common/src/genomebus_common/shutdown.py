"""The process's shutdown flag, on its own so the runtime and the stage toolkit share it without
importing each other.

A service that is stopping (SIGTERM from Kubernetes or an operator) must start no more work and
end what is running: the runtime calls ``begin`` on shutdown; the stage toolkit registers what to
abort (its running tools) and checks ``stopping`` before starting one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

_stopping = threading.Event()
_on_stop: list[Callable[[], int]] = []


def stopping() -> bool:
    """True between ``begin`` and ``resume``: the service is shutting down and starts no more
    tools."""
    return _stopping.is_set()


def resume() -> None:
    """End the stopping state: called when a service starts running. Not when it stops: a
    handler's worker thread that outlives the broker's stop (it is never cancelled) must still
    find the process stopping and start no tool. A test process that runs one service after
    another resumes at each start."""
    _stopping.clear()


def on_stop(abort: Callable[[], int]) -> None:
    """Register what ``begin`` aborts; ``abort`` returns how many things it stopped."""
    if abort not in _on_stop:
        _on_stop.append(abort)


def begin() -> int:
    """Enter the stopping state and abort everything registered; returns how many were running."""
    _stopping.set()
    return sum(abort() for abort in _on_stop)
