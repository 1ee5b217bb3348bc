"""Kafka ACLs as data, generated from ``topics.BUS_CLIENTS``: the one place that says who may
read and write what.

Two deployments apply the same rules: the dev stack creates them through the Kafka admin
protocol (``genomebus_devstack.kafka_acls``), and ``deploy/k8s/generate.py`` writes them into
Strimzi ``KafkaUser`` resources. Neither states a rule of its own, so the local broker refuses
exactly what production refuses.

Only ALLOW rules exist: the broker runs with ``allow.everyone.if.no.acl.found=false``, so
anything not granted here is denied. READ and WRITE imply DESCRIBE in Kafka; it is never
granted on its own except on consumer groups that a client only watches.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from genomebus_common.contracts.topics import BUS_CLIENTS, BusClient

ResourceType = Literal["topic", "group"]
PatternType = Literal["literal", "prefixed"]
Operation = Literal["Read", "Write", "Describe"]


@dataclass(frozen=True, order=True)
class AclRule:
    """One ALLOW rule for one user, from any host (the names Strimzi's ``simple`` type uses)."""

    user: str
    resource: ResourceType
    name: str
    pattern: PatternType
    operation: Operation

    @property
    def principal(self) -> str:
        return f"User:{self.user}"


def _group(user: str, name: str, operation: Operation) -> AclRule:
    """A group rule; a name ending in a dot is a prefix (see ``BusClient.groups``)."""
    pattern: PatternType = "prefixed" if name.endswith(".") else "literal"
    return AclRule(user, "group", name, pattern, operation)


def rules_for(client: BusClient) -> tuple[AclRule, ...]:
    """Every rule one client needs, sorted (stable output for generated manifests)."""
    user = client.user
    rules = {AclRule(user, "topic", t, "literal", "Write") for t in client.writes}
    rules |= {AclRule(user, "topic", t, "literal", "Read") for t in client.reads}
    rules |= {_group(user, g, "Read") for g in client.groups}
    rules |= {_group(user, g, "Describe") for g in client.watches_groups}
    return tuple(sorted(rules))


def all_rules(clients: Iterable[BusClient] = BUS_CLIENTS.values()) -> tuple[AclRule, ...]:
    return tuple(rule for client in clients for rule in rules_for(client))


def managed_user(user: str) -> bool:
    """Users whose rules the stack keeps in line with the table (and removes when stale)."""
    return user.startswith("genomebus-")
