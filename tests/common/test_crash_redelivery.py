"""A consumer killed mid-handling: the message comes again and its effect happens once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from genomebus_common.runtime.settings import ServiceSettings

from .factories import sample_received
from .kafka_helpers import create_topics, wait_for

pytestmark = pytest.mark.integration
SCRIPT = Path(__file__).with_name("crash_consumer.py")


def _spawn(endpoints: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, **endpoints, "GENOMEBUS_LOG_LEVEL": "WARNING"}
    return subprocess.Popen([sys.executable, str(SCRIPT), *args], env=env)


@pytest.mark.parametrize("crash_point", ["hang-in-transaction", "hang-after-commit"])
async def test_killed_consumer_redelivers_and_the_effect_happens_once(
    endpoints: dict[str, str],
    settings: ServiceSettings,
    fresh_dsn: str,
    unique: str,
    tmp_path: Path,
    crash_point: str,
) -> None:
    topic, group = f"test.{unique}.crash", f"test-{unique}"
    await create_topics(settings, topic, f"{topic}.dlq")
    event = sample_received(f"S-{unique}")
    first = _spawn(endpoints, topic, group, fresh_dsn, str(tmp_path), crash_point)
    second: subprocess.Popen[bytes] | None = None
    try:
        from genomebus_common.runtime.broker import create_broker

        async with create_broker(settings) as producer:
            await producer.publish(event.to_bytes(), topic=topic, key=event.sample_id.encode())
        marker = "in-transaction" if crash_point == "hang-in-transaction" else "after-commit"
        await wait_for((tmp_path / marker).exists, timeout_s=60, what=marker)
        first.send_signal(signal.SIGKILL)
        first.wait(10)

        second = _spawn(endpoints, topic, group, fresh_dsn, str(tmp_path), "normal")
        outcome = "handled" if crash_point == "hang-in-transaction" else "repeat"
        expected = tmp_path / f"{outcome}-{second.pid}"
        await wait_for(expected.exists, timeout_s=90, what=f"redelivery to {expected.name}")
        assert expected.read_text() == str(event.event_id)
        await asyncio.sleep(1.0)  # room for a wrong second effect to show up

        conn = await asyncpg.connect(fresh_dsn)
        try:
            effects = await conn.fetch("SELECT sample_id, pid FROM effects")
            inbox = await conn.fetchval("SELECT count(*) FROM genomebus_inbox")
        finally:
            await conn.close()
        assert [r["sample_id"] for r in effects] == [event.sample_id], "exactly one effect"
        writer = first.pid if crash_point == "hang-after-commit" else second.pid
        assert effects[0]["pid"] == writer
        assert inbox == 1
    finally:
        for proc in (first, second):
            if proc and proc.poll() is None:
                proc.kill()
                proc.wait(10)
