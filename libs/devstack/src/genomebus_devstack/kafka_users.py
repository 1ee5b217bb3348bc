"""The dev stack's Kafka users: an administrator and one SCRAM-SHA-512 user per bus client.

Why generated here and kept in the state dir: like the ports and the MinIO secret, passwords are
made at the first ``up`` and reused after it, in a file only the owner can read
(``<state>/kafka/users.json``, mode 0600). Nothing is committed and every checkout has its own.

Why the formatter gets salted passwords: under KRaft, SCRAM credentials live in the metadata
log, and ``kafka-storage format --add-scram`` (KIP-900) writes them before the first start.
Given ``salt`` and ``saltedpassword`` instead of ``password``, the clear text never appears on a
command line (where ``ps`` would show it).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Iterable
from pathlib import Path

from .paths import write_private

ADMIN = "admin"
MECHANISM = "SCRAM-SHA-512"
# Kafka's minimum for SCRAM-SHA-512 (ScramMechanism.minIterations); clients learn it from the
# server's first message, so a higher count costs each new connection time and buys nothing here.
ITERATIONS = 4096


def bus_users() -> list[str]:
    """The administrator and every bus client of
    ``genomebus_common.contracts.topics.BUS_CLIENTS``."""
    from genomebus_common.contracts.topics import BUS_CLIENTS

    return [ADMIN, *(client.user for client in BUS_CLIENTS.values())]


def users_file(kafka_home: Path) -> Path:
    return kafka_home / "users.json"


def load(kafka_home: Path) -> dict[str, str]:
    """Passwords by user name ({} before the first ``up``)."""
    path = users_file(kafka_home)
    if not path.is_file():
        return {}
    return dict(json.loads(path.read_text()))


def ensure(kafka_home: Path, wanted: Iterable[str]) -> dict[str, str]:
    """Passwords for every wanted user: existing ones kept, new ones generated and saved."""
    held = load(kafka_home)
    missing = [name for name in wanted if name not in held]
    if missing:
        held.update({name: secrets.token_hex(24) for name in missing})
        save(kafka_home, held)
    return held


def save(kafka_home: Path, users: dict[str, str]) -> None:
    """Atomically, readable by the owner only (it holds the administrator's password)."""
    write_private(users_file(kafka_home), json.dumps(users, indent=1, sort_keys=True) + "\n")


def salted(password: str, salt: bytes, iterations: int = ITERATIONS) -> bytes:
    """SCRAM's SaltedPassword (RFC 5802): PBKDF2 with HMAC-SHA-512."""
    return hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)


def format_argument(name: str, password: str, *, salt: bytes | None = None) -> str:
    """One ``--add-scram`` value for ``StorageTool format``, without the clear-text password."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    return (
        f"{MECHANISM}=[name={name},iterations={ITERATIONS},"
        f'salt="{_b64(salt)}",saltedpassword="{_b64(salted(password, salt))}"]'
    )


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def identity_env(service: str, kafka_home: Path) -> dict[str, str]:
    """The variables that make a process ``service``'s bus client on this stack: its own Kafka
    user (so its ACLs apply, as in production) and no topic creation (``up`` made the topics,
    as Strimzi does). {} for a name the table does not know, or a stack without that user."""
    from genomebus_common.contracts.topics import bus_client

    client = bus_client(service)
    password = load(kafka_home).get(client.user) if client is not None else None
    if client is None or password is None:
        return {}
    return {
        "GENOMEBUS_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "GENOMEBUS_KAFKA_SASL_MECHANISM": MECHANISM,
        "GENOMEBUS_KAFKA_SASL_USERNAME": client.user,
        "GENOMEBUS_KAFKA_SASL_PASSWORD": password,
        "GENOMEBUS_KAFKA_CREATE_TOPICS": "false",
    }
