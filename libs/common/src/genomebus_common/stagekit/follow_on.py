"""The next event about a sample, built from the one before it, in one place.

Every stage's event carries the fields of the event it consumed (``SampleEvent.carried``:
journey, sample, patient, reference, hospital), and those that have a priority carry the
sample's lane. Built field by field in each stage, one of them would sooner or later forget
one: a missing hospital id hides a sample from its hospital, a missing priority drops an
urgent sample into the routine lane.
"""

from __future__ import annotations

from typing import TypeVar

from genomebus_common.contracts.events import Priority, Producer, SampleEvent

F = TypeVar("F", bound=SampleEvent)


def lane_of(source: SampleEvent) -> Priority:
    """The priority lane a sample travels in: its event's own, or routine for an event that
    carries none (a ``SampleAligned`` from before priorities were carried)."""
    priority = getattr(source, "priority", None)
    return priority if isinstance(priority, Priority) else Priority.ROUTINE


def follow_on(
    event_type: type[F], source: SampleEvent, producer: Producer | None, **fields: object
) -> F:
    """The next event about ``source``'s sample: the carried fields, the sample's lane when
    ``event_type`` has a priority, and ``fields`` (which win over both)."""
    carried: dict[str, object] = dict(source.carried(producer))
    if "priority" in event_type.model_fields:
        carried["priority"] = lane_of(source)
    return event_type.model_validate({**carried, **fields})


__all__ = ["follow_on", "lane_of"]
