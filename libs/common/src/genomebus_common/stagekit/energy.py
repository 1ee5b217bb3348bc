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

from collections.abc import Iterable

from genomebus_common.contracts.events import EnergyEstimate
from genomebus_common.runtime.settings import EnergySettings
from genomebus_common.stagekit.tools import ResourceMeter

__all__ = ["EnergySettings", "METHOD", "TOTAL_METHOD", "estimate", "total"]

JOULES_PER_KWH = 3.6e6

METHOD = (
    "estimate: CPU seconds of the stage's tool processes (user+system, from the kernel) x "
    "configured watts per busy core; heat recovered = that energy x the node's configured "
    "heat-recovery fraction"
)
TOTAL_METHOD = "sum of the per-stage estimates; each: " + METHOD


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


def total(estimates: Iterable[EnergyEstimate | None]) -> EnergyEstimate | None:
    """A sample's totals over its stages; ``None`` when no stage reported energy.

    The fraction of the total is the energy-weighted mean of the stages' fractions, and the
    power per core the CPU-weighted mean, so the totals stay consistent with their parts.
    """
    parts = [e for e in estimates if e is not None]
    if not parts:
        return None
    cpu = sum(e.cpu_seconds for e in parts)
    kwh = sum(e.kwh for e in parts)
    recovered = sum(e.heat_recovered_kwh for e in parts)
    nodes = {e.node for e in parts}
    return EnergyEstimate(
        estimate=True,
        method=TOTAL_METHOD,
        cpu_seconds=round(cpu, 3),
        wall_seconds=round(sum(e.wall_seconds for e in parts), 3),
        watts_per_core=(sum(e.watts_per_core * e.cpu_seconds for e in parts) / cpu) if cpu else 0,
        kwh=kwh,
        heat_recovery_fraction=min(1.0, recovered / kwh) if kwh else 0.0,
        heat_recovered_kwh=recovered,
        node=nodes.pop() if len(nodes) == 1 else None,
    )
