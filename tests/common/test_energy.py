"""Energy per sample: the CPU time of real tool processes, and estimates labelled as estimates."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import pytest

from genomebus_common.contracts.energy import METHOD, total
from genomebus_common.contracts.events import EnergyEstimate
from genomebus_common.stagekit.energy import EnergySettings, estimate
from genomebus_common.stagekit.tools import metered, run_pipeline

BURN = [
    sys.executable,
    "-c",
    "import time\nend = time.process_time() + 0.4\nwhile time.process_time() < end: pass",
]
SLEEP = [sys.executable, "-c", "import time; time.sleep(0.4)"]


def test_cpu_time_of_a_busy_tool_is_measured_and_an_idle_one_costs_almost_nothing() -> None:
    with metered() as busy:
        run_pipeline([BURN])
    with metered() as idle:
        run_pipeline([SLEEP])
    assert 0.35 <= busy.cpu_seconds <= busy.wall_seconds + 0.2
    assert idle.cpu_seconds < 0.2 < idle.wall_seconds
    assert busy.processes == idle.processes == 1


def test_every_process_of_a_pipeline_counts_and_meters_do_not_leak_between_threads() -> None:
    results: dict[str, float] = {}

    def work(name: str, commands: list[list[str]]) -> None:
        with metered() as meter:
            run_pipeline(commands)
        results[name] = meter.cpu_seconds

    threads = [
        threading.Thread(target=work, args=("two", [BURN, BURN])),
        threading.Thread(target=work, args=("none", [SLEEP])),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results["two"] >= 0.7
    assert results["none"] < 0.2


def test_outside_a_meter_pipelines_run_as_before() -> None:
    assert run_pipeline([["printf", "x"]], capture=True) == b"x"


def test_estimate_converts_cpu_seconds_with_the_configured_power_and_node_fraction(
    tmp_path: Path,
) -> None:
    recovery = tmp_path / "recovery.json"
    recovery.write_text(json.dumps({"node-a": 0.8, "node-b": 0.0}))
    settings = EnergySettings(
        energy_watts_per_core=12.0, node_name="node-a", heat_recovery_file=str(recovery)
    )
    with metered() as meter:
        run_pipeline([BURN])
    figure = estimate(meter, settings)
    assert figure.estimate is True and figure.method == METHOD
    assert figure.kwh == pytest.approx(meter.cpu_seconds * 12.0 / 3.6e6, rel=0.01)
    assert figure.heat_recovery_fraction == 0.8
    assert figure.heat_recovered_kwh == pytest.approx(figure.kwh * 0.8)
    assert figure.node == "node-a"


def test_an_unreadable_or_silent_recovery_file_falls_back_to_the_configured_fraction(
    tmp_path: Path,
) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert (
        EnergySettings(
            node_name="n", heat_recovery_file=str(broken), heat_recovery_fraction=0.3
        ).recovery_fraction()
        == 0.3
    )
    silent = tmp_path / "silent.json"
    silent.write_text(json.dumps({"other": 0.9}))
    assert EnergySettings(node_name="n", heat_recovery_file=str(silent)).recovery_fraction() == 0.0


def _part(cpu: float, fraction: float, node: str) -> EnergyEstimate:
    kwh = cpu * 10 / 3.6e6
    return EnergyEstimate(
        method=METHOD,
        cpu_seconds=cpu,
        wall_seconds=cpu,
        watts_per_core=10,
        kwh=kwh,
        heat_recovery_fraction=fraction,
        heat_recovered_kwh=kwh * fraction,
        node=node,
    )


def test_totals_add_up_and_weight_the_recovery_fraction_by_energy() -> None:
    whole = total([_part(300, 1.0, "a"), None, _part(100, 0.0, "b")])
    assert whole is not None
    assert whole.cpu_seconds == 400
    assert whole.kwh == pytest.approx(400 * 10 / 3.6e6)
    assert whole.heat_recovery_fraction == pytest.approx(0.75)
    assert whole.node is None and whole.estimate is True
    assert total([None, None]) is None
