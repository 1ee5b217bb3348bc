"""One S3 identity per service, with a policy for its own buckets only.

A compromised alignment pod can read reads and references and write alignments; it cannot read
a hospital's landing prefix, rewrite a VCF, or touch the registry's inputs beyond reading them.
Consent and heat hold no objects: they get no S3 identity at all. The table is the one place
that says who touches which bucket; the dev stack and a cluster's operator apply it alike.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from minio import MinioAdmin

READS, LANDING = "genomebus-reads", "genomebus-landing"
ALIGNMENTS, VARIANTS, REFERENCES = (
    "genomebus-alignments",
    "genomebus-variants",
    "genomebus-references",
)


@dataclass(frozen=True)
class BucketAccess:
    writes: tuple[str, ...]  # put, get, list, delete (its own data, and removal of it)
    reads: tuple[str, ...]  # get and list only


#: Who touches which bucket. Scatter plans and unit outputs live in the stage's own bucket.
SERVICE_BUCKETS: dict[str, BucketAccess] = {
    "ingest": BucketAccess(writes=(READS, LANDING), reads=(REFERENCES,)),
    "alignment": BucketAccess(writes=(ALIGNMENTS,), reads=(READS, REFERENCES)),
    "calling": BucketAccess(writes=(VARIANTS,), reads=(ALIGNMENTS, REFERENCES)),
    "registry": BucketAccess(writes=(), reads=(VARIANTS,)),
}


def service_policy(service: str) -> dict[str, Any] | None:
    """The IAM policy of ``service``'s S3 identity; None for a service that holds no objects."""
    access = SERVICE_BUCKETS.get(service)
    if access is None:
        return None
    statements: list[dict[str, Any]] = []
    if access.writes:
        # Object actions only, and the bucket's own existence: never its policy, lifecycle or
        # deletion (a pod that could set a bucket public or expire it could lose everything).
        statements.append(
            {
                "Effect": "Allow",
                "Action": [
                    "s3:GetObject",
                    "s3:PutObject",
                    "s3:DeleteObject",
                    "s3:AbortMultipartUpload",
                    "s3:ListMultipartUploadParts",
                ],
                "Resource": [f"arn:aws:s3:::{b}/*" for b in access.writes],
            }
        )
        statements.append(
            {
                "Effect": "Allow",
                "Action": [
                    "s3:ListBucket",
                    "s3:GetBucketLocation",
                    "s3:CreateBucket",
                    "s3:ListBucketMultipartUploads",
                ],
                "Resource": [f"arn:aws:s3:::{b}" for b in access.writes],
            }
        )
    if access.reads:
        statements.append(
            {
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation"],
                "Resource": [
                    arn
                    for b in access.reads
                    for arn in (f"arn:aws:s3:::{b}", f"arn:aws:s3:::{b}/*")
                ],
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def grant_service(
    admin: MinioAdmin, service: str, secret_key: str | None = None
) -> tuple[str, str] | None:
    """Create (or update) ``service``'s S3 user and policy; (access key, secret key), or None
    for a service that gets no identity."""
    policy = service_policy(service)
    if policy is None:
        return None
    access_key = f"svc-{service}"
    name = f"genomebus-service-{service}"
    admin.policy_add(name, policy=policy)  # cheap, and keeps an existing user's policy current
    if secret_key is None or not _user_exists(admin, access_key):
        # user_add sends the secret encrypted with an Argon2-derived key: ~1 s of CPU each,
        # so a user that exists with its kept secret is not made again
        secret_key = secret_key or secrets.token_urlsafe(30)
        admin.user_add(access_key, secret_key)
    admin.policy_set(name, user=access_key)
    return access_key, secret_key


def _user_exists(admin: MinioAdmin, access_key: str) -> bool:
    try:
        admin.user_info(access_key)
    except Exception:  # noqa: BLE001 (MinIO answers an unknown user with an admin error)
        return False
    return True
