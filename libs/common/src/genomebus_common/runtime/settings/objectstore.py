"""How a service reaches the object store (S3/MinIO), and with which keys.

Only the services that hold objects compose this fragment: one that does not (consent, heat)
has no S3 identity to leak, and cannot build an object store by mistake.
"""

from __future__ import annotations

from typing import Self

from pydantic import Field, SecretStr, model_validator

from genomebus_common.runtime.settings.base import CommonSettings


class ObjectStoreSettings(CommonSettings):
    """The S3 endpoint, this service's keys and the streaming bounds."""

    s3_endpoint: str = Field(
        "127.0.0.1:9000",
        description="S3/MinIO endpoint as host:port (no scheme).",
        examples=["minio:9000"],
    )
    s3_access_key: str = Field("minioadmin", description="S3 access key.")
    s3_secret_key: SecretStr = Field(SecretStr("minioadmin"), description="S3 secret key.")
    s3_secure: bool = Field(False, description="Use HTTPS to reach the object store.")
    s3_region: str | None = Field(None, description="S3 region, when the server needs one.")
    s3_part_size_mb: int = Field(
        8,
        ge=5,
        le=5120,
        description="Multipart part size: bounds the memory one streamed transfer uses.",
    )
    s3_parallel_uploads: int = Field(
        2, ge=1, le=8, description="Parts uploaded at once; memory is about parts x part size."
    )

    @model_validator(mode="after")
    def _no_default_object_store_keys(self) -> Self:
        """MinIO's well-known ``minioadmin`` keys work only on a development stack: anywhere
        else a service starting with them is misconfigured (or talks to an open store)."""
        if self.profile == "dev":
            return self
        if "minioadmin" in (self.s3_access_key, self.s3_secret_key.get_secret_value()):
            raise ValueError(
                "GENOMEBUS_S3_ACCESS_KEY/GENOMEBUS_S3_SECRET_KEY are MinIO's default "
                "credentials (GENOMEBUS_PROFILE=dev allows this on a development "
                "stack only): give the service its own S3 identity"
            )
        return self
