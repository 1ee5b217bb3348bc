"""One hospital never reaches another's reads through the landing bucket.

Observed against the old main: OUH put a FASTQ pair under ``OUH/...``; RH registered a sample
naming those keys with a wrong checksum and got the real SHA-256 of OUH's file in its answer,
then registered again with that digest and was given OUH's patient's reads as its own sample.
"""

from __future__ import annotations

import hashlib
import io
import json
import uuid

import httpx
import pytest

from genomebus_common.runtime.objectstore import ObjectStore
from genomebus_common.stagekit.reference import Manifest
from genomebus_ingest.config import IngestSettings

from ..ingest.fastq_data import pair
from ..ingest.test_api_integration import registration

pytestmark = pytest.mark.integration


def _landing(
    store: ObjectStore, settings: IngestSettings, prefix: str, r1: bytes, r2: bytes
) -> tuple[str, str]:
    keys = f"{prefix}/R1.fastq.gz", f"{prefix}/R2.fastq.gz"
    for key, data in zip(keys, (r1, r2), strict=True):
        store.put_stream(settings.landing_bucket, key, io.BytesIO(data))
    return keys


def _naming(reference: Manifest, keys: tuple[str, str], r1_sha: str, r2_sha: str) -> dict:
    body = registration(reference, b"", b"")
    body["reads"] = {
        "r1_sha256": r1_sha,
        "r2_sha256": r2_sha,
        "landing_r1_key": keys[0],
        "landing_r2_key": keys[1],
    }
    return body


def _secrets_of(r1: bytes, r2: bytes) -> list[str]:
    """What an answer must never carry about files the caller did not send."""
    sizes = [
        form.format(n)
        for n in (len(r1), len(r2))
        for form in ("{} bytes", '"size":{}', '"size": {}')
    ]
    return [hashlib.sha256(r1).hexdigest(), hashlib.sha256(r2).hexdigest(), *sizes]


async def test_another_hospitals_landing_keys_are_answered_as_missing_and_never_taken(
    lis: httpx.AsyncClient,
    toy_reference: Manifest,
    store: ObjectStore,
    ingest_settings: IngestSettings,
) -> None:
    r1, r2 = pair(6, seed=41)
    theirs = _landing(store, ingest_settings, f"OUH/{uuid.uuid4().hex[:8]}", r1, r2)
    wrong = "0" * 64

    probe = await lis.post("/v1/samples", json=_naming(toy_reference, theirs, wrong, wrong))
    answer = probe.text
    assert not any(secret in answer for secret in _secrets_of(r1, r2)), (
        "a digest of OUH's file leaked"
    )
    assert probe.json()["status"] == "rejected"

    missing = (f"OUH/{uuid.uuid4().hex[:8]}/R1.fastq.gz", f"OUH/{uuid.uuid4().hex[:8]}/R2.fastq.gz")
    absent = (
        await lis.post("/v1/samples", json=_naming(toy_reference, missing, wrong, wrong))
    ).json()
    reasons = [
        r.replace(missing[0], theirs[0]).replace(missing[1], theirs[1]) for r in absent["reasons"]
    ]
    assert reasons == probe.json()["reasons"], (
        "an existing foreign key is told apart from a missing one"
    )

    # Knowing the real digests (stolen elsewhere) does not help either.
    real = _naming(
        toy_reference, theirs, hashlib.sha256(r1).hexdigest(), hashlib.sha256(r2).hexdigest()
    )
    taken = (await lis.post("/v1/samples", json=real)).json()
    assert taken["status"] == "rejected" and "not found" in json.dumps(taken["reasons"])
    assert not list(
        store.client.list_objects(
            ingest_settings.reads_bucket, prefix=f"samples/{taken['sample_id']}/", recursive=True
        )
    ), "OUH's reads were copied into RH's sample"


@pytest.mark.parametrize(
    "escape", ["RH/../OUH/{run}/R1.fastq.gz", "RH//{run}/R1.fastq.gz", "RH/./{run}/R1.fastq.gz"]
)
async def test_a_key_that_climbs_out_of_the_own_prefix_is_missing(
    lis: httpx.AsyncClient,
    toy_reference: Manifest,
    store: ObjectStore,
    ingest_settings: IngestSettings,
    escape: str,
) -> None:
    r1, r2 = pair(4, seed=43)
    run = uuid.uuid4().hex[:8]
    _landing(store, ingest_settings, f"OUH/{run}", r1, r2)
    key = escape.format(run=run)
    body = _naming(toy_reference, (key, key.replace("R1", "R2")), "0" * 64, "0" * 64)
    answer = (await lis.post("/v1/samples", json=body)).json()
    assert answer["status"] == "rejected" and "not found" in answer["reasons"][0]


async def test_the_own_wrong_file_is_refused_without_telling_what_it_holds(
    lis: httpx.AsyncClient,
    toy_reference: Manifest,
    store: ObjectStore,
    ingest_settings: IngestSettings,
) -> None:
    r1, r2 = pair(5, seed=47)
    mine = _landing(store, ingest_settings, f"RH/{uuid.uuid4().hex[:8]}", r1, r2)
    answer = await lis.post("/v1/samples", json=_naming(toy_reference, mine, "1" * 64, "2" * 64))
    assert answer.json()["status"] == "rejected"
    assert "sha256" in answer.text and "1" * 64 in answer.text  # what the caller sent may be quoted
    assert not any(secret in answer.text for secret in _secrets_of(r1, r2))
    assert not any(secret in answer.text for secret in _secrets_of(r1, r2))


async def test_an_upload_with_the_wrong_digest_does_not_echo_the_received_one(
    lis: httpx.AsyncClient,
    toy_reference: Manifest,
) -> None:
    r1, r2 = pair(5, seed=53)
    sample = (await lis.post("/v1/samples", json=registration(toy_reference, r1, r2))).json()
    sent = r1 + b"tampered"
    response = await lis.put(sample["upload"]["R1"], content=sent)
    assert response.status_code == 422
    assert hashlib.sha256(sent).hexdigest() not in response.text


async def test_removing_a_sample_deletes_its_landing_originals(
    lis: httpx.AsyncClient,
    toy_reference: Manifest,
    store: ObjectStore,
    ingest_settings: IngestSettings,
) -> None:
    r1, r2 = pair(5, seed=59)
    mine = _landing(store, ingest_settings, f"RH/{uuid.uuid4().hex[:8]}", r1, r2)
    body = _naming(
        toy_reference, mine, hashlib.sha256(r1).hexdigest(), hashlib.sha256(r2).hexdigest()
    )
    sample = (await lis.post("/v1/samples", json=body)).json()
    assert sample["status"] == "awaiting_consent", sample
    removed = await lis.delete(
        f"/v1/samples/{sample['sample_id']}", params={"reason": "sample mix-up"}
    )
    assert removed.json()["status"] == "removed"
    left = [
        o.object_name
        for key in mine
        for o in store.client.list_objects(ingest_settings.landing_bucket, prefix=key)
    ]
    assert left == [], f"the landing originals outlived the removal: {left}"


async def test_landing_originals_another_live_sample_names_are_kept(
    lis: httpx.AsyncClient,
    toy_reference: Manifest,
    store: ObjectStore,
    ingest_settings: IngestSettings,
) -> None:
    r1, r2 = pair(5, seed=67)
    mine = _landing(store, ingest_settings, f"RH/{uuid.uuid4().hex[:8]}", r1, r2)
    digests = hashlib.sha256(r1).hexdigest(), hashlib.sha256(r2).hexdigest()
    first = (await lis.post("/v1/samples", json=_naming(toy_reference, mine, *digests))).json()
    second = (await lis.post("/v1/samples", json=_naming(toy_reference, mine, *digests))).json()
    assert first["sample_id"] != second["sample_id"]
    await lis.delete(f"/v1/samples/{first['sample_id']}", params={"reason": "sample mix-up"})
    assert store.client.stat_object(ingest_settings.landing_bucket, mine[0]).size == len(r1)
    await lis.delete(f"/v1/samples/{second['sample_id']}", params={"reason": "sample mix-up"})
    assert not list(store.client.list_objects(ingest_settings.landing_bucket, prefix=mine[0]))
