"""Kafka configuration rendering and the KRaft cluster id format."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from genomebus_devstack import kafka
from genomebus_devstack.procs import StackError


def _props(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return dict(pairs)


def _render(tmp_path: Path) -> dict[str, str]:
    return _props(
        kafka.render_properties(
            port=21001, controller_port=21002, data_dir=tmp_path, admin_password="s3cret"
        )
    )


def test_properties_single_kraft_node(tmp_path: Path) -> None:
    props = _render(tmp_path)
    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "1"
    assert props["listeners"] == "CLIENT://127.0.0.1:21001,CONTROLLER://127.0.0.1:21002"
    assert props["advertised.listeners"] == "CLIENT://127.0.0.1:21001"
    assert props["controller.listener.names"] == "CONTROLLER"
    assert props["inter.broker.listener.name"] == "CLIENT"
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:21002"
    # --standalone formatting and static voters are mutually exclusive.
    assert "controller.quorum.voters" not in props
    assert props["log.dirs"] == str(tmp_path)
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
        "share.coordinator.state.topic.replication.factor",
        "share.coordinator.state.topic.min.isr",
    ):
        assert props[key] == "1", key
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["num.partitions"] == "3"
    assert props["auto.create.topics.enable"] == "false"  # as on Kubernetes


def test_properties_identities_and_acls_as_in_production(tmp_path: Path) -> None:
    """SCRAM-SHA-512 users on the client listener, StandardAuthorizer denying what no ACL
    allows, admin the one super user; no listener accepts an unauthenticated client."""
    props = _render(tmp_path)
    assert (
        props["listener.security.protocol.map"] == "CLIENT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT"
    )
    assert props["sasl.enabled.mechanisms"].split(",")[0] == "SCRAM-SHA-512"
    assert props["sasl.mechanism.inter.broker.protocol"] == "SCRAM-SHA-512"
    assert (
        props["authorizer.class.name"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    )
    assert props["super.users"] == "User:admin"
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["sasl.mechanism.controller.protocol"] == "PLAIN"
    # PLAIN (for Debian's kcat) knows the administrator alone
    assert props["listener.name.client.plain.sasl.jaas.config"].count("user_") == 1
    assert 'user_admin="s3cret"' in props["listener.name.controller.plain.sasl.jaas.config"]


def test_format_argument_carries_no_clear_password() -> None:
    """The formatter gets SCRAM's salted password: a clear one would show in `ps`."""
    import hashlib

    from genomebus_devstack import kafka_users

    salt = b"0123456789abcdef"
    arg = kafka_users.format_argument("genomebus-ingest", "pw-123", salt=salt)
    assert "pw-123" not in arg
    salted = base64.b64encode(hashlib.pbkdf2_hmac("sha512", b"pw-123", salt, 4096)).decode()
    assert arg == (
        f"SCRAM-SHA-512=[name=genomebus-ingest,iterations=4096,"
        f'salt="{base64.b64encode(salt).decode()}",saltedpassword="{salted}"]'
    )


def test_users_file_is_private_and_stable(tmp_path: Path) -> None:
    from genomebus_devstack import kafka_users

    first = kafka_users.ensure(tmp_path, ["admin", "genomebus-ingest"])
    again = kafka_users.ensure(tmp_path, ["admin", "genomebus-ingest", "genomebus-heat"])
    assert {k: again[k] for k in first} == first and "genomebus-heat" in again
    assert kafka_users.users_file(tmp_path).stat().st_mode & 0o077 == 0


def test_log4j2_config_targets_component_log(tmp_path: Path) -> None:
    text = kafka.render_log4j2(tmp_path / "kafka.log")
    assert f"appender.file.fileName = {tmp_path / 'kafka.log'}" in text
    assert "rootLogger.appenderRef.file.ref = FILE" in text


@pytest.mark.parametrize("_", range(200))
def test_cluster_id_format(_: int) -> None:
    cid = kafka.new_cluster_id()
    assert len(cid) == 22
    assert not cid.startswith("-")
    assert kafka.is_valid_cluster_id(cid)
    assert len(base64.urlsafe_b64decode(cid + "==")) == 16


@pytest.mark.parametrize("bad", ["", "-" + "A" * 21, "A" * 21, "A" * 23, "A" * 21 + "=", "A+" * 11])
def test_invalid_cluster_ids(bad: str) -> None:
    assert not kafka.is_valid_cluster_id(bad)


@pytest.mark.parametrize(
    ("text", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('openjdk version "21" 2023-09-19', 21),
        ('java version "1.8.0_392"', 8),
    ],
)
def test_parse_java_major(text: str, major: int) -> None:
    assert kafka.parse_java_major(text) == major


def test_parse_java_major_garbage() -> None:
    with pytest.raises(StackError, match="Java version"):
        kafka.parse_java_major("command not found")


def test_pom_is_package_data() -> None:
    """kafka.install feeds this file to Maven; it must ship inside the package."""
    from importlib import resources

    pom = resources.files("genomebus_devstack") / "kafka-pom.xml"
    text = pom.read_text()
    assert "${kafka.version}" in text and "${log4j.version}" in text


def test_installed_jars_needs_complete_marker(tmp_path: Path) -> None:
    (tmp_path / "kafka_2.13-x.jar").write_bytes(b"")
    assert kafka.installed_jars(tmp_path) == []
    (tmp_path / kafka.COMPLETE_MARKER).write_text("1 jars\n")
    assert [p.name for p in kafka.installed_jars(tmp_path)] == ["kafka_2.13-x.jar"]
