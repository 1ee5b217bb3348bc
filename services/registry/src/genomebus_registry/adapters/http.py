"""The registry's HTTP API, a FastAPI router over ``ports.RegistryQueries``: the treating
hospital's patient view, research aggregates, and the patient's own access log for the
citizens' portal.

Every request needs a bearer token (only its SHA-256 is configured) and an ``X-Purpose`` header:
free text saying why the data are looked at, written into the audit log with the answer. A
purpose that looks like a national id is refused, since the audit log must hold pseudonyms only.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request
from pydantic import TypeAdapter, ValidationError

from genomebus_common.contracts.errors import PermanentError
from genomebus_common.contracts.events import PSEUDONYM_PATTERN, SafeText
from genomebus_common.runtime.http import ErrorMapping, bearer_identity, install_error_handlers

from ..config import RegistryClient
from ..core import access_log
from ..core.access import (
    Caller,
    ConsentForbids,
    PatientNotFound,
    RoleForbidden,
    SampleNotFound,
)
from ..core.answers import (
    PATIENT_PAGE_DEFAULT,
    PATIENT_PAGE_MAX,
    REGION_PAGE_DEFAULT,
    REGION_PAGE_MAX,
    AlleleAnswer,
    PatientVariants,
    RegionAnswer,
)
from ..core.cursors import AccessCursor, PatientCursor, RegionCursor
from ..core.energy import SampleEnergy
from ..core.keys import MAX_POS
from ..ports import RegistryQueries

_PURPOSE_MAX = 500
_SAFE_TEXT = TypeAdapter(SafeText)


class PurposeRequired(PermanentError):
    code = "purpose_required"


class InvalidQuery(PermanentError):
    code = "invalid_query"


_ERRORS: ErrorMapping = (
    (PurposeRequired, 400, "An X-Purpose header is required"),
    (InvalidQuery, 422, "The query is invalid"),
    (PatientNotFound, 404, "No such patient"),
    (SampleNotFound, 404, "No such sample"),
    (ConsentForbids, 403, "Consent does not allow this use"),
    (RoleForbidden, 403, "Not allowed for this client"),
)

Chrom = Annotated[str, Query(pattern=r"^[A-Za-z0-9._-]{1,64}$")]
Allele = Annotated[str, Query(pattern=r"^[ACGTNacgtn]{1,1000}$")]


def caller(request: Request, x_purpose: Annotated[str | None, Header()] = None) -> Caller:
    """The authenticated client and its stated purpose (authentication is checked first)."""
    client_id = request.app.state.identify(request)
    client: RegistryClient = request.app.state.clients[client_id]
    purpose = (x_purpose or "").strip()
    if not purpose:
        raise PurposeRequired("say why you query: send an X-Purpose header (free text)")
    if len(purpose) > _PURPOSE_MAX:
        raise PurposeRequired(f"X-Purpose is longer than {_PURPOSE_MAX} characters")
    try:
        _SAFE_TEXT.validate_python(purpose)
    except ValidationError:
        raise PurposeRequired(
            "X-Purpose looks like it holds a national id; use pseudonyms only"
        ) from None
    return Caller(client_id, client.role, client.hospital_id, purpose)


Who = Annotated[Caller, Depends(caller)]


def queries_of(request: Request) -> RegistryQueries:
    """The queries of the running registry (``app.state.resources``, set by the lifespan)."""
    queries: RegistryQueries = request.app.state.resources.queries
    return queries


router = APIRouter(prefix="/v1")


@router.get("/patients/{pseudonym}/variants", response_model=PatientVariants, tags=["treatment"])
async def patient_variants(
    who: Who,
    request: Request,
    pseudonym: Annotated[str, Path(pattern=PSEUDONYM_PATTERN)],
    limit: Annotated[int, Query(ge=1, le=PATIENT_PAGE_MAX)] = PATIENT_PAGE_DEFAULT,
    cursor: Annotated[str | None, Query(max_length=256)] = None,
) -> PatientVariants:
    """A patient's variants, for a hospital that sent one of the patient's samples: a page of
    at most ``limit`` at a time, sample by sample in position order; ``next_cursor`` (as
    ``cursor``) gives the next page (a whole genome is millions of variants)."""
    try:
        after = PatientCursor.decode(cursor) if cursor else None
    except ValueError as exc:
        raise InvalidQuery(str(exc)) from None
    return await queries_of(request).patient_variants(who, pseudonym, limit=limit, after=after)


@router.get("/samples/{sample_id}/energy", response_model=SampleEnergy, tags=["treatment"])
async def sample_energy(
    who: Who, request: Request, sample_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9._:-]{1,128}$")]
) -> SampleEnergy:
    """Estimated energy of a sample's alignment and calling, and the heat recovered from it, for
    the hospital that sent the sample: estimates from CPU time, never meter readings."""
    return await queries_of(request).sample_energy(who, sample_id)


@router.get("/research/alleles", response_model=AlleleAnswer, tags=["research"])
async def research_allele(
    who: Who,
    request: Request,
    chrom: Chrom,
    pos: Annotated[int, Query(ge=1, le=MAX_POS)],
    ref: Allele,
    alt: Allele,
) -> AlleleAnswer:
    """Carriers, allele count, allele number and frequency of one allele, small groups of
    patients withheld (docs/security-registry.md): an allele fewer than GENOMEBUS_MIN_CELL_COUNT
    (5) patients carry is answered exactly as one no one carries."""
    return await queries_of(request).allele(who, chrom, pos, ref.upper(), alt.upper())


@router.get("/research/regions", response_model=RegionAnswer, tags=["research"])
async def research_region(
    who: Who,
    request: Request,
    chrom: Chrom,
    start: Annotated[int, Query(ge=1, le=MAX_POS)],
    end: Annotated[int, Query(ge=1, le=MAX_POS)],
    limit: Annotated[int, Query(ge=1, le=REGION_PAGE_MAX)] = REGION_PAGE_DEFAULT,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> RegionAnswer:
    """Variants whose position lies in [start, end] (1-based, inclusive) that at least
    GENOMEBUS_MIN_CELL_COUNT (5) research patients carry (rarer ones are not listed, nor any of
    a cohort under twice that), small groups withheld from their counts; a page of at most
    ``limit`` at a time in position order (reference by reference, where the registry holds
    more than one); ``next_cursor`` (as ``cursor``) gives the next page."""
    span = request.app.state.max_region_bp
    if end < start:
        raise InvalidQuery(f"end ({end}) is before start ({start})")
    if end - start + 1 > span:
        raise InvalidQuery(f"the region spans {end - start + 1} bp; at most {span} bp per query")
    try:
        after = RegionCursor.decode(cursor) if cursor else None
    except ValueError as exc:
        raise InvalidQuery(str(exc)) from None
    return await queries_of(request).region(who, chrom, start, end, limit=limit, after=after)


@router.get(
    "/patients/{pseudonym}/access-log", response_model=access_log.AccessLog, tags=["citizen"]
)
async def patient_access_log(
    who: Who,
    request: Request,
    pseudonym: Annotated[str, Path(pattern=PSEUDONYM_PATTERN)],
    limit: Annotated[int, Query(ge=1, le=access_log.PAGE_MAX)] = access_log.PAGE_DEFAULT,
    cursor: Annotated[str | None, Query(max_length=256)] = None,
) -> access_log.AccessLog:
    """Who read the patient's data (client, role, hospital), when and for what purpose, newest
    first, a page at a time: for the citizens' portal only (hospitals and researchers: 403)."""
    try:
        after = AccessCursor.decode(cursor) if cursor else None
    except ValueError as exc:
        raise InvalidQuery(str(exc)) from None
    return await queries_of(request).access_log(who, pseudonym, limit=limit, after=after)


def install(app: FastAPI, clients: dict[str, RegistryClient], *, max_region_bp: int) -> None:
    app.state.clients = clients
    app.state.identify = bearer_identity({cid: c.token_sha256 for cid, c in clients.items()})
    app.state.max_region_bp = max_region_bp
    install_error_handlers(app, _ERRORS)
    app.include_router(router)
