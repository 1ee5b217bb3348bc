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
import re
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from genomebus_common.contracts.errors import (
    DatabaseRejected,
    GenomebusError,
    PermanentError,
    TransientError,
)
from genomebus_common.runtime.failures import from_asyncpg_error, is_network_error

PROBLEM = "application/problem+json"


def problem(status: int, code: str, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {
        "type": f"urn:genomebus:problem:{code}",
        "title": title,
        "status": status,
        "detail": detail,
    }
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
                response = problem(
                    status, exc.code, title, exc.reason, **({"errors": reasons} if reasons else {})
                )
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

    @app.exception_handler(OSError)
    async def network(request: Request, exc: OSError) -> JSONResponse:
        """A connection dropped under the request (a server restarting): the client retries,
        as for a failover. Any other OS error is ours: re-raised, a logged 500."""
        if not is_network_error(exc):
            raise exc
        unreachable = TransientError(
            f"a dependency is unreachable: {exc}", code="dependency_unreachable"
        )
        return await domain(request, unreachable)

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


# --- bounded request bodies -------------------------------------------------------------------

MAX_BODY_BYTES = 1024 * 1024  # registrations, consents, FHIR resources: a few kB in practice
MAX_JSON_DEPTH = 64  # a FHIR Consent nests ~6 deep; json and pydantic recurse per level
_JSON_SPECIAL = re.compile(rb'[\[\]{}"\\]')


def json_depth(raw: bytes, *, stop_above: int | None = None) -> int:
    """How deep arrays and objects nest in ``raw``, without parsing it: the parser recurses per
    level, so a 100k-deep array must be refused before it is parsed. One pass over the bytes
    that matter (brackets, quotes, backslashes), linear whatever the input: this runs before
    authentication, so a crafted body must not make it slow."""
    depth = deepest = 0
    in_string = False
    skip_to = -1  # the character after a backslash inside a string is taken literally
    for match in _JSON_SPECIAL.finditer(raw):
        at = match.start()
        if at < skip_to:
            continue
        char = raw[at : at + 1]
        if in_string:
            if char == b"\\":
                skip_to = at + 2
            elif char == b'"':
                in_string = False
        elif char == b'"':
            in_string = True
        elif char in b"[{":
            depth += 1
            deepest = max(deepest, depth)
            if stop_above is not None and deepest > stop_above:
                return deepest  # deep enough to refuse: no need to read on
        elif char in b"]}":
            depth -= 1
    return deepest


class BoundedBodies:
    """ASGI middleware: every request body is bounded before any of it is parsed, for every
    caller, authenticated or not (authentication runs after the body is read).

    A declared ``Content-Length`` over the bound is answered 413 at once; a chunked body is
    counted as it arrives and cut off at the bound. Bodies (JSON here; at most the bound, so
    holding them is cheap) are refused with 422 when they nest deeper than ``MAX_JSON_DEPTH``,
    whatever content type they claim. Paths
    matching ``streamed`` (uploads whose handler streams the bytes to storage) are exempt."""

    def __init__(
        self,
        app: Any,
        *,
        max_bytes: int = MAX_BODY_BYTES,
        max_depth: int = MAX_JSON_DEPTH,
        streamed: Sequence[str] = (),
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_depth = max_depth
        self.streamed = [re.compile(pattern) for pattern in streamed]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or any(p.match(scope.get("path", "")) for p in self.streamed):
            await self.app(scope, receive, send)
            return
        headers = {
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])
        }
        declared = headers.get("content-length", "")
        if declared and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(
                send,
                413,
                "body_too_large",
                "Request body too large",
                f"request bodies here are at most {self.max_bytes} bytes",
            )
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                await self._refuse(
                    send,
                    413,
                    "body_too_large",
                    "Request body too large",
                    f"request bodies here are at most {self.max_bytes} bytes",
                )
                return
        if (
            json_depth(bytes(body), stop_above=self.max_depth) > self.max_depth
        ):  # every bounded body here is JSON
            await self._refuse(
                send,
                422,
                "validation_error",
                "The request is invalid",
                f"body: JSON nests deeper than {self.max_depth} levels",
            )
            return
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            # after the body: wait for the disconnect, as the server would
            message: dict[str, Any] = await receive()
            return message

        await self.app(scope, replay, send)

    @staticmethod
    async def _refuse(send: Any, status: int, code: str, title: str, detail: str) -> None:
        response = problem(status, code, title, detail)
        response.headers["Connection"] = "close"  # the rest of the body is not read
        await response({"type": "http"}, _no_receive, send)


async def _no_receive() -> dict[str, Any]:
    return {"type": "http.disconnect"}
