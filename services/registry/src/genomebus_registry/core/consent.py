"""A patient's consent as the registry projects it, and what it forbids.

Consent may arrive after a sample: no consent on record quarantines nothing, but the views deny
every use until it arrives. A withdrawal or a missing analysis consent forbids all use.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ConsentState:
    """The consent projection of one patient; ``version`` None means no consent on record."""

    version: int | None
    analysis_consent_given: bool | None
    research_use: str | None
    withdrawn: bool | None

    @property
    def forbids_use(self) -> str | None:
        """Why the data must not be used at all (the sample is quarantined), or None.

        No consent on record is not a reason to quarantine: consent may arrive after the sample,
        and the views deny every use until it does.
        """
        if self.version is None:
            return None
        if self.withdrawn:
            return f"consent withdrawn (version {self.version})"
        if not self.analysis_consent_given:
            return f"no analysis consent (version {self.version})"
        return None
