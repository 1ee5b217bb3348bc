"""Security tests drive the real services as a hostile caller would; they reuse the ingest
fixtures (a real PostgreSQL, MinIO and Kafka behind an ingest app)."""

from __future__ import annotations

from ..ingest.conftest import ingest_settings, lis, toy_reference  # noqa: F401  (fixtures)


import hashlib  # noqa: E402
import json  # noqa: E402
import secrets  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from genomebus_devstack.services import ServiceProcess  # noqa: E402

HOSPITAL_TOKENS = {"RH": secrets.token_urlsafe(16), "OUH": secrets.token_urlsafe(16)}


def digests(tokens: dict[str, str]) -> str:
    return json.dumps({who: hashlib.sha256(token.encode()).hexdigest() for who, token in tokens.items()})


@pytest.fixture(scope="session")
def ingest_process(endpoints: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """Ingest as its own process on the real stack, serving two hospitals."""
    work: Path = tmp_path_factory.mktemp("security-ingest")
    env = {
        **endpoints,
        "GENOMEBUS_PSEUDONYM_KEY": secrets.token_hex(32),
        "GENOMEBUS_HOSPITAL_TOKENS": digests(HOSPITAL_TOKENS),
        "GENOMEBUS_WORK_DIR": str(work / "work"),
    }
    process = ServiceProcess("ingest", env, work / "logs").start()
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()
