"""The problem details every API answers with when the database fails under a request."""

from __future__ import annotations

import asyncpg
import httpx
from fastapi import FastAPI

from genomebus_common.runtime.http import install_error_handlers


def _app(error: Exception) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/thing")
    async def thing() -> None:
        raise error

    return app


async def _post(app: FastAPI) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        return await c.post("/thing")


async def test_a_failover_or_deadlock_is_a_503_the_client_retries() -> None:
    """Not a bare 500, which a LIS may take as final: the sample would never be sent again."""
    for error in (
        asyncpg.exceptions.DeadlockDetectedError("deadlock detected"),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
    ):
        response = await _post(_app(error))
        assert response.status_code == 503, error
        assert response.headers["Retry-After"] == "5"
        assert response.json()["type"] == "urn:genomebus:problem:database_unavailable"


async def test_a_broken_statement_is_our_500_not_the_requests_422() -> None:
    response = await _post(_app(asyncpg.exceptions.UndefinedTableError("no such table")))
    assert response.status_code == 500
    assert response.json()["type"] == "urn:genomebus:problem:database_rejected"


async def test_a_dropped_connection_is_a_503_and_a_local_fault_stays_a_500() -> None:
    """A socket reset under a request (the database or object store restarting) is for the
    client to retry, like a failover; a missing file is our bug and stays a 500."""
    response = await _post(_app(ConnectionResetError(104, "Connection reset by peer")))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.json()["type"] == "urn:genomebus:problem:dependency_unreachable"
    app = _app(FileNotFoundError(2, "No such file or directory"))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.post("/thing")).status_code == 500
