"""A patient's access log: who read the patient's data, when and why, from the audit log.

Every question the registry answers is audited with the patients it touched, so "who has looked
at my data?" is a query over those rows, never a second record that could disagree with the
first. It is served only to the citizens' portal, which authenticates the citizen and asks for
that citizen's own pseudonym; a hospital or a researcher is refused (``core.access``).
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

#: The audited actions that read a patient's data: the treating hospital's view of the
#: genotypes, the research counts that included them, and the energy figures of their sample.
#: Loads, consent changes and the portal's own reads of this log are not reads of their data.
READ_ACTIONS = (
    "treatment.patient_variants",
    "treatment.sample_energy",
    "research.allele",
    "research.region",
)

#: Entries per page: a page is one index probe plus at most this many rows.
PAGE_DEFAULT = 50
PAGE_MAX = 500


class AccessEntry(BaseModel):
    """One question that touched the patient's data (answered or refused)."""

    at: datetime
    client_id: str = Field(description="The registry client that asked.")
    role: str = Field(description="hospital or research.")
    hospital_id: str | None = Field(description="For a hospital client: which hospital.")
    action: str = Field(description="What was asked: " + ", ".join(READ_ACTIONS) + ".")
    purpose: str = Field(description="The purpose the client gave (X-Purpose).")
    outcome: str = Field(description='"answered", or "denied: <why>" when it was refused.')


class AccessLog(BaseModel):
    patient_pseudonym: str
    entries: list[AccessEntry] = Field(description="Newest first.")
    next_cursor: str | None = Field(
        None, description="Pass as `cursor` for older entries; absent on the last page."
    )
