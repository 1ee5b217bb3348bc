"""Who a Kafka client is and how it reaches the brokers, from the settings: one function per kind
of client, so that no code path can open a connection without this service's identity.

Every client genomebus builds goes through here: the FastStream broker (``broker_security``),
and every aiokafka producer, consumer and admin client (``client_options``). With ACLs on the
broker, a client built with bare ``bootstrap_servers`` is refused at its first request; keeping
the construction in one place is what makes the identity impossible to forget.
"""

from __future__ import annotations

import ssl
from typing import Any

from faststream.security import (
    BaseSecurity,
    SASLPlaintext,
    SASLScram256,
    SASLScram512,
)

from genomebus_common.runtime.settings import KafkaSettings

_SASL_SECURITY: dict[str, type[SASLPlaintext | SASLScram256 | SASLScram512]] = {
    "PLAIN": SASLPlaintext,
    "SCRAM-SHA-256": SASLScram256,
    "SCRAM-SHA-512": SASLScram512,
}


def ssl_context(settings: KafkaSettings) -> ssl.SSLContext | None:
    """A verifying TLS context for the SSL protocols (hostname checked, the configured CA or the
    system's), None for the plain ones."""
    if not settings.kafka_security_protocol.endswith("SSL"):
        return None
    return ssl.create_default_context(cafile=settings.kafka_ssl_cafile)


def _password(settings: KafkaSettings) -> str:
    secret = settings.kafka_sasl_password
    return secret.get_secret_value() if secret is not None else ""


def client_options(settings: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments for ``AIOKafkaProducer``, ``AIOKafkaConsumer`` and
    ``AIOKafkaAdminClient``: the bootstrap servers and this service's identity."""
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "security_protocol": protocol,
    }
    context = ssl_context(settings)
    if context is not None:
        options["ssl_context"] = context
    if protocol.startswith("SASL_"):
        options |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": settings.kafka_sasl_username,
            "sasl_plain_password": _password(settings),
        }
    return options


def broker_security(settings: KafkaSettings) -> BaseSecurity | None:
    """The same identity for a FastStream ``KafkaBroker`` (its ``security=`` argument)."""
    protocol = settings.kafka_security_protocol
    context = ssl_context(settings)
    if protocol.startswith("SASL_"):
        kind = _SASL_SECURITY[settings.kafka_sasl_mechanism]
        return kind(
            settings.kafka_sasl_username or "",
            _password(settings),
            ssl_context=context,
            use_ssl=context is not None,
        )
    if context is not None:
        return BaseSecurity(ssl_context=context, use_ssl=True)
    return None
