"""What an energy block on the bus means, and how a sample's blocks add up.

Each stage estimates its own (``stagekit.energy.estimate``); the registry adds them into the
sample's totals. The rule for adding is part of the contract, so a subscriber adding the blocks
itself gets the same figures, and the registry's core can use it without the stage toolkit.
"""

from __future__ import annotations

from collections.abc import Iterable

from genomebus_common.contracts.events import EnergyEstimate

METHOD = (
    "estimate: CPU seconds of the stage's tool processes (user+system, from the kernel) x "
    "configured watts per busy core; heat recovered = that energy x the node's configured "
    "heat-recovery fraction"
)
TOTAL_METHOD = "sum of the per-stage estimates; each: " + METHOD


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
