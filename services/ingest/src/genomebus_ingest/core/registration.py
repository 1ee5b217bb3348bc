"""What a LIS sends to register a sample, and what of it ingest keeps.

A registration is refused whole (``RegistrationRejected``) when its national id is not one or
its reference is unknown; its content fingerprint decides "the same again" from "a conflict".
"""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from genomebus_common.contracts.events import Identifier, ObjectKey, Priority, Sha256Hex
from genomebus_common.contracts.identifiers import InvalidNationalId, NationalId, parse_cpr

from .errors import RegistrationRejected

Mate = Literal["R1", "R2"]
MATES: tuple[Mate, Mate] = ("R1", "R2")


class ReadGroupIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Identifier
    library: Identifier
    platform: Literal["ILLUMINA", "MGI", "ONT", "PACBIO", "ELEMENT", "ULTIMA"] = "ILLUMINA"
    platform_unit: Identifier | None = None


class ReadsIn(BaseModel):
    """The FASTQ pair: declared checksums, and optionally where it already lies."""

    model_config = ConfigDict(extra="forbid")

    r1_sha256: Sha256Hex
    r2_sha256: Sha256Hex
    # Checked like every object key: one that could hold a national id is refused with a 422
    # (which never echoes it), not carried into records, logs and errors.
    landing_r1_key: ObjectKey | None = Field(
        None, description="Key in the landing bucket, if the LIS put the file there already."
    )
    landing_r2_key: ObjectKey | None = None

    def declared(self, mate: Mate) -> str:
        return self.r1_sha256 if mate == "R1" else self.r2_sha256

    def landing_key(self, mate: Mate) -> str | None:
        return self.landing_r1_key if mate == "R1" else self.landing_r2_key

    @property
    def from_landing(self) -> bool:
        """Both mates lie in the landing bucket already: ingest copies them itself."""
        return bool(self.landing_r1_key and self.landing_r2_key)


def landing_key_of(hospital_id: str, key: str) -> bool:
    """True if ``key`` lies under the hospital's own ``<hospital_id>/`` prefix of the landing
    bucket, with no empty, ``.`` or ``..`` segment that could lead out of it."""
    head, _, rest = key.partition("/")
    return (
        head == hospital_id
        and bool(rest)
        and all(part not in ("", ".", "..") for part in rest.split("/"))
    )


class SampleRegistration(BaseModel):
    """A sample's registration as ingest keeps it: everything but the national id."""

    model_config = ConfigDict(extra="forbid")

    hospital_id: Identifier
    specimen_id: Identifier
    lis_order_id: Identifier
    sequencing_run: Identifier
    read_group: ReadGroupIn
    priority: Priority
    reference_id: Identifier
    reads: ReadsIn

    @property
    def sample_id(self) -> str:
        """Unique on the bus: specimen ids are only unique within one hospital."""
        return f"{self.hospital_id}.{self.specimen_id}"


class RegisterSample(SampleRegistration):
    """A sample as a hospital's LIS registers it."""

    national_id: str = Field(
        description="CPR number (DDMMYY-SSSS) or replacement number. Never stored or forwarded: "
        "ingest turns it into a pseudonym at once.",
        repr=False,
    )

    def kept(self) -> SampleRegistration:
        return SampleRegistration.model_validate(self.model_dump(exclude={"national_id"}))

    def fingerprint(self, pseudonym: str) -> str:
        """Identity of the content, without the national id: decides 'same' vs '409'."""
        content = self.kept().model_dump(mode="json")
        content["patient_pseudonym"] = pseudonym
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def checked_national_id(registration: RegisterSample) -> NationalId:
    """The registration's national id, or ``RegistrationRejected`` saying why it is none."""
    try:
        return parse_cpr(registration.national_id)
    except InvalidNationalId as exc:
        raise RegistrationRejected([f"national_id: {exc}"]) from None


def unknown_reference(registration: SampleRegistration) -> RegistrationRejected:
    """The refusal of a registration whose reference is not registered."""
    return RegistrationRejected(
        [f"reference_id: reference {registration.reference_id!r} is not registered"]
    )
