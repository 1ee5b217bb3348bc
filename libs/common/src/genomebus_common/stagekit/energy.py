"""Energy per sample: CPU seconds measured, kWh and recovered heat estimated, and said to be so.

The compute centre cools most servers with 40 °C water and warms nearby buildings with it, so
the interesting figure is not only how much a genome costs but how much of that came back as
heat. No service can read a power meter; what each can measure exactly is the CPU time of the
tools it ran (``tools.metered``). From that, two configured numbers give the estimate:

- watts per busy core (``GENOMEBUS_ENERGY_WATTS_PER_CORE``), from the hardware's measured
  package power divided by its cores;
- the recovery fraction of the node the pod runs on. Kubernetes' downward API can pass the
  node's *name* to a pod but not the node's labels, so the fraction comes either straight from
  ``GENOMEBUS_HEAT_RECOVERY_FRACTION`` or from a JSON file mapping node names to fractions
  (``GENOMEBUS_HEAT_RECOVERY_FILE``, a ConfigMap the heat controller keeps in step with the
  nodes' ``genomebus.dk/heat-recovery-fraction`` labels), looked up by ``GENOMEBUS_NODE_NAME``.
"""

from __future__ import annotations

from genomebus_common.contracts.energy import METHOD
from genomebus_common.contracts.events import EnergyEstimate
from genomebus_common.runtime.settings import EnergySettings
from genomebus_common.stagekit.tools import ResourceMeter

__all__ = ["EnergySettings", "estimate"]

JOULES_PER_KWH = 3.6e6


def estimate(meter: ResourceMeter, settings: EnergySettings) -> EnergyEstimate:
    """The energy block a stage publishes for the tools it ran under ``meter``."""
    kwh = meter.cpu_seconds * settings.energy_watts_per_core / JOULES_PER_KWH
    fraction = settings.recovery_fraction()
    return EnergyEstimate(
        estimate=True,
        method=METHOD,
        cpu_seconds=round(meter.cpu_seconds, 3),
        wall_seconds=round(meter.wall_seconds, 3),
        watts_per_core=settings.energy_watts_per_core,
        kwh=kwh,
        heat_recovery_fraction=fraction,
        heat_recovered_kwh=kwh * fraction,
        node=settings.node_name,
    )
