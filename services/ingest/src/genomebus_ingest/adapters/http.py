"""Ingest's HTTP API for hospital LIS systems: registration, read upload, status.

Errors are RFC 9457 problem details (``application/problem+json``) that say precisely what is
wrong. Validation errors never echo the submitted values: a request body carries a national id.
Every LIS authenticates with its own bearer token and sees only its own hospital's samples; a
sample of another hospital is reported as not found, so its existence does not leak.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response

from genomebus_common.contracts.errors import ChecksumMismatch
from genomebus_common.contracts.events import SafeText
from genomebus_common.runtime.http import (
    ErrorMapping,
    bearer_identity,
    install_error_handlers,
    problem,
)

from ..core.errors import RegistrationRejected, SampleConflict, SampleNotFound, WrongState
from ..core.ingest import Ingest
from ..core.registration import Mate, RegisterSample
from ..core.sample import SampleView
from .streams import QueueReader, feed

_ERRORS: ErrorMapping = (
    (RegistrationRejected, 422, "The sample registration is invalid"),
    (ChecksumMismatch, 422, "The uploaded file is not the one declared"),
    (SampleConflict, 409, "A different sample with this id exists"),
    (SampleNotFound, 404, "No such sample"),
    (WrongState, 409, "The sample does not accept this now"),
)


def caller_hospital(request: Request) -> str:
    """The hospital whose LIS holds the presented bearer token."""
    hospital: str = request.app.state.identify(request)
    return hospital


Hospital = Annotated[str, Depends(caller_hospital)]


def ingest_of(request: Request) -> Ingest:
    ingest: Ingest = request.app.state.resources
    return ingest


router = APIRouter(prefix="/v1", tags=["samples"])
# The read upload streams gigabytes straight to storage, holding a queue's worth at a time:
# exempt from the body bound every other request has.
STREAMED_UPLOADS = r"^/v1/samples/[^/]+/reads/R[12]$"


@router.post("/samples", status_code=201, response_model=SampleView)
async def register_sample(
    registration: RegisterSample, hospital: Hospital, request: Request, response: Response
) -> SampleView:
    """Register a sample. The same registration again returns the same sample (200)."""
    if registration.hospital_id != hospital:
        return problem(  # type: ignore[return-value]  # a problem response, not the model
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
async def upload_reads(
    sample_id: str, mate: Mate, hospital: Hospital, request: Request
) -> SampleView:
    """Stream one gzip FASTQ mate; its SHA-256 must be the one declared at registration."""
    ingest = ingest_of(request)
    await ingest.get(sample_id, hospital)  # 404 before reading any bytes
    reader = QueueReader()
    feeding = asyncio.create_task(feed(request.stream(), reader))
    try:
        view = await ingest.put_reads(sample_id, hospital, mate, reader)  # type: ignore[arg-type]  # it has read(), all a store reads
    finally:
        reader.abandon()  # a writer blocked on a full queue returns instead of hanging a thread
        if not feeding.done():
            feeding.cancel()
    return view


@router.delete("/samples/{sample_id}", response_model=SampleView)
async def remove_sample(
    sample_id: str,
    hospital: Hospital,
    request: Request,
    reason: Annotated[SafeText, Query(min_length=3, max_length=500)],
) -> SampleView:
    """Withdraw a sample: its reads go, and every service that holds its data deletes them."""
    return await ingest_of(request).remove(sample_id, hospital, reason)


@router.get("/samples/{sample_id}", response_model=SampleView)
async def get_sample(sample_id: str, hospital: Hospital, request: Request) -> SampleView:
    return await ingest_of(request).get(sample_id, hospital)


def install(app: FastAPI, hospital_tokens: dict[str, str]) -> None:
    app.state.identify = bearer_identity(hospital_tokens)
    install_error_handlers(app, _ERRORS)
    app.include_router(router)
