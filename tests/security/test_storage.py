"""Object storage: each hospital's LIS reaches only its own landing prefix; every object is
encrypted at rest. On the real MinIO of the dev stack."""

from __future__ import annotations

import io
import uuid

import pytest
from minio import Minio
from minio.error import S3Error

from genomebus_common.runtime.objectstore import ObjectStore
from genomebus_common.runtime.settings import ServiceSettings
from genomebus_ops.landing import admin_client, grant_landing

pytestmark = pytest.mark.integration
LANDING = "genomebus-landing"


def _as(settings: ServiceSettings, access: str, secret: str) -> Minio:
    return Minio(
        settings.s3_endpoint, access_key=access, secret_key=secret, secure=settings.s3_secure
    )


def _refused(call) -> bool:
    try:
        result = call()
        if hasattr(result, "__iter__") and not isinstance(result, (bytes, str)):
            list(result)
    except S3Error as error:
        return error.code == "AccessDenied"
    return False


def test_a_hospitals_landing_credentials_reach_only_its_own_prefix(
    settings: ServiceSettings, store: ObjectStore
) -> None:
    store.ensure_bucket(LANDING)
    admin = admin_client(
        settings.s3_endpoint, settings.s3_access_key, settings.s3_secret_key.get_secret_value()
    )
    rh, ouh = grant_landing(admin, LANDING, "RH"), grant_landing(admin, LANDING, "OUH")
    run = uuid.uuid4().hex[:8]
    ouh_client = _as(settings, ouh.access_key, ouh.secret_key)
    ouh_client.put_object(LANDING, f"OUH/{run}/R1.fastq.gz", io.BytesIO(b"odense reads"), 12)

    rh_client = _as(settings, rh.access_key, rh.secret_key)
    rh_client.put_object(
        LANDING, f"RH/{run}/R1.fastq.gz", io.BytesIO(b"own reads"), 9
    )  # its own: fine
    assert [o.object_name for o in rh_client.list_objects(LANDING, prefix=f"RH/{run}/")] == [
        f"RH/{run}/R1.fastq.gz"
    ]
    assert rh_client.get_object(LANDING, f"RH/{run}/R1.fastq.gz").read() == b"own reads"

    assert _refused(lambda: rh_client.list_objects(LANDING, prefix="OUH/")), (
        "RH listed OUH's prefix"
    )
    assert _refused(lambda: rh_client.list_objects(LANDING, prefix="", recursive=True)), (
        "RH listed the bucket"
    )
    assert _refused(lambda: rh_client.get_object(LANDING, f"OUH/{run}/R1.fastq.gz")), (
        "RH read OUH's reads"
    )
    assert _refused(lambda: rh_client.stat_object(LANDING, f"OUH/{run}/R1.fastq.gz")), (
        "RH saw OUH's object's size"
    )
    assert _refused(
        lambda: rh_client.put_object(LANDING, f"OUH/{run}/R2.fastq.gz", io.BytesIO(b"x"), 1)
    ), "RH wrote into OUH's prefix"
    assert _refused(lambda: rh_client.remove_object(LANDING, f"OUH/{run}/R1.fastq.gz")), (
        "RH deleted OUH's reads"
    )
    assert store.client.stat_object(LANDING, f"OUH/{run}/R1.fastq.gz").size == 12
    assert _refused(lambda: rh_client.list_objects("genomebus-reads", prefix="")), (
        "RH listed the reads bucket"
    )


def test_every_object_is_encrypted_at_rest(store: ObjectStore, bucket: str) -> None:
    ref = store.put_stream(bucket, "secret.txt", io.BytesIO(b"a patient's reads"))
    stat = store.client.stat_object(bucket, ref.key)
    # MinIO with a KMS encrypts each object under the KMS key (SSE-KMS, reported as aws:kms)
    assert stat.metadata.get("x-amz-server-side-encryption") in ("aws:kms", "AES256"), dict(
        stat.metadata
    )


def test_each_service_reaches_only_its_own_buckets(
    settings: ServiceSettings, store: ObjectStore
) -> None:
    """As a compromised pod would try: alignment's keys cannot read a hospital's landing prefix
    or write a VCF; the registry's cannot write anything; consent has no S3 identity at all."""
    from genomebus_devstack.identities import service_s3_env

    def client_of(service: str) -> Minio:
        env = service_s3_env(service)
        assert env, "the dev stack made no service identities"
        return _as(settings, env["GENOMEBUS_S3_ACCESS_KEY"], env["GENOMEBUS_S3_SECRET_KEY"])

    for name in ("genomebus-landing", "genomebus-variants", "genomebus-reads"):
        store.ensure_bucket(name)
    store.client.put_object("genomebus-landing", "OUH/x/R1.fastq.gz", io.BytesIO(b"reads"), 5)
    alignment, registry, consent = (
        client_of("alignment"),
        client_of("registry"),
        client_of("consent"),
    )

    assert _refused(lambda: alignment.get_object("genomebus-landing", "OUH/x/R1.fastq.gz"))
    assert _refused(
        lambda: alignment.put_object("genomebus-variants", "forged.vcf.gz", io.BytesIO(b"x"), 1)
    )
    assert _refused(
        lambda: registry.put_object("genomebus-variants", "forged.vcf.gz", io.BytesIO(b"x"), 1)
    )
    assert _refused(lambda: alignment.remove_object("genomebus-reads", "samples/any/R1.fastq.gz"))
    alignment.put_object(
        "genomebus-alignments", f"probe/{uuid.uuid4().hex}", io.BytesIO(b"ok"), 2
    )  # its own
    store.ensure_bucket("genomebus-alignments")
    assert _refused(
        lambda: alignment.set_bucket_policy(
            "genomebus-alignments",
            '{"Version": "2012-10-17", '
            '"Statement": [{"Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject"], '
            '"Resource": ["arn:aws:s3:::genomebus-alignments/*"]}]}',
        )
    ), "alignment made its bucket public"
    assert _refused(lambda: alignment.remove_bucket("genomebus-alignments"))

    def no_identity() -> None:
        consent.list_buckets()

    try:
        no_identity()
        raise AssertionError("consent's pod reached the object store")
    except S3Error as error:
        assert error.code in ("InvalidAccessKeyId", "AccessDenied"), error.code
