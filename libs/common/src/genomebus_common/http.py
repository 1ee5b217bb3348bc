"""HTTP conventions shared by the services that have an API (ingest, consent, registry).

- Errors are RFC 9457 problem details (``application/problem+json``) with a stable ``type``
  (``urn:genomebus:problem:<code>``) and a ``detail`` that says precisely what is wrong.
- Validation errors name each field and never echo the submitted values: bodies may carry a
  national id.
- Callers authenticate with bearer tokens; only the tokens' SHA-256 digests are configured,
  so a leaked configuration does not leak a credential.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

import asyncpg

from .errors import DatabaseRejected, GenomebusError, PermanentError, TransientError, from_asyncpg_error

PROBLEM = "application/problem+json"


def problem(status: int, code: str, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": f"urn:genomebus:problem:{code}", "title": title, "status": status, "detail": detail}
    return JSONResponse({**body, **extra}, status_code=status, media_type=PROBLEM)


class Unauthorized(Exception):
    """No valid credential: answered 401 with a Bearer challenge."""


class Forbidden(Exception):
    """A valid credential that may not do this: answered 403."""


ErrorMapping = Sequence[tuple[type[GenomebusError], int, str]]
_DEFAULT_MAPPING: ErrorMapping = (
    (DatabaseRejected, 500, "Internal error"),  # our SQL's fault, not the request's
    (PermanentError, 422, "The request cannot be processed"),
    (TransientError, 503, "A dependency is unavailable; try again"),
)


def install_error_handlers(app: FastAPI, mapping: ErrorMapping = ()) -> None:
    """Problem details for validation errors, auth errors and the genomebus error tree.

    ``mapping`` lists (error class, status, title) most specific first; the defaults (422 for
    permanent, 503 with Retry-After for transient causes) apply after it.
    """
    table = [*mapping, *_DEFAULT_MAPPING]

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"][1:]) or "body", "message": e["msg"]}
            for e in exc.errors()
        ]  # deliberately without e["input"]: it may be a national id
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return problem(422, "validation_error", "The request is invalid", detail, errors=errors)

    @app.exception_handler(GenomebusError)
    async def domain(request: Request, exc: GenomebusError) -> JSONResponse:
        for cls, status, title in table:
            if isinstance(exc, cls):
                reasons = getattr(exc, "reasons", None)
                response = problem(status, exc.code, title, exc.reason, **({"errors": reasons} if reasons else {}))
                if status == 503:
                    response.headers["Retry-After"] = "5"
                return response
        return problem(500, exc.code, "Internal error", exc.reason)

    @app.exception_handler(asyncpg.PostgresError)
    @app.exception_handler(asyncpg.InterfaceError)
    async def database(request: Request, exc: Exception) -> JSONResponse:
        """A database error no service code mapped: a failover or deadlock is a 503 the client
        retries (never a bare 500 it may take as final)."""
        return await domain(request, from_asyncpg_error(exc))

    @app.exception_handler(Unauthorized)
    async def unauthorized(request: Request, exc: Unauthorized) -> JSONResponse:
        response = problem(401, "unauthorized", "Authentication required", str(exc))
        response.headers["WWW-Authenticate"] = "Bearer"
        return response

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> JSONResponse:
        return problem(403, "forbidden", "Not allowed", str(exc))


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def bearer_identity(tokens: dict[str, str]) -> Callable[[Request], str]:
    """A FastAPI dependency: the identity (e.g. hospital id) whose token digest matches."""

    def identify(request: Request) -> str:
        scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("a bearer token is required")
        presented = token_digest(token)
        for identity, expected in tokens.items():
            if hmac.compare_digest(presented, expected.lower()):
                return identity
        raise Unauthorized("the token is not valid")

    return identify
