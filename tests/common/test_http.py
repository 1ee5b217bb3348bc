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
