"""Node labels -> the heat-recovery table the stages read (``EnergySettings.heat_recovery_file``).

A pod can learn its node's name from the downward API but not the node's labels, so the
controller copies every node's ``genomebus.dk/heat-recovery-fraction`` label into ConfigMap
``genomebus-heat-recovery``, key ``recovery.json``: ``{"node-a": 0.85, "node-b": 0.0}``.
Every node is named (0.0 when unlabelled), so a pod on an air-cooled node reports "no heat
reused" rather than falling back to a configured default that may describe another node.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

LABEL = "genomebus.dk/heat-recovery-fraction"
RECOVERY_KEY = "recovery.json"


@dataclass(frozen=True)
class RecoveryTable:
    """Fractions by node name, and what was wrong with labels that could not be used."""

    fractions: dict[str, float]
    problems: list[str] = field(default_factory=list)

    def render(self) -> str:
        """The ConfigMap value: sorted, so an unchanged table is byte-identical (no write)."""
        return json.dumps(self.fractions, sort_keys=True, indent=1) + "\n"


def fraction_from_label(value: str | None) -> tuple[float, str | None]:
    """(fraction, problem). No label: 0.0. Out of range: clamped. Unparseable: 0.0."""
    if value is None:
        return 0.0, None
    try:
        number = float(value.strip())
    except ValueError:
        return 0.0, f"not a number: {value!r}"
    if not math.isfinite(number):  # "nan" and "inf" parse, but are no fraction
        return 0.0, f"not a finite number: {value!r}"
    if number < 0.0 or number > 1.0:
        return min(1.0, max(0.0, number)), f"{value!r} outside 0..1, clamped"
    return number, None


def recovery_table(nodes: Iterable[Mapping[str, Any]]) -> RecoveryTable:
    """The table for a list of Kubernetes Node objects (as the API returns them)."""
    fractions: dict[str, float] = {}
    problems: list[str] = []
    for node in nodes:
        metadata = node.get("metadata") or {}
        name = metadata.get("name")
        if not name:
            continue
        labels = metadata.get("labels") or {}
        fraction, problem = fraction_from_label(labels.get(LABEL))
        if problem:
            problems.append(f"node {name}: label {LABEL} {problem}")
        fractions[name] = fraction
    return RecoveryTable(fractions, problems)


class RecoveryWrite(enum.Enum):
    """What the recovery ConfigMap needs this round."""

    CREATE = "create"  # there is none yet
    PATCH = "patch"  # it holds another table
    NONE = "none"  # it holds this table already: no write


def recovery_write(data: Mapping[str, str] | None, rendered: str) -> RecoveryWrite:
    """The write that makes the ConfigMap (``data``, None when absent) hold ``rendered``."""
    if data is None:
        return RecoveryWrite.CREATE
    if data.get(RECOVERY_KEY) != rendered:
        return RecoveryWrite.PATCH
    return RecoveryWrite.NONE
