"""What ingest refuses, as errors the HTTP adapter maps to problem details."""

from __future__ import annotations

from genomebus_common.contracts.errors import DataConflict, PermanentError


class RegistrationRejected(PermanentError):
    """The registration itself is invalid; ``reasons`` lists every problem found."""

    code = "registration_rejected"

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


class SampleConflict(DataConflict):
    code = "sample_conflict"


class SampleNotFound(PermanentError):
    code = "sample_not_found"


class WrongState(PermanentError):
    code = "wrong_state"
