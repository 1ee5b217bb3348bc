"""A LIS registers a sample and uploads its reads; ingest checks, pseudonymises and publishes."""

from __future__ import annotations

import asyncio
import hashlib
import uuid

import asyncpg
import httpx
import pytest

from genomebus_common.contracts.events import SampleReceived
from genomebus_common.contracts.topics import sample_received_topic
from genomebus_common.runtime.objectstore import ObjectStore
from genomebus_common.runtime.settings import ServiceSettings
from genomebus_common.stagekit.reference import Manifest
from genomebus_ingest.config import IngestSettings

from ..common.kafka_helpers import read_until
from .conftest import TOKENS, give_consent, pseudonym_of, upload_with_the_check_dropped
from .fastq_data import pair

pytestmark = pytest.mark.integration
CPR = "241190-1234"


def registration(reference: Manifest, r1: bytes, r2: bytes, **overrides: object) -> dict:
    body = {
        "hospital_id": "RH",
        "specimen_id": f"SP{uuid.uuid4().hex[:8]}",
        "lis_order_id": "ORD-77",
        "national_id": CPR,
        "sequencing_run": "RUN-2026-11-25",
        "read_group": {"id": "RG1", "library": "LIB1", "platform": "ILLUMINA"},
        "priority": "urgent_clinical",
        "reference_id": reference.reference.id,
        "reads": {
            "r1_sha256": hashlib.sha256(r1).hexdigest(),
            "r2_sha256": hashlib.sha256(r2).hexdigest(),
        },
    }
    body.update(overrides)
    return body


async def test_register_upload_check_and_publish_without_the_national_id(
    lis: httpx.AsyncClient,
    toy_reference: Manifest,
    settings: ServiceSettings,
    ingest_settings: IngestSettings,
    store: ObjectStore,
) -> None:
    r1, r2 = pair(40)
    body = registration(toy_reference, r1, r2)
    await give_consent(lis, CPR, 1)
    created = await lis.post("/v1/samples", json=body)
    assert created.status_code == 201, created.text
    sample = created.json()
    assert sample["status"] == "awaiting_reads" and set(sample["upload"]) == {"R1", "R2"}

    again = await lis.post("/v1/samples", json=body)
    assert again.status_code == 200 and again.json()["sample_id"] == sample["sample_id"]

    assert (await lis.put(sample["upload"]["R1"], content=r1)).json()["status"] == "awaiting_reads"
    done = await lis.put(sample["upload"]["R2"], content=r2)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "received" and done.json()["read_pairs"] == 40
    # Repeats are answered at once, and more of them than ingest has worker threads: an upload
    # answered before its body was read must not leave a thread blocked behind it.
    for _ in range(10):
        assert (await lis.put(sample["upload"]["R2"], content=r2)).status_code == 200, (
            "repeat is fine"
        )

    record = await read_until(
        settings,
        sample_received_topic("urgent_clinical"),  # type: ignore[arg-type]
        lambda r: r.key == sample["sample_id"].encode(),
    )
    event = SampleReceived.from_bytes(record.value)
    assert event.reads_r1.sha256 == body["reads"]["r1_sha256"] and event.read_pairs == 40
    import gzip

    bases = sum(len(line) for data in (r1, r2) for line in gzip.decompress(data).split(b"\n")[1::4])
    assert event.read_bases == bases  # what alignment decides its chunks from
    assert event.reference == toy_reference.reference
    assert event.patient_pseudonym == pseudonym_of(CPR)

    # The national id is nowhere: not on Kafka, not in MinIO keys or metadata, not in ingest's
    # tables.
    forms = {CPR, CPR.replace("-", "")}
    assert not any(f.encode() in record.value for f in forms)
    for ref in (event.reads_r1, event.reads_r2):
        stat = store.client.stat_object(ref.bucket, ref.key)
        assert not any(f in ref.key or f in str(stat.metadata) for f in forms)
    conn = await asyncpg.connect(ingest_settings.postgres_dsn.get_secret_value())
    try:
        rows = []
        for table in ("samples", "rejected_registrations", "genomebus_outbox"):
            rows += await conn.fetch(f"SELECT * FROM {table}")
        dump = " ".join(str(tuple(r)) for r in rows)
    finally:
        await conn.close()
    assert dump and not any(f in dump for f in forms)


async def test_same_id_with_different_content_is_a_conflict(
    lis: httpx.AsyncClient, toy_reference: Manifest
) -> None:
    r1, r2 = pair(5)
    body = registration(toy_reference, r1, r2)
    assert (await lis.post("/v1/samples", json=body)).status_code == 201
    changed = {**body, "lis_order_id": "ORD-OTHER"}
    conflict = await lis.post("/v1/samples", json=changed)
    assert conflict.status_code == 409
    assert conflict.headers["content-type"] == "application/problem+json"
    assert conflict.json()["type"] == "urn:genomebus:problem:sample_conflict"


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("national_id", "310290-1234", "national_id: national id has no real birth date"),
        ("national_id", "12345", "DDMMYY-SSSS"),
        ("reference_id", "GRCh99", "reference 'GRCh99' is not registered"),
    ],
)
async def test_invalid_registrations_are_refused_precisely_and_recorded(
    lis: httpx.AsyncClient,
    toy_reference: Manifest,
    ingest_settings: IngestSettings,
    field: str,
    value: str,
    expected: str,
) -> None:
    r1, r2 = pair(3)
    response = await lis.post(
        "/v1/samples", json=registration(toy_reference, r1, r2, **{field: value})
    )
    assert response.status_code == 422
    assert expected in response.json()["detail"]
    assert value not in response.text or field == "reference_id", "never echo a national id"
    conn = await asyncpg.connect(ingest_settings.postgres_dsn.get_secret_value())
    try:
        assert await conn.fetchval("SELECT count(*) FROM rejected_registrations") == 1
        assert await conn.fetchval("SELECT count(*) FROM samples") == 0
    finally:
        await conn.close()


async def test_schema_errors_name_the_field_and_do_not_echo_values(
    lis: httpx.AsyncClient, toy_reference: Manifest
) -> None:
    r1, r2 = pair(3)
    body = registration(toy_reference, r1, r2, priority="whenever")
    del body["lis_order_id"]
    response = await lis.post("/v1/samples", json=body)
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"lis_order_id", "priority"}
    assert CPR not in response.text


@pytest.mark.parametrize(
    ("defect", "reason"),
    [
        ("truncated", "R1: gzip stream is damaged or truncated"),
        ("mates", "mates have different record counts"),
    ],
)
async def test_bad_reads_reject_the_sample_and_leave_no_objects(
    lis: httpx.AsyncClient, toy_reference: Manifest, store: ObjectStore, defect: str, reason: str
) -> None:
    r1, r2 = pair(300)
    if defect == "truncated":
        r1 = r1[: len(r1) - 200]
    else:
        r2 = pair(299)[1]
    sample = (await lis.post("/v1/samples", json=registration(toy_reference, r1, r2))).json()
    await lis.put(sample["upload"]["R1"], content=r1)
    result = (await lis.put(sample["upload"]["R2"], content=r2)).json()
    assert result["status"] == "rejected"
    assert any(reason in r for r in result["reasons"]), result["reasons"]
    left = list(
        store.client.list_objects("genomebus-reads", prefix=f"samples/{sample['sample_id']}/")
    )
    assert left == []


async def test_an_upload_repeated_after_its_check_failed_finishes_the_check(
    lis: httpx.AsyncClient, toy_reference: Manifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both files were stored, then the check broke off (the object store dropped, the pod
    restarted): the LIS sends the file again, and that moves the sample on."""
    sample = await upload_with_the_check_dropped(lis, toy_reference, monkeypatch)
    again = await lis.put(sample["upload"]["R2"], content=sample["r2"])
    assert again.status_code == 200 and again.json()["status"] == "awaiting_consent", again.json()


async def test_reads_taken_from_the_landing_bucket_survive_a_registration_sent_again(
    lis: httpx.AsyncClient,
    toy_reference: Manifest,
    store: ObjectStore,
    ingest_settings: IngestSettings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The LIS put the files in the landing bucket and registers the sample naming them; the
    copy breaks off after R1 and the LIS sends the registration again (and again after the
    sample moved on): R1 is not copied twice and no retry ever deletes the sample's reads."""
    import io

    import genomebus_common.runtime.objectstore as objectstore
    from genomebus_common.contracts.errors import ObjectStoreUnavailable

    r1, r2 = pair(8)
    prefix = f"RH/{uuid.uuid4().hex[:8]}"  # a hospital's landing prefix is its own id
    for name, data in (("R1", r1), ("R2", r2)):
        store.put_stream(
            ingest_settings.landing_bucket, f"{prefix}/{name}.fastq.gz", io.BytesIO(data)
        )
    body = registration(toy_reference, r1, r2)
    body["reads"] |= {
        "landing_r1_key": f"{prefix}/R1.fastq.gz",
        "landing_r2_key": f"{prefix}/R2.fastq.gz",
    }

    real_open = objectstore.ObjectStore.open

    def r2_unreachable(self: objectstore.ObjectStore, ref: object) -> object:
        if getattr(ref, "key", "").endswith("R2.fastq.gz"):
            raise ObjectStoreUnavailable("connection reset")
        return real_open(self, ref)  # type: ignore[arg-type]

    monkeypatch.setattr(objectstore.ObjectStore, "open", r2_unreachable)
    assert (await lis.post("/v1/samples", json=body)).status_code == 503
    monkeypatch.setattr(objectstore.ObjectStore, "open", real_open)
    sample_id = f"{body['hospital_id']}.{body['specimen_id']}"

    def stored(mate: str) -> object:
        return store.stat(ingest_settings.reads_bucket, f"samples/{sample_id}/{mate}.fastq.gz")

    r1_first = stored("R1").last_modified
    await asyncio.sleep(1.1)  # object times have a resolution of a second
    again = await lis.post("/v1/samples", json=body)
    assert again.status_code in (200, 201) and again.json()["status"] == "awaiting_consent"
    assert stored("R1").last_modified == r1_first, "R1 was copied already: not again"

    third = await lis.post("/v1/samples", json=body)  # after it moved on: nothing changes
    assert third.json()["status"] == "awaiting_consent"
    assert stored("R1").size == len(r1) and stored("R2").size == len(r2)


async def test_wrong_sha256_is_refused_and_nothing_is_stored(
    lis: httpx.AsyncClient, toy_reference: Manifest, store: ObjectStore
) -> None:
    r1, r2 = pair(5)
    sample = (await lis.post("/v1/samples", json=registration(toy_reference, r1, r2))).json()
    response = await lis.put(sample["upload"]["R1"], content=r1 + b"tampered")
    assert response.status_code == 422 and "declared sha256" in response.json()["detail"]
    assert not list(
        store.client.list_objects("genomebus-reads", prefix=f"samples/{sample['sample_id']}/")
    )
    status = (await lis.get(f"/v1/samples/{sample['sample_id']}")).json()
    assert status["status"] == "awaiting_reads" and status["reads_r1"] is None


async def test_a_hospital_sees_and_posts_only_its_own_samples(
    lis: httpx.AsyncClient, toy_reference: Manifest
) -> None:
    r1, r2 = pair(3)
    body = registration(toy_reference, r1, r2)
    sample = (await lis.post("/v1/samples", json=body)).json()
    odense = {"Authorization": f"Bearer {TOKENS['OUH']}"}
    assert (await lis.get(f"/v1/samples/{sample['sample_id']}", headers=odense)).status_code == 404
    assert (await lis.post("/v1/samples", json=body, headers=odense)).status_code == 403
    assert (
        await lis.get(
            f"/v1/samples/{sample['sample_id']}", headers={"Authorization": "Bearer nope"}
        )
    ).status_code == 401
    assert (
        await lis.get(f"/v1/samples/{sample['sample_id']}", headers={"Authorization": ""})
    ).status_code == 401


async def test_health_and_readiness(lis: httpx.AsyncClient) -> None:
    assert (await lis.get("/healthz")).json() == {"status": "ok"}
    ready = await lis.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"kafka": True, "postgres": True}


async def test_a_sample_waits_for_written_consent_and_proceeds_when_it_arrives(
    lis: httpx.AsyncClient, toy_reference: Manifest, settings: ServiceSettings
) -> None:
    cpr = "150372-1111"
    r1, r2 = pair(6)
    sample = (
        await lis.post("/v1/samples", json=registration(toy_reference, r1, r2, national_id=cpr))
    ).json()
    await lis.put(sample["upload"]["R1"], content=r1)
    waiting = (await lis.put(sample["upload"]["R2"], content=r2)).json()
    assert waiting["status"] == "awaiting_consent" and waiting["event_id"] is None

    await give_consent(lis, cpr, 1, given=False)  # a record without written consent: still waits
    assert (await lis.get(f"/v1/samples/{sample['sample_id']}")).json()[
        "status"
    ] == "awaiting_consent"

    await give_consent(lis, cpr, 2)
    released = (await lis.get(f"/v1/samples/{sample['sample_id']}")).json()
    assert released["status"] == "received" and released["consent_version"] == 2
    record = await read_until(
        settings,
        sample_received_topic("urgent_clinical"),  # type: ignore[arg-type]
        lambda r: r.key == sample["sample_id"].encode(),
    )
    assert str(SampleReceived.from_bytes(record.value).event_id) == released["event_id"]


async def test_a_sample_after_withdrawal_is_quarantined_never_processed(
    lis: httpx.AsyncClient, toy_reference: Manifest
) -> None:
    cpr = "150372-2222"
    await give_consent(lis, cpr, 1)
    await give_consent(lis, cpr, 3, withdrawn=True)
    await give_consent(lis, cpr, 2)  # a stale version arriving late changes nothing
    r1, r2 = pair(6)
    sample = (
        await lis.post("/v1/samples", json=registration(toy_reference, r1, r2, national_id=cpr))
    ).json()
    await lis.put(sample["upload"]["R1"], content=r1)
    result = (await lis.put(sample["upload"]["R2"], content=r2)).json()
    assert result["status"] == "quarantined" and result["event_id"] is None
    assert result["consent_version"] == 3 and "withdrawn" in result["reasons"][0]


async def test_waiting_samples_are_quarantined_when_consent_is_withdrawn(
    lis: httpx.AsyncClient, toy_reference: Manifest
) -> None:
    cpr = "150372-3333"
    r1, r2 = pair(6)
    sample = (
        await lis.post("/v1/samples", json=registration(toy_reference, r1, r2, national_id=cpr))
    ).json()
    await lis.put(sample["upload"]["R1"], content=r1)
    await lis.put(sample["upload"]["R2"], content=r2)
    await give_consent(lis, cpr, 1, given=False, withdrawn=True)
    assert (await lis.get(f"/v1/samples/{sample['sample_id']}")).json()["status"] == "quarantined"


async def test_a_hospital_removes_its_sample_and_the_removal_is_published(
    lis: httpx.AsyncClient, toy_reference: Manifest, settings: ServiceSettings, store: ObjectStore
) -> None:
    from genomebus_common.contracts.events import SampleRemoved
    from genomebus_common.contracts.topics import SAMPLE_REMOVED

    r1, r2 = pair(5)
    await give_consent(lis, CPR, 1)
    sample = (await lis.post("/v1/samples", json=registration(toy_reference, r1, r2))).json()
    await lis.put(sample["upload"]["R1"], content=r1)
    await lis.put(sample["upload"]["R2"], content=r2)
    odense = {"Authorization": f"Bearer {TOKENS['OUH']}"}
    url = f"/v1/samples/{sample['sample_id']}"
    assert (
        await lis.delete(url, params={"reason": "wrong patient"}, headers=odense)
    ).status_code == 404
    assert (await lis.delete(url)).status_code == 422, "a reason is required"
    removed = await lis.delete(url, params={"reason": "the lab reported a sample mix-up"})
    assert removed.status_code == 200 and removed.json()["status"] == "removed"
    assert not list(
        store.client.list_objects("genomebus-reads", prefix=f"samples/{sample['sample_id']}/")
    )
    record = await read_until(
        settings, SAMPLE_REMOVED.name, lambda r: r.key == sample["sample_id"].encode()
    )
    event = SampleRemoved.from_bytes(record.value)
    assert event.patient_pseudonym == pseudonym_of(CPR) and "mix-up" in event.reason


async def test_progress_reports_from_many_workers_never_go_back(
    lis: httpx.AsyncClient, toy_reference: Manifest
) -> None:
    """Workers report a sample's units in any order; the hospital's status shows the most done."""
    from genomebus_common.contracts.events import ReferenceGenome, Stage, StageProgress
    from genomebus_common.runtime.broker import Delivery

    r1, r2 = pair(4)
    created = (await lis.post("/v1/samples", json=registration(toy_reference, r1, r2))).json()
    assert created["progress"] is None
    ingest = lis.app.state.resources  # type: ignore[attr-defined]

    def report(stage: Stage, done: int, total: int) -> StageProgress:
        return StageProgress(
            correlation_id=created["sample_id"],
            sample_id=created["sample_id"],
            patient_pseudonym=pseudonym_of(CPR),
            reference=ReferenceGenome.model_validate(toy_reference.reference.model_dump()),
            stage=stage,
            unit_kind="read_chunk" if stage is Stage.ALIGNMENT else "region",
            units_done=done,
            units_total=total,
        )

    delivery = Delivery(topic="genomebus.stage.progress", partition=0, offset=0, key=None)
    for done in (0, 2, 1, 3, 3):  # 1 arrives after 2; 3 twice
        await ingest.apply_progress(report(Stage.ALIGNMENT, done, 3), delivery)
    await ingest.apply_progress(report(Stage.CALLING, 1, 5), delivery)
    progress = (await lis.get(f"/v1/samples/{created['sample_id']}")).json()["progress"]
    assert progress == {
        "alignment": {"done": 3, "total": 3, "unit_kind": "read_chunk"},
        "calling": {"done": 1, "total": 5, "unit_kind": "region"},
    }
