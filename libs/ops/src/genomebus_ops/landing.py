"""Each hospital's LIS gets S3 credentials for its own prefix of the landing bucket, nothing more.

One policy per hospital, ``genomebus-landing-<hospital>``: put, get, and list under
``<landing bucket>/<hospital>/``, and multipart uploads there. RH's credentials cannot list,
read or write ``OUH/``. The same code serves the dev stack (``make demo`` grants its hospital)
and a cluster's MinIO (``genomebus-landing grant RH`` by an operator with the admin
credentials), so the rule is written once.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

from minio import MinioAdmin
from minio.credentials.providers import StaticProvider

_HOSPITAL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")


@dataclass(frozen=True)
class LandingCredentials:
    hospital_id: str
    access_key: str
    secret_key: str
    bucket: str

    @property
    def prefix(self) -> str:
        return f"{self.hospital_id}/"


def landing_policy(bucket: str, hospital_id: str) -> dict[str, Any]:
    """The IAM policy of one hospital's LIS: its own prefix, and only that."""
    if not _HOSPITAL.match(hospital_id):
        raise ValueError(f"hospital id {hospital_id!r} cannot name a landing prefix")
    own = f"arn:aws:s3:::{bucket}/{hospital_id}/*"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "s3:PutObject",
                    "s3:GetObject",
                    "s3:AbortMultipartUpload",
                    "s3:ListMultipartUploadParts",
                ],
                "Resource": [own],
            },
            {
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": [f"arn:aws:s3:::{bucket}"],
                "Condition": {"StringLike": {"s3:prefix": [f"{hospital_id}/", f"{hospital_id}/*"]}},
            },
            {  # S3 clients ask where the bucket is before their first request
                "Effect": "Allow",
                "Action": ["s3:GetBucketLocation"],
                "Resource": [f"arn:aws:s3:::{bucket}"],
            },
        ],
    }


def admin_client(
    endpoint: str, access_key: str, secret_key: str, *, secure: bool = False
) -> MinioAdmin:
    return MinioAdmin(
        endpoint=endpoint, credentials=StaticProvider(access_key, secret_key), secure=secure
    )


def grant_landing(admin: MinioAdmin, bucket: str, hospital_id: str) -> LandingCredentials:
    """Create (or re-key) the hospital's LIS user with its landing policy; returns its keys.
    Running it again rotates the secret: hand the new one to the LIS."""
    policy_name = f"genomebus-landing-{hospital_id.lower()}"
    access_key = f"lis-{hospital_id.lower()}"
    secret_key = secrets.token_urlsafe(30)
    admin.policy_add(policy_name, policy=landing_policy(bucket, hospital_id))
    admin.user_add(access_key, secret_key)
    admin.policy_set(policy_name, user=access_key)
    return LandingCredentials(hospital_id, access_key, secret_key, bucket)


def main(argv: list[str] | None = None) -> int:
    """``genomebus-landing grant HOSPITAL``: prints the LIS's S3 credentials as JSON."""
    import argparse
    import json

    from genomebus_common.runtime.settings import ServiceSettings

    parser = argparse.ArgumentParser(prog="genomebus-landing", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    grant = sub.add_parser("grant", help="create or re-key a hospital's landing credentials")
    grant.add_argument("hospital_id")
    grant.add_argument("--bucket", default="genomebus-landing")
    args = parser.parse_args(argv)
    settings = ServiceSettings.load()
    admin = admin_client(
        settings.s3_endpoint,
        settings.s3_access_key,
        settings.s3_secret_key.get_secret_value(),
        secure=settings.s3_secure,
    )
    credentials = grant_landing(admin, args.bucket, args.hospital_id)
    print(
        json.dumps(
            {
                "hospital_id": credentials.hospital_id,
                "bucket": credentials.bucket,
                "prefix": credentials.prefix,
                "access_key": credentials.access_key,
                "secret_key": credentials.secret_key,
            }
        )
    )
    return 0
