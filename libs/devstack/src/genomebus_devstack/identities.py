"""The dev stack's per-service S3 identities: made at ``stack up``, kept 0600 in the state dir,
and handed to each service process by the launcher (``services.ServiceProcess``)."""

from __future__ import annotations

import json
from pathlib import Path

from .paths import Layout, write_private


def _file(layout: Layout) -> Path:
    return layout.minio_home / "service-identities.json"


def ensure_s3_identities(
    layout: Layout, endpoint: str, access: str, secret: str
) -> dict[str, dict[str, str]]:
    """Create every service's S3 user and policy (idempotent: kept secrets are re-applied, so
    a restarted MinIO and an updated policy table both end up right)."""
    from genomebus_ops.landing import admin_client
    from genomebus_ops.s3_identities import SERVICE_BUCKETS, grant_service

    path = _file(layout)
    known: dict[str, dict[str, str]] = json.loads(path.read_text()) if path.is_file() else {}
    admin = admin_client(endpoint, access, secret)
    made: dict[str, dict[str, str]] = {}
    for service in SERVICE_BUCKETS:
        granted = grant_service(admin, service, known.get(service, {}).get("secret_key"))
        assert granted is not None
        made[service] = {"access_key": granted[0], "secret_key": granted[1]}
    write_private(path, json.dumps(made, indent=1) + "\n")
    return made


def service_s3_env(service: str, layout: Layout | None = None) -> dict[str, str]:
    """``service``'s own S3 keys as settings, if the stack made them; a service with no S3
    identity (consent, heat) gets keys that open nothing."""
    layout = layout or Layout.discover()
    path = _file(layout)
    if not path.is_file():
        return {}
    made = json.loads(path.read_text())
    own = made.get(service)
    if own is None:
        return {
            "GENOMEBUS_S3_ACCESS_KEY": f"none-{service}",
            "GENOMEBUS_S3_SECRET_KEY": "no-object-access",
        }
    return {
        "GENOMEBUS_S3_ACCESS_KEY": own["access_key"],
        "GENOMEBUS_S3_SECRET_KEY": own["secret_key"],
    }
