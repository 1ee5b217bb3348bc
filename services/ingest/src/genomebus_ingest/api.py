"""Ingest's HTTP API for hospital LIS systems: registration, read upload, status.

Errors are RFC 9457 problem details (``application/problem+json``) that say precisely what is
wrong. Validation errors never echo the submitted values: a request body carries a national id.
Every LIS authenticates with its own bearer token and sees only its own hospital's samples; a
sample of another hospital is reported as not found, so its existence does not leak.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from genomebus_common.errors import ChecksumMismatch, GenomebusError, PermanentError, TransientError

from .domain import Mate, RegisterSample, SampleView
from .service import (
    Ingest,
    RegistrationRejected,
    SampleConflict,
    SampleNotFound,
    WrongState,
)
from .streams import QueueReader, feed

PROBLEM = "application/problem+json"


def problem(status: int, code: str, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": f"urn:genomebus:problem:{code}", "title": title, "status": status, "detail": detail}
    return JSONResponse({**body, **extra}, status_code=status, media_type=PROBLEM)


_STATUS_BY_ERROR: list[tuple[type[GenomebusError], int, str]] = [
    (RegistrationRejected, 422, "The sample registration is invalid"),
    (ChecksumMismatch, 422, "The uploaded file is not the one declared"),
    (SampleConflict, 409, "A different sample with this id exists"),
    (SampleNotFound, 404, "No such sample"),
    (WrongState, 409, "The sample does not accept this now"),
    (PermanentError, 422, "The request cannot be processed"),
    (TransientError, 503, "A dependency is unavailable; try again"),
]


def install_error_handlers(app: FastAPI) -> None:
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
        for cls, status, title in _STATUS_BY_ERROR:
            if isinstance(exc, cls):
                extra = {"errors": exc.reasons} if isinstance(exc, RegistrationRejected) else {}
                response = problem(status, exc.code, title, exc.reason, **extra)
                if status == 503:
                    response.headers["Retry-After"] = "5"
                return response
        return problem(500, exc.code, "Internal error", exc.reason)


class Unauthorized(Exception):
    pass


def caller_hospital(request: Request, authorization: Annotated[str | None, Header()] = None) -> str:
    """The hospital whose LIS holds the presented bearer token."""
    tokens: dict[str, str] = request.app.state.hospital_tokens
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("a bearer token is required")
    presented = hashlib.sha256(token.encode()).hexdigest()
    for hospital, expected in tokens.items():
        if hmac.compare_digest(presented, expected.lower()):
            return hospital
    raise Unauthorized("the token is not valid")


Hospital = Annotated[str, Depends(caller_hospital)]


def ingest_of(request: Request) -> Ingest:
    return request.app.state.resources


router = APIRouter(prefix="/v1", tags=["samples"])


@router.post("/samples", status_code=201, response_model=SampleView)
async def register_sample(
    registration: RegisterSample, hospital: Hospital, request: Request, response: Response
) -> SampleView:
    """Register a sample. The same registration again returns the same sample (200)."""
    if registration.hospital_id != hospital:
        return problem(  # type: ignore[return-value]
            403,
            "hospital_mismatch",
            "Not your hospital",
            f"this token belongs to {hospital}, the registration names {registration.hospital_id}",
        )
    view, created = await ingest_of(request).register(registration)
    response.status_code = 201 if created else 200
    response.headers["Location"] = f"/v1/samples/{view.sample_id}"
    return view


@router.put("/samples/{sample_id}/reads/{mate}", response_model=SampleView)
async def upload_reads(sample_id: str, mate: Mate, hospital: Hospital, request: Request) -> SampleView:
    """Stream one gzip FASTQ mate; its SHA-256 must be the one declared at registration."""
    ingest = ingest_of(request)
    await ingest.get(sample_id, hospital)  # 404 before reading any bytes
    reader = QueueReader()
    feeding = asyncio.create_task(feed(request.stream(), reader))
    try:
        view = await ingest.put_reads(sample_id, hospital, mate, reader)  # type: ignore[arg-type]
    finally:
        if not feeding.done():
            feeding.cancel()
    return view


@router.get("/samples/{sample_id}", response_model=SampleView)
async def get_sample(sample_id: str, hospital: Hospital, request: Request) -> SampleView:
    return await ingest_of(request).get(sample_id, hospital)


def install(app: FastAPI, hospital_tokens: dict[str, str]) -> None:
    app.state.hospital_tokens = hospital_tokens
    install_error_handlers(app)

    @app.exception_handler(Unauthorized)
    async def unauthorized(request: Request, exc: Unauthorized) -> JSONResponse:
        response = problem(401, "unauthorized", "Authentication required", str(exc))
        response.headers["WWW-Authenticate"] = "Bearer"
        return response

    app.include_router(router)
