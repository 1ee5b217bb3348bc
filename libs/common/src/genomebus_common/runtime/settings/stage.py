"""Settings of the services that run tools on local disk: scratch space, the energy estimate,
and the bounds of a scattered stage's units of work (the mechanisms themselves are in
``stagekit``: ``energy.py``, ``scatter.py``, ``stage.py``)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings

from genomebus_common.runtime.settings.base import SETTINGS_CONFIG

log = logging.getLogger(__name__)


class WorkDirSettings(BaseSettings):
    """Local scratch space (ingest, alignment, calling, the registry's loader)."""

    model_config = SETTINGS_CONFIG

    work_dir: str = Field(
        "/tmp/genomebus",
        description="Scratch space for tool runs and the local reference cache.",
    )


class EnergySettings(BaseSettings):
    """How CPU time becomes an energy estimate on this node (mixed into the stages' settings;
    the estimate itself is in ``stagekit/energy.py``)."""

    model_config = SETTINGS_CONFIG

    energy_watts_per_core: float = Field(
        10.0,
        ge=0,
        description="Power of one busy core in watts, for the energy estimate (measure it on "
        "your hardware: package power under load / cores).",
    )
    node_name: str | None = Field(
        None,
        description="The node this process runs on (Kubernetes: the downward API's "
        "spec.nodeName); names it in energy figures and picks its heat-recovery fraction.",
    )
    heat_recovery_fraction: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Share of this node's heat that is reused, when no recovery file names it.",
    )
    heat_recovery_file: str | None = Field(
        None,
        description="JSON object {node name: fraction}, kept by the heat controller from the "
        "nodes' labels; wins over heat_recovery_fraction for a node it names.",
    )

    def recovery_fraction(self) -> float:
        """The current fraction for this node; re-read each time, since the file may change."""
        if self.heat_recovery_file and self.node_name:
            try:
                table = json.loads(Path(self.heat_recovery_file).read_text())
                value = table.get(self.node_name)
                if value is not None:
                    return min(1.0, max(0.0, float(value)))
            except (OSError, ValueError, AttributeError, TypeError) as exc:
                log.warning(
                    "heat recovery file unreadable, using the configured fraction",
                    extra={"path": self.heat_recovery_file, "error": str(exc)},
                )
        return self.heat_recovery_fraction


class ScatterSettings(BaseSettings):
    """How a scattered stage bounds its units of work (mixed into alignment's and calling's
    settings; the scatter itself is in ``stagekit/scatter.py`` and ``stagekit/stage.py``)."""

    model_config = SETTINGS_CONFIG

    unit_time_floor_s: float = Field(
        900.0,
        gt=0,
        description="Every unit of work may run at least this long before its tools are "
        "killed as hung (and the unit retried).",
    )
    unit_min_bytes_per_s: float = Field(
        50_000.0,
        gt=0,
        description="On top of the floor, a unit may take its input's size at this rate: far "
        "below a healthy node's (about 1 MB/s of gzip FASTQ per 2 cores for bwa), so only a "
        "hung or starved tool reaches the limit.",
    )
