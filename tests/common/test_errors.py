"""Driver errors are mapped to transient or permanent at the boundary."""

from __future__ import annotations

import asyncpg
import pytest
from aiokafka import errors as kafka_errors
from faststream.exceptions import IncorrectState
from minio.error import S3Error
from urllib3.exceptions import MaxRetryError

from genomebus_common import errors


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
        (IncorrectState("You can't use producer here, please connect broker first."),
         errors.BrokerUnavailable),
    ],
)
def test_kafka(exc: BaseException, expected: type) -> None:
    assert type(errors.from_kafka_error(exc)) is expected


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
    assert type(errors.from_minio_error(exc)) is expected


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (asyncpg.exceptions.SerializationError("x"), errors.DatabaseUnavailable),
        (asyncpg.exceptions.DeadlockDetectedError("x"), errors.DatabaseUnavailable),
        (asyncpg.exceptions.CannotConnectNowError("x"), errors.DatabaseUnavailable),
        (asyncpg.exceptions.UniqueViolationError("x"), errors.DataConflict),
        (asyncpg.exceptions.UndefinedTableError("x"), errors.DatabaseRejected),
        (ConnectionResetError(104, "reset"), errors.DatabaseUnavailable),
    ],
)
def test_postgres(exc: BaseException, expected: type) -> None:
    assert type(errors.from_asyncpg_error(exc)) is expected


def test_every_cause_is_either_transient_or_permanent() -> None:
    leaves = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.GenomebusError)]
    for cls in leaves:
        if cls in (errors.GenomebusError,):
            continue
        assert issubclass(cls, (errors.TransientError, errors.PermanentError)), cls
