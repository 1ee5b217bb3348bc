"""Driver errors are mapped to transient or permanent at the boundary."""

from __future__ import annotations

import socket
import subprocess

import asyncpg
import pytest
from aiokafka import errors as kafka_errors
from faststream.exceptions import IncorrectState
from minio.error import S3Error
from urllib3.exceptions import MaxRetryError

from genomebus_common.contracts import errors
from genomebus_common.runtime import failures


def _s3(code: str) -> S3Error:
    return S3Error(None, code, "msg", "/bucket/key", "req", "host")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (kafka_errors.KafkaConnectionError("down"), errors.BrokerUnavailable),
        (kafka_errors.NotLeaderForPartitionError(), errors.BrokerUnavailable),
        (kafka_errors.TopicAuthorizationFailedError(), errors.PermanentError),
        (ConnectionRefusedError(111, "refused"), errors.BrokerUnavailable),
        # Publishing while this process's broker is (re)connecting: the message is not at fault.
        (
            IncorrectState("You can't use producer here, please connect broker first."),
            errors.BrokerUnavailable,
        ),
    ],
)
def test_kafka(exc: BaseException, expected: type) -> None:
    assert type(failures.from_kafka_error(exc)) is expected


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (_s3("NoSuchKey"), errors.ObjectNotFound),
        (_s3("SlowDown"), errors.ObjectStoreUnavailable),
        (_s3("AccessDenied"), errors.ObjectStoreRejected),
        (MaxRetryError(None, "/x", "refused"), errors.ObjectStoreUnavailable),  # type: ignore[arg-type]
    ],
)
def test_minio(exc: BaseException, expected: type) -> None:
    assert type(failures.from_minio_error(exc)) is expected


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (asyncpg.exceptions.SerializationError("x"), errors.DatabaseUnavailable),
        (asyncpg.exceptions.DeadlockDetectedError("x"), errors.DatabaseUnavailable),
        (asyncpg.exceptions.CannotConnectNowError("x"), errors.DatabaseUnavailable),
        (asyncpg.exceptions.UniqueViolationError("x"), errors.DataConflict),
        (asyncpg.exceptions.UndefinedTableError("x"), errors.DatabaseRejected),
        # asyncpg's client-side argument error is an InterfaceError, yet no retry will help
        (
            asyncpg.exceptions._base.DataError("invalid input for query argument $1"),
            errors.DatabaseRejected,
        ),
        (ConnectionResetError(104, "reset"), errors.DatabaseUnavailable),
        # The database's name does not resolve for a moment (DNS or its Service restarting).
        (socket.gaierror(-3, "Temporary failure in name resolution"), errors.DatabaseUnavailable),
        # asyncio's connect to "localhost" (two addresses), both refused: one errno-less error.
        (
            OSError(
                "Multiple exceptions: [Errno 111] Connect call failed ('127.0.0.1', 5432), "
                "[Errno 99] Cannot assign requested address"
            ),
            errors.DatabaseUnavailable,
        ),
    ],
)
def test_postgres(exc: BaseException, expected: type) -> None:
    assert type(failures.from_asyncpg_error(exc)) is expected


def test_every_cause_is_either_transient_or_permanent() -> None:
    leaves = [
        c
        for c in vars(errors).values()
        if isinstance(c, type) and issubclass(c, errors.GenomebusError)
    ]
    for cls in leaves:
        if cls in (errors.GenomebusError,):
            continue
        assert issubclass(cls, (errors.TransientError, errors.PermanentError)), cls


def test_a_version_probe_that_times_out_is_retried_not_dead_lettered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """It runs after hours of alignment: an overloaded host must not fail the sample."""
    from genomebus_common.stagekit import tools

    def slow(*args: object, **kwargs: object) -> None:
        raise subprocess.TimeoutExpired(cmd="samtools --version", timeout=30)

    monkeypatch.setattr(tools.subprocess, "run", slow)
    tools.tool_version.cache_clear()
    try:
        with pytest.raises(errors.TransientError):
            tools.tool_version("samtools-probe-test")
    finally:
        tools.tool_version.cache_clear()


def test_a_database_error_no_adapter_mapped_is_classified_as_the_database_adapter_would() -> None:
    """A handler's query outside a mapped block: a failover is retried, not dead-lettered."""
    assert type(failures.from_unexpected(asyncpg.exceptions.AdminShutdownError("x"))) is (
        errors.DatabaseUnavailable
    )
    assert type(failures.from_unexpected(asyncpg.exceptions.UndefinedTableError("x"))) is (
        errors.DatabaseRejected
    )
