"""The refusals consent answers with, each its own class so the HTTP adapter maps it to a status.

A hospital that may not see a patient's consent is told exactly what it is told about a patient
without one (``NOT_FOUND``): a refusal must not reveal whether a consent exists.
"""

from __future__ import annotations

from genomebus_common.contracts.errors import DataConflict, GenomebusError, PermanentError


class ConsentRejected(PermanentError):
    """The change itself is invalid; ``reasons`` lists every problem, each naming its field."""

    code = "consent_rejected"

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


class IdempotencyConflict(DataConflict):
    """An Idempotency-Key reused for a different request: replaying it would be a lie."""

    code = "idempotency_conflict"


class ConsentNotFound(PermanentError):
    code = "consent_not_found"


# One text for "none recorded" and "not yours to see": the two must not be told apart.
NOT_FOUND = (
    "no consent recorded for this patient that this client may see or change (a hospital "
    "acts for patients it has registered a sample of: a registration reaches consent within "
    "seconds, then retry)"
)


class RestrictionNotYours(PermanentError):
    """A hospital tried to lift a research restriction only the patient (or the hospital that
    recorded it) may lift. Only a treating client ever gets this answer."""

    code = "restriction_not_yours"


class PortalOnly(PermanentError):
    code = "portal_only"


class Refused(Exception):
    """A decision refused the client: the use case rolls back, logs the refusal in the
    patient's access log on its own, then raises ``error``."""

    def __init__(self, error: GenomebusError) -> None:
        self.error = error
