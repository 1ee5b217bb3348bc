"""Consent's HTTP API for hospitals and the citizen portal: the FastAPI router.

Errors are RFC 9457 problem details that say precisely what is wrong and never echo the
submitted values: a request body carries a national id. Every client authenticates with its own
bearer token; its id is recorded with each version it writes. A POST may carry an
``Idempotency-Key``: the same key with the same change returns the version the first request
created (``Idempotent-Replayed: true``) instead of recording a second one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request, Response

from genomebus_common.contracts.errors import DataConflict
from genomebus_common.contracts.events import PSEUDONYM_PATTERN
from genomebus_common.runtime.http import ErrorMapping, bearer_identity, install_error_handlers

from ..core.consents import ConsentService, Recorded
from ..core.errors import (
    ConsentNotFound,
    ConsentRejected,
    IdempotencyConflict,
    PortalOnly,
    RestrictionNotYours,
)
from ..core.fhir import from_fhir
from ..core.model import ConsentHistory, ConsentVersion, RecordConsent
from ..ports import AccessLogEntry

_ERRORS: ErrorMapping = (
    (ConsentRejected, 422, "The consent change is invalid"),
    (IdempotencyConflict, 409, "The Idempotency-Key was used for another change"),
    (ConsentNotFound, 404, "No consent recorded"),
    (RestrictionNotYours, 403, "Only the patient may lift this restriction"),
    (PortalOnly, 403, "For the citizens' portal only"),
    (DataConflict, 409, "A concurrent change conflicted; try again"),
)


def caller(request: Request) -> str:
    """The client (hospital, citizen portal) whose bearer token was presented."""
    identify: Callable[[Request], str] = request.app.state.identify
    return identify(request)


Client = Annotated[str, Depends(caller)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Any unique printable ASCII string per change; a retry sends the same one.",
    ),
]


def consents_of(request: Request) -> ConsentService:
    consents: ConsentService = request.app.state.resources
    return consents


def _created(recorded: Recorded, response: Response) -> ConsentVersion:
    version = recorded.version
    response.status_code = 201
    response.headers["Location"] = f"/v1/consents/{version.patient_pseudonym}"
    if not recorded.created:
        response.headers["Idempotent-Replayed"] = "true"
    return version


router = APIRouter(prefix="/v1", tags=["consents"])


@router.post("/consents", status_code=201, response_model=ConsentVersion)
async def record_consent(
    change: RecordConsent,
    client: Client,
    request: Request,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> ConsentVersion:
    """Record the patient's next consent version (a withdrawal too); answers with it."""
    recorded = await consents_of(request).record(
        change.national_id,
        change.facts(),
        client=client,
        source="api",
        idempotency_key=idempotency_key,
    )
    return _created(recorded, response)


@router.post("/fhir/Consent", status_code=201, response_model=ConsentVersion)
async def record_fhir_consent(
    client: Client,
    request: Request,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> ConsentVersion:
    """The same, from a FHIR R4 Consent resource (application/fhir+json or application/json)."""
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        raise ConsentRejected(["body: not JSON (send a FHIR R4 Consent resource)"]) from None
    asked = from_fhir(body, client=client)
    recorded = await consents_of(request).record(
        asked.national_id,
        asked.change,
        client=client,
        source="fhir",
        idempotency_key=idempotency_key,
    )
    return _created(recorded, response)


@router.get("/consents/{pseudonym}", response_model=ConsentHistory)
async def consent_history(
    pseudonym: Annotated[str, Path(pattern=PSEUDONYM_PATTERN)], client: Client, request: Request
) -> ConsentHistory:
    """Every version of one patient's consent, oldest first (portal view and audit)."""
    return await consents_of(request).history(pseudonym, client=client)


@router.get("/patients/{pseudonym}/access-log", response_model=list[AccessLogEntry])
async def access_log(
    pseudonym: Annotated[str, Path(pattern=PSEUDONYM_PATTERN)],
    client: Client,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> list[AccessLogEntry]:
    """Who read or changed this patient's consent, when and for what, newest first: for the
    citizens' portal (the patient's genotype reads are in the registry's own access log)."""
    return await consents_of(request).access_log(pseudonym, client=client, limit=limit)


def install(app: FastAPI, clients: dict[str, str]) -> None:
    app.state.identify = bearer_identity(clients)
    install_error_handlers(app, _ERRORS)
    app.include_router(router)
