"""Energy estimates per sample and stage, as the treating hospital sees them.

The registry is where a sample's journey ends, so it is where its energy can be added up:
alignment's estimate arrives on sample.aligned, calling's on variants.called, and VariantsReady
carries the total of what is known when the sample loads. Every figure stays an estimate
(``EnergyEstimate.estimate`` is always true, ``method`` says how it was derived).
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, Field

from genomebus_common.contracts.energy import total
from genomebus_common.contracts.events import EnergyEstimate

ALIGNMENT = "alignment"
CALLING = "calling"
STAGES = (ALIGNMENT, CALLING)


class StageEnergy(BaseModel):
    stage: str
    estimate: EnergyEstimate


class SampleEnergy(BaseModel):
    """A sample's energy as the treating hospital sees it: estimates, per stage and in total."""

    sample_id: str
    estimate: bool = Field(True, description="Always true: estimates, not meter readings.")
    stages: list[StageEnergy] = Field(description="Each stage that reported energy.")
    missing_stages: list[str] = Field(description="Stages that have not reported energy (yet).")
    total: EnergyEstimate | None = Field(
        description="Sum over the reported stages (method says so); None if none reported."
    )


def sample_energy(sample_id: str, stages: Mapping[str, EnergyEstimate]) -> SampleEnergy:
    """The answer for one sample from its recorded estimates by stage."""
    return SampleEnergy(
        sample_id=sample_id,
        estimate=True,
        stages=[StageEnergy(stage=k, estimate=v) for k, v in stages.items()],
        missing_stages=[k for k in STAGES if k not in stages],
        total=total(stages.values()),
    )
