"""The real stack: `genomebus stack up` brings Kafka, MinIO and PostgreSQL up and `status` sees
them.

These tests start the stack if it is not running (that is what `up` is for) and leave it running:
other integration tests use it. They fail, never skip, when something is missing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import genomebus_devstack
from genomebus_devstack import kafka, postgres
from genomebus_devstack.paths import Layout

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
COMPONENTS = ("kafka", "minio", "postgres", "tools")


def _cli(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "genomebus_devstack.cli", "stack", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _explain(result: subprocess.CompletedProcess[str]) -> str:
    return (
        f"exit code {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )


@pytest.fixture(scope="module")
def stack_up() -> subprocess.CompletedProcess[str]:
    # A cold machine builds MinIO (minutes); a warm one is up in seconds.
    result = _cli("up", timeout=1800)
    assert result.returncode == 0, f"`genomebus stack up` failed:\n{_explain(result)}"
    return result


def _status_json() -> dict[str, dict[str, object]]:
    result = _cli("status", "--json", timeout=60)
    rows = json.loads(result.stdout)
    return {row["component"]: row for row in rows}


def test_status_reports_all_healthy(stack_up: subprocess.CompletedProcess[str]) -> None:
    result = _cli("status", timeout=60)
    assert result.returncode == 0, (
        f"`genomebus stack status` is not all healthy:\n{_explain(result)}"
    )
    lines = {line.split()[0]: line for line in result.stdout.splitlines()[1:] if line.strip()}
    assert set(lines) == set(COMPONENTS)
    for component in COMPONENTS:
        assert lines[component].split()[1] == "healthy", lines[component]
    rows = _status_json()
    for component in ("kafka", "minio", "postgres"):
        assert rows[component]["healthy"] is True
        assert str(rows[component]["endpoint"]).startswith("127.0.0.1:")
        assert isinstance(rows[component]["pid"], int)


def test_up_twice_is_a_fast_noop(stack_up: subprocess.CompletedProcess[str]) -> None:
    before = _status_json()
    started = time.monotonic()
    result = _cli("up", timeout=120)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, _explain(result)
    assert elapsed < 5.0, f"second `up` took {elapsed:.1f}s:\n{result.stdout}"
    assert result.stdout.count("already running") == 3, result.stdout
    after = _status_json()
    assert {c: after[c]["pid"] for c in after} == {c: before[c]["pid"] for c in before}


async def test_kafka_answers_metadata_request(stack_up: subprocess.CompletedProcess[str]) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    ep = genomebus_devstack.endpoints()
    assert set(ep) == set(genomebus_devstack.ENV_KEYS)

    # The stack's administrator, as its env file names it (SASL SCRAM-SHA-512).
    admin = AIOKafkaAdminClient(
        bootstrap_servers=ep["GENOMEBUS_KAFKA_BOOTSTRAP_SERVERS"],
        security_protocol=ep["GENOMEBUS_KAFKA_SECURITY_PROTOCOL"],
        sasl_mechanism=ep["GENOMEBUS_KAFKA_SASL_MECHANISM"],
        sasl_plain_username=ep["GENOMEBUS_KAFKA_SASL_USERNAME"],
        sasl_plain_password=ep["GENOMEBUS_KAFKA_SASL_PASSWORD"],
    )
    await admin.start()
    try:
        cluster = await admin.describe_cluster()
    finally:
        await admin.close()
    brokers = [f"{b['host']}:{b['port']}" for b in cluster["brokers"]]
    assert brokers == [ep["GENOMEBUS_KAFKA_BOOTSTRAP_SERVERS"]]


def test_endpoints_answer_plain_clients(stack_up: subprocess.CompletedProcess[str]) -> None:
    ep = genomebus_devstack.endpoints()
    kcat = shutil.which("kcat")
    assert kcat, "kcat is missing; `genomebus stack install` should have installed it"
    config = kafka.kcat_config(Layout.discover())  # the administrator over PLAIN
    listing = subprocess.run(
        [kcat, "-F", str(config), "-L", "-b", ep["GENOMEBUS_KAFKA_BOOTSTRAP_SERVERS"], "-m", "5"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert "1 brokers:" in listing.stdout, listing.stdout + listing.stderr
    anonymous = subprocess.run(
        [kcat, "-L", "-b", ep["GENOMEBUS_KAFKA_BOOTSTRAP_SERVERS"], "-m", "5"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert "1 brokers:" not in anonymous.stdout, "Kafka answered a client without credentials"

    url = f"http://{ep['GENOMEBUS_S3_ENDPOINT']}/minio/health/live"
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.status == 200

    port = int(ep["GENOMEBUS_POSTGRES_DSN"].rsplit(":", 1)[1].split("/")[0])
    assert ep["GENOMEBUS_POSTGRES_DSN"].endswith("/genomebus")
    assert postgres.probe(port), f"PostgreSQL on port {port} does not answer in database genomebus"
