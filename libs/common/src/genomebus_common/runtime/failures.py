"""Driver errors translated into the contract's error tree (contracts/errors.py).

Each adapter calls one of these at its boundary, so a handler never inspects an aiokafka, minio
or asyncpg exception, and the contracts package never imports a driver.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from collections.abc import Iterator

import asyncpg

from genomebus_common.contracts.errors import (
    BrokerUnavailable,
    DatabaseRejected,
    DatabaseUnavailable,
    DataConflict,
    GenomebusError,
    ObjectNotFound,
    ObjectStoreRejected,
    ObjectStoreUnavailable,
    PermanentError,
    TransientError,
)

_TRANSIENT_OS_ERRNOS = {
    errno.ECONNREFUSED,
    errno.ECONNRESET,
    errno.ECONNABORTED,
    errno.EPIPE,
    errno.ETIMEDOUT,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
}


def is_network_error(exc: BaseException) -> bool:
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError, socket.timeout, ConnectionError)):
        return True
    # A name that does not resolve for a moment (DNS restarting, a Service being recreated).
    if isinstance(exc, socket.gaierror):
        return True
    # asyncio's connect to a name with several addresses, all refused, raises one OSError with
    # no errno ("Multiple exceptions: ..."): the server restarting, seen through "localhost".
    if type(exc) is OSError and exc.errno is None and str(exc).startswith("Multiple exceptions"):
        return True
    return isinstance(exc, OSError) and exc.errno in _TRANSIENT_OS_ERRNOS


def from_kafka_error(exc: BaseException) -> GenomebusError:
    """Map an aiokafka error: retriable broker errors and lost connections are transient."""
    if isinstance(exc, GenomebusError):
        return exc
    from aiokafka import errors as kafka_errors  # type: ignore[import-untyped]  # aiokafka ships no py.typed

    if isinstance(exc, kafka_errors.KafkaError):
        if getattr(exc, "retriable", False) or isinstance(
            exc,
            (
                kafka_errors.KafkaConnectionError,
                kafka_errors.KafkaTimeoutError,
                kafka_errors.NodeNotReadyError,
                kafka_errors.RequestTimedOutError,
                kafka_errors.NotLeaderForPartitionError,
                kafka_errors.LeaderNotAvailableError,
            ),
        ):
            return BrokerUnavailable(f"Kafka: {type(exc).__name__}: {exc}")
        return PermanentError(f"Kafka rejected the request: {type(exc).__name__}: {exc}")
    if is_network_error(exc):
        return BrokerUnavailable(f"Kafka unreachable: {exc}")
    from faststream.exceptions import IncorrectState

    if isinstance(exc, IncorrectState):
        # "connect broker first": this process is starting or stopping; the message is fine.
        return BrokerUnavailable(f"Kafka not connected in this process: {exc}")
    return PermanentError(f"Kafka client error: {type(exc).__name__}: {exc}")


def from_minio_error(exc: BaseException) -> GenomebusError:
    """Map a minio/urllib3 error: server-side 5xx and network faults are transient."""
    if isinstance(exc, GenomebusError):
        return exc
    from minio.error import S3Error, ServerError
    from urllib3.exceptions import HTTPError as Urllib3HTTPError

    if isinstance(exc, S3Error):
        if exc.code in {"NoSuchKey", "NoSuchBucket", "NoSuchObject"}:
            return ObjectNotFound(f"object store: {exc.code}: {exc.resource or exc.message}")
        if exc.code in {
            "SlowDown",
            "InternalError",
            "ServiceUnavailable",
            "RequestTimeout",
            "XMinioServerNotInitialized",
        }:
            return ObjectStoreUnavailable(f"object store: {exc.code}: {exc.message}")
        return ObjectStoreRejected(f"object store: {exc.code}: {exc.message}")
    if isinstance(exc, ServerError):
        return ObjectStoreUnavailable(f"object store server error {exc.status_code}: {exc}")
    if isinstance(exc, Urllib3HTTPError) or is_network_error(exc):
        return ObjectStoreUnavailable(f"object store unreachable: {exc}")
    return PermanentError(f"object store client error: {type(exc).__name__}: {exc}")


def from_asyncpg_error(exc: BaseException) -> GenomebusError:
    """Map an asyncpg error by SQLSTATE class: connection, resource and concurrency are
    transient."""
    if isinstance(exc, GenomebusError):
        return exc
    import asyncpg

    if isinstance(exc, asyncpg.PostgresError):
        sqlstate = getattr(exc, "sqlstate", None) or ""
        # 08 connection, 53 insufficient resources, 57 operator intervention (e.g. shutdown),
        # 40 transaction rollback (serialization failure, deadlock): all may succeed on retry.
        if sqlstate[:2] in {"08", "53", "57", "40"} or sqlstate == "55P03":
            return DatabaseUnavailable(f"PostgreSQL {sqlstate}: {exc}")
        if sqlstate == "23505":
            return DataConflict(f"PostgreSQL unique violation: {exc}")
        return DatabaseRejected(f"PostgreSQL {sqlstate}: {exc}")
    from asyncpg.exceptions._base import DataError as ArgumentError

    if isinstance(exc, ArgumentError):  # an InterfaceError, but our arguments' fault
        return DatabaseRejected(f"PostgreSQL client refused the arguments: {exc}")
    if isinstance(exc, (asyncpg.InterfaceError,)) or is_network_error(exc):
        return DatabaseUnavailable(f"PostgreSQL unreachable: {exc}")
    return PermanentError(f"PostgreSQL client error: {type(exc).__name__}: {exc}")


_TRANSIENT_LOCAL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.ENOMEM, errno.EMFILE}


def from_unexpected(exc: BaseException) -> GenomebusError:
    """Classify an error no adapter mapped: local resource exhaustion and timeouts are
    transient (the next attempt, or another node, may succeed); anything else is a bug or bad
    input, permanent, and goes to the dead-letter topic with its description."""
    if isinstance(exc, GenomebusError):
        return exc
    import asyncpg

    if isinstance(exc, (asyncpg.PostgresError, asyncpg.InterfaceError)):
        # a handler's query outside any adapter (before or after its transaction): a failover
        # is retried, never dead-lettered as an unknown error
        return from_asyncpg_error(exc)
    described = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return TransientError(f"timed out: {described}", code="timeout")
    if isinstance(exc, OSError) and exc.errno in _TRANSIENT_LOCAL_ERRNOS:
        return TransientError(f"local resources exhausted: {described}", code="resources_exhausted")
    if is_network_error(exc):
        return TransientError(f"network: {described}", code="network")
    return PermanentError(f"unexpected error: {described}", code="unexpected_error")


#: What asyncpg raises when the database, or the connection to it, fails.
DATABASE_DRIVER_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    OSError,
)


@contextlib.contextmanager
def database_errors() -> Iterator[None]:
    """Around a database adapter's work: a driver error leaves as the error tree
    (``from_asyncpg_error``), so its caller retries a failover instead of dead-lettering it or
    answering a bare 500; an error already in the tree passes as it is."""
    try:
        yield
    except DATABASE_DRIVER_ERRORS as exc:
        raise from_asyncpg_error(exc) from exc
