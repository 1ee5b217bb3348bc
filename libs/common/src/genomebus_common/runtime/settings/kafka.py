"""How a service reaches Kafka, as whom, and how patiently it retries one event.

The SASL check runs when the settings are read: a missing user fails the start naming the
variables, not the first connection with an obscure handshake error.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator

from genomebus_common.runtime.settings.base import CommonSettings


class KafkaSettings(CommonSettings):
    """The brokers, this service's Kafka identity, topic creation and handler retries."""

    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092",
        description="Comma-separated Kafka bootstrap servers.",
        examples=["kafka:9092"],
    )
    kafka_client_id: str | None = Field(
        None, description="Kafka client id; defaults to the service name."
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL"] = Field(
        "PLAINTEXT",
        description="How clients reach Kafka: SASL_SSL on Kubernetes (Strimzi's TLS listener "
        "with SCRAM users); SASL_PLAINTEXT only for the loopback dev stack; PLAINTEXT for a "
        "broker without identities (docker compose).",
        examples=["SASL_SSL"],
    )
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = Field(
        "SCRAM-SHA-512", description="SASL mechanism, with a SASL_* protocol."
    )
    kafka_sasl_username: str | None = Field(
        None,
        description="This service's Kafka user (its ACLs say what it may read and write); "
        "required with a SASL_* protocol.",
        examples=["genomebus-alignment"],
    )
    kafka_sasl_password: SecretStr | None = Field(
        None, description="The Kafka user's password; required with a SASL_* protocol."
    )
    kafka_ssl_cafile: str | None = Field(
        None,
        description="CA certificate(s) that signed the brokers' TLS certificates (Strimzi: the "
        "cluster CA); unset uses the system's trust store.",
        examples=["/etc/genomebus/kafka-ca/ca.crt"],
    )
    kafka_create_topics: bool = Field(
        True,
        description="Create missing topics (and their DLQs) at start-up. Turn off where an "
        "operator owns the topics (Strimzi on Kubernetes; the dev stack's `up`, whose service "
        "launcher turns it off): a service then refuses to start until the topics it uses "
        "exist, rather than create single-replica ones (and its Kafka user may not create any).",
    )
    kafka_max_poll_interval_s: int = Field(
        6 * 3600,
        ge=10,
        description="Longest one event may take to handle before Kafka gives its partition to "
        "another worker; alignment of a whole genome takes hours.",
    )
    handler_max_attempts: int = Field(
        5,
        ge=1,
        description="Attempts at one event when it fails for a transient cause, before it goes "
        "to the dead-letter topic (nothing is dropped: it can be replayed from there).",
    )
    handler_retry_initial_s: float = Field(
        0.5, gt=0, description="First backoff between attempts; doubles each attempt."
    )
    handler_retry_max_s: float = Field(30.0, gt=0, description="Longest backoff between attempts.")

    @model_validator(mode="after")
    def _sasl_needs_a_user(self) -> Self:
        """Fail at start, naming the variables, not at the first connection with an obscure
        handshake error."""
        if self.kafka_security_protocol.startswith("SASL_") and not (
            self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ValueError(
                f"GENOMEBUS_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                "GENOMEBUS_KAFKA_SASL_USERNAME and GENOMEBUS_KAFKA_SASL_PASSWORD"
            )
        return self

    @property
    def consumer_group(self) -> str:
        return f"genomebus.{self.service_name}"
