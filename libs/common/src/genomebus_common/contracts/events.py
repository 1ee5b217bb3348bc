"""The event contracts: what services say to each other on Kafka.

These are versioned contracts. A change that keeps old readers working (a new optional field)
keeps ``schema_version``; a change of meaning or a removed field is a new version and a new
class, published beside the old one until no reader needs it. Readers ignore fields they do not
know, so producers may add optional fields first.

Every sample event carries: event id, schema version, occurrence time, correlation id (one per
sample's journey, also the trace's anchor), the sample id, the patient's pseudonym (never a
national id: a validator refuses anything shaped like a CPR number), object references with
their sha256 and size, the reference genome's id and digest, and the provenance of the tools.
"""

from __future__ import annotations

import base64
import os
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, Self, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from genomebus_common.contracts.identifiers import looks_like_national_id

# Nothing that could be a national id may travel on the bus, in any free-text field either
# (``identifiers.looks_like_national_id``: any spelling). Generated ids must therefore not be
# hex, where ten digits in a row turn up now and then: ``new_id`` makes ids that never look like
# a CPR.
PSEUDONYM_PATTERN = r"^pk[0-9]{1,4}_[0-9a-f]{64}$"


def new_id(prefix: str) -> str:
    """A random id that can never look like a CPR number: base32 has no 0, 1, 8 or 9, so no
    day-month pair can be formed."""
    return f"{prefix}{base64.b32encode(os.urandom(10)).decode().lower()}"


def _refuse_national_id(value: str) -> str:
    if looks_like_national_id(value):
        raise ValueError("looks like a national id (CPR); only pseudonyms may be published")
    return value


SafeText = Annotated[str, AfterValidator(_refuse_national_id)]
Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="Lower-case hex SHA-256.")]
PatientPseudonym = Annotated[
    str,
    Field(
        pattern=PSEUDONYM_PATTERN,
        description="Keyed HMAC-SHA256 of the national id, prefixed by the key version "
        "(pk<version>_<hex>). Never reversible without the key, which only ingest holds.",
        examples=["pk1_" + "0" * 64],
    ),
]
Identifier = Annotated[
    str,
    Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"),
    AfterValidator(_refuse_national_id),
]


def _now() -> datetime:
    return datetime.now(UTC)


class Contract(BaseModel):
    """Base of every contract model: immutable, forward compatible (unknown fields ignored)."""

    model_config = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=False)


ObjectKey = Annotated[
    str, Field(min_length=1, max_length=1024), AfterValidator(_refuse_national_id)
]


class ObjectRef(Contract):
    """Where an object lives and how to know it is the right one."""

    bucket: Identifier
    key: ObjectKey
    sha256: Sha256Hex
    size: int = Field(ge=0, description="Size in bytes.")
    content_type: str = "application/octet-stream"


class ReferenceGenome(Contract):
    """The exact reference the data are relative to."""

    id: Identifier = Field(description="Registered reference id.", examples=["GRCh37-chrX-70M"])
    digest: str = Field(
        pattern=r"^SQC\.[A-Za-z0-9_-]{32}$",
        description="GA4GH refget-style digest of the ordered per-sequence digests: the "
        "same id with another digest is another reference.",
    )


class ToolProvenance(Contract):
    name: SafeText
    version: SafeText
    command: SafeText | None = Field(None, description="The command line, without paths to data.")


class Producer(Contract):
    service: SafeText
    version: SafeText


class Priority(StrEnum):
    """How urgently a sample must be processed: each has its own topic lane."""

    URGENT_CLINICAL = "urgent_clinical"
    ROUTINE = "routine"
    RESEARCH = "research"


class Event(Contract):
    """Fields every event carries."""

    event_type: ClassVar[str]
    #: An event that must never be parked in a dead-letter topic for a transient failure (a
    #: consent change, a removal): every subscriber retries it until it passes, in order.
    never_parked: ClassVar[bool] = False
    schema_version: int

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4, description="Unique per event.")
    occurred_at: datetime = Field(default_factory=_now, description="When it happened (UTC).")
    correlation_id: Identifier = Field(
        description="Shared by every event of one journey (one sample, one consent change)."
    )
    producer: Producer | None = None

    @model_validator(mode="after")
    def _aware_time(self) -> Event:
        if self.occurred_at.tzinfo is None:
            raise ValueError("occurred_at must carry a time zone")
        return self

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, data: bytes | str) -> Self:
        return cls.model_validate_json(data)


F = TypeVar("F", bound="SampleEvent")


class SampleEvent(Event):
    """An event about one sample of one patient."""

    sample_id: Identifier
    patient_pseudonym: PatientPseudonym
    reference: ReferenceGenome
    hospital_id: Identifier | None = Field(
        None, description="The treating hospital that sent the sample (added in v1, optional)."
    )

    def carried(self, producer: Producer | None) -> dict[str, Any]:
        """The fields every event that follows this one about the same sample carries over:
        one place, so no follow-on event forgets one (a missing hospital id hides a sample from
        its hospital)."""
        return {
            "correlation_id": self.correlation_id,
            "sample_id": self.sample_id,
            "patient_pseudonym": self.patient_pseudonym,
            "reference": self.reference,
            "hospital_id": self.hospital_id,
            "producer": producer,
        }

    @property
    def lane(self) -> Priority:
        """The priority lane the sample travels in: this event's own, or routine for an event
        that carries none (a ``SampleAligned`` from before priorities were carried)."""
        priority = getattr(self, "priority", None)
        return priority if isinstance(priority, Priority) else Priority.ROUTINE

    def follow_on(self, event_type: type[F], producer: Producer | None, **fields: Any) -> F:
        """The next event about this sample: the carried fields, the sample's lane when
        ``event_type`` has a priority, and ``fields`` (which win over both). One place, because
        a stage building it field by field would sooner or later forget one: a missing hospital
        id hides a sample from its hospital, a missing priority drops an urgent sample into the
        routine lane. A field the next event does not have is refused, not dropped: the models
        ignore unknown fields, so a misspelt ``energy`` would otherwise vanish silently."""
        unknown = sorted(fields.keys() - event_type.model_fields.keys())
        if unknown:
            raise TypeError(f"{event_type.__name__} has no field(s) {', '.join(unknown)}")
        carried = self.carried(producer)
        if "priority" in event_type.model_fields:
            carried["priority"] = self.lane
        return event_type.model_validate({**carried, **fields})


class ReadGroup(Contract):
    id: Identifier
    sample: Identifier
    library: Identifier
    platform: Literal["ILLUMINA", "MGI", "ONT", "PACBIO", "ELEMENT", "ULTIMA"] = "ILLUMINA"
    platform_unit: Identifier | None = None


class SampleReceived(SampleEvent):
    """A hospital's sample passed ingest's checks; its reads are stored and verified."""

    event_type: ClassVar[str] = "sample.received"
    schema_version: Literal[1] = 1

    hospital_id: Identifier
    lis_order_id: Identifier
    priority: Priority
    sequencing_run: Identifier
    read_group: ReadGroup
    reads_r1: ObjectRef
    reads_r2: ObjectRef
    read_pairs: int = Field(ge=0)
    read_bases: int | None = Field(
        None,
        ge=0,
        description="Bases of both mates, as ingest counted them (added compatibly; optional): "
        "alignment cuts the reads into chunks only when they hold more than one chunk.",
    )


class ScatterSummary(Contract):
    """How a stage cut one sample's work into units that any of its workers could take."""

    units: int = Field(ge=1, description="Units of work (read chunks, genome regions).")
    unit_kind: Literal["read_chunk", "region"]
    gather_seconds: float = Field(ge=0, description="Wall time of the gather (merge) step.")


class AlignmentMetrics(Contract):
    reads_total: int = Field(ge=0)
    mapping_rate: float = Field(ge=0, le=1)
    duplicate_rate: float = Field(ge=0, le=1)
    mean_coverage: float = Field(ge=0)


class EnergyEstimate(Contract):
    """What a stage's tools cost in energy, and how much of it warmed a building: an estimate.

    Measured: the CPU seconds (user + system) of the tool processes the stage ran, read from the
    kernel when each process ended. Estimated: kWh = CPU seconds x configured watts per busy
    core / 3.6e6, and heat recovered = kWh x the recovery fraction of the node the work ran on.
    ``method`` says so in words, so no figure can be mistaken for a meter reading.
    """

    estimate: Literal[True] = Field(
        default=True, description="Always true: these are not meter readings."
    )
    method: SafeText = Field(description="How the figures were derived, in words.")
    cpu_seconds: float = Field(ge=0, description="User + system CPU of the stage's tools.")
    wall_seconds: float = Field(ge=0, description="Wall-clock time of the stage's tool runs.")
    watts_per_core: float = Field(ge=0, description="Configured power of one busy core.")
    kwh: float = Field(ge=0, description="Estimated electrical energy of the tools.")
    heat_recovery_fraction: float = Field(
        ge=0, le=1, description="Share of the node's heat reused (0 where none is)."
    )
    heat_recovered_kwh: float = Field(ge=0, description="Estimated heat delivered for reuse.")
    node: Identifier | None = Field(None, description="The node the work ran on, when known.")


class SampleAligned(SampleEvent):
    """Reads aligned, sorted, duplicate-marked, indexed and checked."""

    event_type: ClassVar[str] = "sample.aligned"
    schema_version: Literal[1] = 1

    bam: ObjectRef
    bam_index: ObjectRef
    metrics: AlignmentMetrics
    tools: list[ToolProvenance]
    energy: EnergyEstimate | None = Field(
        None, description="Estimated energy of this stage's tools (added compatibly; optional)."
    )
    priority: Priority | None = Field(
        None,
        description="The sample's priority lane, so later stages scatter its work on the same "
        "lane (added compatibly; optional: a sample without it is routine).",
    )
    scatter: ScatterSummary | None = Field(
        None, description="How the stage's work was cut into units (added compatibly; optional)."
    )


class VariantCounts(Contract):
    records: int = Field(ge=0)
    snv: int = Field(ge=0)
    indel: int = Field(ge=0)
    ti_tv: float | None = Field(None, ge=0)
    het_hom_ratio: float | None = Field(None, ge=0)


class VariantsCalled(SampleEvent):
    """Variants called, normalised, bgzipped, indexed and checked."""

    event_type: ClassVar[str] = "variants.called"
    schema_version: Literal[1] = 1

    bam: ObjectRef
    vcf: ObjectRef
    vcf_index: ObjectRef
    counts: VariantCounts
    tools: list[ToolProvenance]
    energy: EnergyEstimate | None = Field(
        None, description="Estimated energy of this stage's tools (added compatibly; optional)."
    )
    scatter: ScatterSummary | None = Field(
        None, description="How the stage's work was cut into units (added compatibly; optional)."
    )


class VariantsReady(SampleEvent):
    """A sample's variants are in the national registry and queryable (per consent)."""

    event_type: ClassVar[str] = "variants.ready"
    schema_version: Literal[1] = 1

    vcf: ObjectRef
    variants_loaded: int = Field(
        ge=0,
        description="Distinct variants (one allele each) of the sample now in the registry. "
        "Before whole-genome blocks (registry migration 0013) it counted only variants new to "
        "the registry; at whole-genome scale that costs a lookup per call, so it counts the "
        "sample's own.",
    )
    genotypes_loaded: int = Field(ge=0, description="The sample's genotypes now in the registry.")
    energy: EnergyEstimate | None = Field(
        None,
        description="The sample's estimated totals over the stages that reported energy "
        "(added compatibly; optional).",
    )


class ResearchUse(StrEnum):
    ALLOWED = "allowed"
    OWN_TREATMENT_ONLY = "own_treatment_only"


class SecondaryFindings(StrEnum):
    REPORT = "report"
    DO_NOT_REPORT = "do_not_report"


class ConsentChanged(Event):
    """A new version of one patient's consent. Never an overwrite: versions only grow."""

    event_type: ClassVar[str] = "consent.changed"
    never_parked: ClassVar[bool] = True
    schema_version: Literal[1] = 1

    patient_pseudonym: PatientPseudonym
    version: int = Field(ge=1, description="Consent version for this patient, from 1 upwards.")
    analysis_consent_given: bool
    consent_document: SafeText | None = Field(None, description="Reference to the written form.")
    consent_date: datetime | None = None
    secondary_findings: SecondaryFindings | None = None
    research_use: ResearchUse
    withdrawn: bool = False
    recorded_by: SafeText
    reason: SafeText | None = None


class SampleRemoved(Event):
    """A hospital withdrew a sample: its data must go from every store that holds them."""

    event_type: ClassVar[str] = "sample.removed"
    never_parked: ClassVar[bool] = True
    schema_version: Literal[1] = 1

    sample_id: Identifier
    patient_pseudonym: PatientPseudonym
    hospital_id: Identifier
    reason: SafeText
    requested_by: SafeText


class SampleRegistered(Event):
    """A hospital registered a sample of this patient and its reads passed ingest's checks: it
    now treats the patient, and may record and read the patient's consent (consent keeps who
    treats whom from these). Sent once per sample, when it reaches awaiting_consent."""

    event_type: ClassVar[str] = "sample.registered"
    # a lost one would shut the hospital out of its patient's consent
    never_parked: ClassVar[bool] = True
    schema_version: Literal[1] = 1

    sample_id: Identifier
    patient_pseudonym: PatientPseudonym
    hospital_id: Identifier


class Stage(StrEnum):
    INGEST = "ingest"
    ALIGNMENT = "alignment"
    CALLING = "calling"
    CONSENT = "consent"
    REGISTRY = "registry"


class WorkUnit(SampleEvent):
    """One unit of a stage's scattered work on a sample (a chunk of reads, a genome region).

    Internal to the stage that scatters it, but a contract all the same: any worker of that
    stage, of any version running during a rolling update, may take it. The unit's inputs are
    in the plan (an object beside the stage's outputs), so the event stays small however large
    the sample. Its event id is derived from (stage, sample, unit), so a unit published twice is
    recognisably the same unit.
    """

    event_type: ClassVar[str] = "work.unit"
    schema_version: Literal[1] = 1

    stage: Stage
    priority: Priority
    unit_index: int = Field(ge=0)
    unit_count: int = Field(ge=1)
    plan: ObjectRef = Field(description="The stage's plan for the sample: every unit's inputs.")

    @model_validator(mode="after")
    def _index_in_range(self) -> WorkUnit:
        if self.unit_index >= self.unit_count:
            raise ValueError("unit_index must be below unit_count")
        return self


class StageProgress(SampleEvent):
    """How far a stage is with one sample's scattered work: units done of units planned.

    Published when the sample is planned (0 done) and whenever a unit is done, by whichever
    worker did it; several workers publish for one sample, so a reader keeps the largest
    ``units_done`` it has seen rather than the last one to arrive.
    """

    event_type: ClassVar[str] = "stage.progress"
    schema_version: Literal[1] = 1

    stage: Stage
    unit_kind: Literal["read_chunk", "region"]
    units_done: int = Field(ge=0)
    units_total: int = Field(ge=1)

    @model_validator(mode="after")
    def _done_within_total(self) -> StageProgress:
        if self.units_done > self.units_total:
            raise ValueError("units_done must not exceed units_total")
        return self


class StageFailed(Event):
    """A stage gave up on an event; the event itself sits in the dead-letter topic."""

    event_type: ClassVar[str] = "stage.failed"
    schema_version: Literal[1] = 1

    stage: Stage
    sample_id: Identifier | None = None
    error_code: SafeText
    reason: SafeText
    retriable: bool = Field(description="True when the cause was transient (retries exhausted).")
    source_topic: str
    source_partition: int
    source_offset: int
    source_event_id: uuid.UUID | None = None


ALL_EVENTS: tuple[type[Event], ...] = (
    SampleReceived,
    SampleAligned,
    VariantsCalled,
    ConsentChanged,
    VariantsReady,
    SampleRemoved,
    StageFailed,
    WorkUnit,
    StageProgress,
    SampleRegistered,
)


def schema_id(event: type[Event]) -> str:
    """Stable name of one contract version, e.g. ``sample.received.v1``."""
    version = event.model_fields["schema_version"].default
    return f"{event.event_type}.v{version}"


def json_schema(event: type[Event]) -> dict[str, Any]:
    schema = event.model_json_schema(mode="serialization")
    schema["$id"] = f"urn:genomebus:event:{schema_id(event)}"
    schema["x-event-type"] = event.event_type
    return schema
