"""The heat controller's settings: Kafka (to probe the research backlog) and HTTP, plus what it
steers and within which bounds; no object store, database or scratch space.

The variable names (``GENOMEBUS_HEAT_*``) are also used by the Kubernetes manifests; renaming one
breaks a deployment silently (pydantic ignores unknown variables), so keep them.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from genomebus_common.contracts.events import Priority
from genomebus_common.contracts.topics import SAMPLE_RECEIVED_LANES
from genomebus_common.runtime.settings import DOCUMENTED_DEFAULT, HttpSettings, KafkaSettings

RESEARCH_LANE = SAMPLE_RECEIVED_LANES[Priority.RESEARCH]
# More consumers than partitions sit idle in a Kafka consumer group, so a ceiling above the
# research topic's partition count only costs pods (and heat nobody asked for).
PARTITION_LIMIT = RESEARCH_LANE.partitions
# Alignment subscribes each lane with group_suffix=<lane> on the consumer group
# genomebus.<service name> (broker.ReliableConsumer.subscribe, alignment's main.py).
ALIGNMENT_RESEARCH_GROUP = f"genomebus.alignment.{Priority.RESEARCH.value}"
POD_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def _pod_namespace() -> str:
    """The namespace this pod runs in (the service account's mount says so), else genomebus."""
    try:
        value = POD_NAMESPACE_FILE.read_text().strip()
    except OSError:
        return "genomebus"
    return value or "genomebus"


class HeatSettings(KafkaSettings, HttpSettings):
    service_name: str = "heat"

    heat_scaledobject: str = Field(
        "alignment-research",
        description="KEDA ScaledObject of alignment's research lane, whose "
        "spec.maxReplicaCount the controller sets.",
    )
    heat_namespace: str = Field(
        default_factory=_pod_namespace,
        description="Namespace of the ScaledObject and both ConfigMaps; defaults to the pod's own "
        "namespace (service-account mount), else genomebus.",
        json_schema_extra={DOCUMENTED_DEFAULT: "the pod's namespace, else `genomebus`"},
    )
    heat_demand_configmap: str = Field(
        "genomebus-heat-demand",
        description="ConfigMap with the district-heating forecast: key forecast.json (list of "
        '{"start": ISO time with offset, "demand_kw": number}) and key capacity_kw.',
    )
    heat_recovery_configmap: str = Field(
        "genomebus-heat-recovery",
        description="ConfigMap the controller keeps: key recovery.json = {node name: fraction} "
        "from the nodes' genomebus.dk/heat-recovery-fraction labels.",
    )
    heat_min_replicas: int = Field(
        1,
        ge=1,
        description="Lowest ceiling: research never stops completely, however little heat is "
        "wanted.",
    )
    heat_max_replicas: int = Field(
        PARTITION_LIMIT,
        ge=1,
        le=PARTITION_LIMIT,
        description=f"Highest ceiling; at most the research topic's {PARTITION_LIMIT} partitions "
        "(more consumers would sit idle).",
    )
    heat_max_research_wait_s: float = Field(
        24 * 3600,
        gt=0,
        description="Longest a research sample may wait unconsumed; the ceiling goes to the "
        "maximum, whatever the heat demand, once the oldest waiting one is this old less the "
        "escalation margin.",
    )
    heat_escalation_margin_s: float = Field(
        900,
        ge=0,
        description="How long before the wait limit the controller escalates: covers its own "
        "interval, KEDA's polling and pod start-up.",
    )
    heat_interval_s: float = Field(60, ge=1, description="Seconds between control rounds.")
    heat_hold_s: float = Field(
        900,
        ge=0,
        description="Hysteresis window: after a change (or an escalation) the ceiling is not "
        "changed again for demand reasons within this many seconds.",
    )
    heat_deadband_replicas: float = Field(
        0.25,
        ge=0,
        lt=1,
        description="Extra distance, in replicas beyond rounding, the demand target must move "
        "from the current ceiling before it changes.",
    )
    heat_research_topic: str = Field(
        RESEARCH_LANE.name, description="The research lane's topic (whose backlog is probed)."
    )
    heat_research_group: str = Field(
        ALIGNMENT_RESEARCH_GROUP,
        description="Alignment's consumer group on the research lane (committed offsets are "
        "what counts as consumed).",
    )

    @model_validator(mode="after")
    def _bounds_consistent(self) -> HeatSettings:
        if self.heat_min_replicas > self.heat_max_replicas:
            raise ValueError(
                f"GENOMEBUS_HEAT_MIN_REPLICAS ({self.heat_min_replicas}) is above "
                f"GENOMEBUS_HEAT_MAX_REPLICAS ({self.heat_max_replicas})"
            )
        if self.heat_escalation_margin_s >= self.heat_max_research_wait_s:
            raise ValueError(
                "GENOMEBUS_HEAT_ESCALATION_MARGIN_S must be below "
                "GENOMEBUS_HEAT_MAX_RESEARCH_WAIT_S, or every waiting sample escalates"
            )
        return self

    @property
    def escalate_after_s(self) -> float:
        """Age of the oldest waiting research sample from which the ceiling goes to the max."""
        return self.heat_max_research_wait_s - self.heat_escalation_margin_s
