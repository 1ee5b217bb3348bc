"""Where a service's HTTP server (its API, health, readiness and metrics) listens."""

from __future__ import annotations

from pydantic import Field

from genomebus_common.runtime.settings.base import CommonSettings


class HttpSettings(CommonSettings):
    """The HTTP server's address and port."""

    http_host: str = Field(
        "127.0.0.1",
        description="Address the service's HTTP server (API, health, readiness) listens on.",
        examples=["0.0.0.0"],
    )
    http_port: int = Field(8080, ge=0, le=65535, description="Port of the HTTP server.")
