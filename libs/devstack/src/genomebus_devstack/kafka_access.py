"""What the local broker holds besides its users: every topic, and the ACLs of every bus client.

Made at each ``up`` as the administrator, idempotently, like Strimzi's topic and user operators
make them on Kubernetes: services there neither create topics nor grant themselves anything, and
here they run with ``GENOMEBUS_KAFKA_CREATE_TOPICS=false`` too.

The ACLs are kept equal to ``genomebus_common.runtime.kafka_acls.all_rules()``: missing rules are
created, rules of ``genomebus-*`` users that the table no longer has are deleted (rules of other
users are left alone). Why the Kafka protocol through aiokafka: its admin client has no ACL
methods, but aiokafka ships the CreateAcls/DescribeAcls/DeleteAcls requests (v1, which Kafka 4
still serves), and sending them in-process takes milliseconds where Kafka's AclCommand (not in
the broker's jars anyway) would start a JVM per call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

from genomebus_common.runtime.kafka_acls import AclRule, all_rules, managed_user

from .procs import StackError

# Kafka's protocol codes (org.apache.kafka.common.resource / acl enums).
RESOURCE_CODES = {"topic": 2, "group": 3}
PATTERN_CODES = {"literal": 3, "prefixed": 4}
OPERATION_CODES = {"Read": 3, "Write": 4, "Describe": 8}
ANY, ALLOW = 1, 3
ALL_HOSTS = "*"

#: (resource type, name, pattern type, principal, host, operation, permission): an ACL binding
#: as the protocol carries it, so that rules the table cannot express still compare (and go).
Binding = tuple[int, str, int, str, str, int, int]


def binding(rule: AclRule) -> Binding:
    return (
        RESOURCE_CODES[rule.resource],
        rule.name,
        PATTERN_CODES[rule.pattern],
        rule.principal,
        ALL_HOSTS,
        OPERATION_CODES[rule.operation],
        ALLOW,
    )


def _managed(principal: str) -> bool:
    kind, _, user = principal.partition(":")
    return kind == "User" and managed_user(user)


async def _send(admin: Any, request: Any) -> Any:
    """One admin-protocol request (aiokafka's admin client has the transport, not the method)."""
    return await admin._send_request(request)  # noqa: SLF001 - aiokafka has no public call for it


def _check(error_code: int, message: str | None, what: str) -> None:
    if error_code:
        raise StackError(f"Kafka refused to {what}: error {error_code} {message or ''}".rstrip())


async def describe(admin: Any) -> set[Binding]:
    """Every ACL binding of the managed users."""
    from aiokafka.protocol.admin import DescribeAclsRequest  # type: ignore[import-untyped]  # aiokafka ships no py.typed

    response = await _send(admin, DescribeAclsRequest(ANY, None, ANY, None, None, ANY, ANY))
    _check(response.error_code, response.error_message, "list ACLs")
    found: set[Binding] = set()
    for resource_type, name, pattern, acls in response.resources:
        for principal, host, operation, permission in acls:
            if _managed(principal):
                found.add((resource_type, name, pattern, principal, host, operation, permission))
    return found


async def sync(admin: Any, rules: Iterable[AclRule], *, settle_s: float = 20.0) -> tuple[int, int]:
    """Make the managed users' ACLs exactly ``rules``; returns (created, deleted).

    Waits until the broker lists the result: ACL changes go through the metadata log and reach
    the authorizer a moment after the request returns, and a client started right after ``up``
    must not be refused for that.
    """
    from aiokafka.protocol.admin import CreateAclsRequest, DeleteAclsRequest

    wanted = {binding(rule) for rule in rules}
    held = await describe(admin)
    for b in sorted(wanted - held):
        response = await _send(admin, CreateAclsRequest(*b))
        for error_code, message in response.creation_responses:
            _check(error_code, message, f"create ACL {b}")
    for b in sorted(held - wanted):
        response = await _send(admin, DeleteAclsRequest(*b))
        for error_code, message, *_ in response.filter_responses:
            _check(error_code, message, f"delete ACL {b}")
    deadline = time.monotonic() + settle_s
    while (now := await describe(admin)) != wanted:
        if time.monotonic() > deadline:
            raise StackError(
                f"Kafka still lists {len(wanted - now)} missing and "
                f"{len(now - wanted)} stale ACLs after {settle_s:.0f}s"
            )
        await asyncio.sleep(0.2)
    return len(wanted - held), len(held - wanted)


async def provision(bootstrap: str, options: dict[str, str]) -> str:
    """Every topic (and its dead-letter topic) and every bus client's ACLs; a summary line."""
    from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped]  # aiokafka ships no py.typed
    from pydantic import SecretStr

    from genomebus_common.runtime.broker import ensure_topics
    from genomebus_common.runtime.settings import ServiceSettings

    # _env_file is pydantic-settings' init-time option, unknown to the signature; pydantic checks
    # the protocol and mechanism strings against their Literal types.
    settings = ServiceSettings(  # type: ignore[call-arg]  # pydantic-settings' _env_file
        _env_file=None,
        service_name="devstack",
        profile="dev",  # the development stack's own admin: MinIO's keys do not matter here
        kafka_bootstrap_servers=bootstrap,
        kafka_security_protocol=options["security_protocol"],  # type: ignore[arg-type]  # a str; validated
        kafka_sasl_mechanism=options["sasl_mechanism"],  # type: ignore[arg-type]  # a str; validated
        kafka_sasl_username=options["sasl_plain_username"],
        kafka_sasl_password=SecretStr(options["sasl_plain_password"]),
    )
    created_topics = await ensure_topics(settings)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **options)
    await admin.start()
    try:
        rules = all_rules()
        created, deleted = await sync(admin, rules)
    finally:
        await admin.close()
    return (
        f"{len(created_topics)} topics created; {len(rules)} ACLs "
        f"({created} created, {deleted} stale removed)"
    )
