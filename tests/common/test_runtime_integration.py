"""What a service process's runtime does around its broker when it starts and stops."""

from __future__ import annotations

import pytest

from genomebus_common import shutdown
from genomebus_common.contracts.errors import ToolFailedTransiently
from genomebus_common.contracts.events import Stage
from genomebus_common.runtime.service import ServiceRuntime
from genomebus_common.runtime.settings import ServiceSettings
from genomebus_common.stagekit import tools

pytestmark = pytest.mark.integration


class Worker:
    """Records when the runtime starts and stops it, and whether Kafka was connected then."""

    def __init__(self, runtime: ServiceRuntime, log: list[str]) -> None:
        self.runtime, self.log = runtime, log

    def start(self) -> None:
        self.log.append(f"start, connected={self.runtime.broker._connection is not None}")

    async def stop(self) -> None:
        self.log.append(f"stop, connected={self.runtime.broker._connection is not None}")


async def test_publishing_workers_run_only_while_kafka_is_connected_and_no_tool_starts_after_a_stop(
    settings: ServiceSettings,
) -> None:
    runtime = ServiceRuntime(settings, Stage.ALIGNMENT)
    log: list[str] = []
    runtime.keep_running(Worker(runtime, log))
    async with runtime.running():
        assert log == ["start, connected=True"]
    assert log == ["start, connected=True", "stop, connected=True"]

    # A handler's worker thread outlives the broker's stop: it must find the process stopping.
    assert shutdown.stopping()
    with pytest.raises(ToolFailedTransiently, match="shutting down"):
        tools.run_pipeline([["true"]])

    again = ServiceRuntime(settings, Stage.ALIGNMENT)  # a test process may start another
    async with again.running():
        assert not shutdown.stopping()
        assert tools.run_pipeline([["printf", "ok"]], capture=True) == b"ok"
